/**
 * The response cache's key: a SHA-256 of the canonical request. Two requests get the same
 * key exactly when everything that can change the answer is the same: the model string as
 * resolved, the endpoint, the messages, and every request parameter (tools, schema, sampling).
 * Object keys are sorted, so `{ role, content }` and `{ content, role }` hash alike. Nothing
 * secret goes in: API keys and headers are not part of a request's params.
 */
import { createHash } from 'node:crypto';
import type { Message, RequestParams } from '../types.js';

/** Bumped when the key's inputs or the stored entry's shape change: old entries stop matching. */
export const CACHE_FORMAT = 1;

/** Parameters that change how a request is billed, not what it answers. */
const NOT_ANSWER_CHANGING = new Set<string>(['promptCaching']);

export interface KeyInput {
  /** The model string after alias resolution. */
  model: string;
  /** A custom endpoint: the same model name on two servers answers differently. */
  baseURL?: string | undefined;
  messages: readonly Message[];
  params: RequestParams;
}

/** JSON with sorted object keys and no undefined members: one spelling per value. */
export function canonicalJSON(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJSON(value[i] === undefined ? null : value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const member = record[key];
    if (member === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJSON(member)}`;
    first = false;
  }
  return `${out}}`;
}

function answerParams(params: RequestParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) if (!NOT_ANSWER_CHANGING.has(key)) out[key] = value;
  return out;
}

/** The hex SHA-256 of the canonical request. */
export function requestKey(input: KeyInput): string {
  const canonical = canonicalJSON({
    v: CACHE_FORMAT,
    model: input.model,
    baseURL: input.baseURL,
    messages: input.messages,
    params: answerParams(input.params),
  });
  return createHash('sha256').update(canonical).digest('hex');
}
