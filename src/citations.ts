/**
 * Web citations from provider annotations. OpenAI and OpenRouter send
 * `{ type: 'url_citation', url_citation: { url, title, content, start_index, end_index } }`
 * (OpenAI's Responses shape puts the fields at the top level); annotation types not known
 * here (file citations, provider additions) are skipped, never an error.
 */
import type { Citation } from './types.js';

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function int(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/** One annotation as a citation, or undefined when it is not a URL citation. */
export function toCitation(annotation: unknown): Citation | undefined {
  const a = record(annotation);
  if (a?.type !== 'url_citation') return undefined;
  const body = record(a.url_citation) ?? a;
  const url = str(body.url);
  if (!url) return undefined;
  const out: Citation = { url };
  const title = str(body.title);
  if (title) out.title = title;
  const excerpt = str(body.content) ?? str(body.cited_text);
  if (excerpt) out.excerpt = excerpt;
  const start = int(body.start_index);
  const end = int(body.end_index);
  if (start !== undefined) out.startIndex = start;
  if (end !== undefined) out.endIndex = end;
  return out;
}

/** The URL citations among a reply's annotations, in order; the same URL and range once. */
export function citationsFrom(annotations: unknown[]): Citation[] {
  const out: Citation[] = [];
  const seen = new Set<string>();
  for (const annotation of annotations) {
    const citation = toCitation(annotation);
    if (!citation) continue;
    const key = `${citation.url}#${citation.startIndex ?? ''}-${citation.endIndex ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(citation);
  }
  return out;
}
