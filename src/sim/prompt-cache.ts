/**
 * The simulated providers' prompt caches: which part of a prompt a real provider would read
 * from its cache, and which part it would write. The rules follow the providers' guides:
 *
 * - Explicit breakpoints (Anthropic): a request marks up to four blocks with `cache_control`.
 *   At each breakpoint whose prefix is at least the model's minimum, the provider looks for an
 *   entry at that block or up to 20 blocks before it (the lookback); the longest hit is
 *   read, and the prefix up to the last eligible breakpoint past it is written. Entries live 5
 *   minutes (or an hour with `ttl: "1h"`) from their last use. Tokens after the last
 *   breakpoint are plain input.
 * - Automatic prefix caching (OpenAI, Gemini, DeepSeek): no markers. Once a prompt reaches
 *   the minimum (1,024 tokens), any earlier prompt's prefix it repeats exactly is read, counted
 *   in steps of 128 tokens past the minimum; nothing is billed for writing.
 *
 * A prompt is a list of segments in the provider's order (tools, system, then each message's
 * blocks); a segment's `key` is its exact content, so one changed byte misses everything after it.
 */
import { createHash } from 'node:crypto';
import type { CacheBreakpoint, Message } from '../types.js';
import { ATTACHMENT_TOKENS, MESSAGE_OVERHEAD_TOKENS, countTokens } from './tokens.js';

export interface PromptSegment {
  /** The segment's exact content: prefixes match only when every key before them matches. */
  key: string;
  tokens: number;
  /** A `cache_control` breakpoint on this segment, and its lifetime. */
  breakpoint?: '5m' | '1h';
}

export interface PromptCacheUse {
  readTokens: number;
  writeTokens: number;
  /** Of the writes, those under a 1-hour breakpoint. */
  write1hTokens: number;
}

export const MAX_BREAKPOINTS = 4;
export const LOOKBACK_BLOCKS = 20;
export const AUTOMATIC_MINIMUM = 1024;
export const AUTOMATIC_STEP = 128;
const TTL_MS = { '5m': 5 * 60_000, '1h': 60 * 60_000 } as const;

export class TooManyBreakpointsError extends Error {
  constructor(readonly found: number) {
    super(`A maximum of ${MAX_BREAKPOINTS} blocks with cache_control may be provided. Found ${found}.`);
  }
}

export class PromptCacheModel {
  readonly #entries = new Map<string, { expiresAt: number; ttlMs: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Prefix hashes and running token counts after each segment, scoped to one model. */
  #prefixes(scope: string, segments: readonly PromptSegment[]): { hashes: string[]; tokens: number[] } {
    const hashes: string[] = [];
    const tokens: number[] = [];
    let hash = createHash('sha256').update(scope);
    let total = 0;
    for (const segment of segments) {
      hash.update(`\u0000${segment.key}`);
      hashes.push(hash.copy().digest('hex'));
      total += segment.tokens;
      tokens.push(total);
      hash = hash.copy();
    }
    return { hashes, tokens };
  }

  #alive(hash: string | undefined, now: number): boolean {
    if (hash === undefined) return false;
    const entry = this.#entries.get(hash);
    if (!entry) return false;
    if (entry.expiresAt > now) return true;
    this.#entries.delete(hash);
    return false;
  }

  #keep(hash: string, ttlMs: number, now: number): void {
    const existing = this.#entries.get(hash);
    const ttl = Math.max(ttlMs, existing?.ttlMs ?? 0);
    this.#entries.set(hash, { expiresAt: now + ttl, ttlMs: ttl });
  }

  /** Anthropic's explicit breakpoints. Throws TooManyBreakpointsError past four. */
  explicit(scope: string, segments: readonly PromptSegment[], minimum: number): PromptCacheUse {
    const points = segments.flatMap((s, i) => (s.breakpoint ? [i] : []));
    if (points.length > MAX_BREAKPOINTS) throw new TooManyBreakpointsError(points.length);
    const now = this.#now();
    const { hashes, tokens } = this.#prefixes(scope, segments);
    const eligible = points.filter((i) => (tokens[i] as number) >= minimum);
    let read = -1;
    for (const point of eligible) {
      for (let j = point; j >= 0 && j >= point - LOOKBACK_BLOCKS; j--) {
        if (this.#alive(hashes[j], now)) {
          read = Math.max(read, j);
          break;
        }
      }
    }
    const use: PromptCacheUse = { readTokens: read >= 0 ? (tokens[read] as number) : 0, writeTokens: 0, write1hTokens: 0 };
    if (read >= 0) this.#keep(hashes[read] as string, this.#entries.get(hashes[read] as string)?.ttlMs ?? TTL_MS['5m'], now);
    let from = read;
    for (const point of eligible) {
      if (point <= read) continue;
      const ttl = (segments[point] as PromptSegment).breakpoint ?? '5m';
      const written = (tokens[point] as number) - (from >= 0 ? (tokens[from] as number) : 0);
      use.writeTokens += written;
      if (ttl === '1h') use.write1hTokens += written;
      this.#keep(hashes[point] as string, TTL_MS[ttl], now);
      from = point;
    }
    return use;
  }

  /**
   * One simulated request: Anthropic's protocol caches at its breakpoints, the others
   * automatically. `scope` keeps providers' and models' caches apart.
   */
  forRequest(protocol: string, scope: string, request: CacheableRequest, minimum = AUTOMATIC_MINIMUM): PromptCacheUse {
    const segments = promptSegments(request);
    return protocol === 'anthropic' ? this.explicit(scope, segments, minimum) : this.automatic(scope, segments, minimum);
  }

  /** Automatic prefix caching (OpenAI, Gemini): the longest earlier prefix, in 128-token steps. */
  automatic(scope: string, segments: readonly PromptSegment[], minimum = AUTOMATIC_MINIMUM): PromptCacheUse {
    const now = this.#now();
    const { hashes, tokens } = this.#prefixes(scope, segments);
    let matched = 0;
    for (let i = segments.length - 1; i >= 0; i--) {
      if ((tokens[i] as number) >= minimum && this.#alive(hashes[i], now)) {
        matched = tokens[i] as number;
        break;
      }
    }
    for (let i = 0; i < segments.length; i++) if ((tokens[i] as number) >= minimum) this.#keep(hashes[i] as string, TTL_MS['5m'], now);
    const readTokens = matched >= minimum ? minimum + Math.floor((matched - minimum) / AUTOMATIC_STEP) * AUTOMATIC_STEP : 0;
    return { readTokens, writeTokens: 0, write1hTokens: 0 };
  }
}

/** What a prompt cache sees of a simulated request (the shape of the simulator's request). */
export interface CacheableRequest {
  system: string;
  messages: readonly { role: string; text: string; attachments: readonly unknown[]; toolCalls?: readonly { name: string; arguments: string }[] }[];
  tools?: readonly { name: string; description: string; parameters: unknown }[];
  /** Breakpoints after the tools, the system prompt, or a message (an index into `messages`). */
  cacheBreakpoints?: readonly CacheBreakpoint[];
}

/**
 * Canonical breakpoint positions (indexes into the canonical messages, system ones included)
 * as positions in the simulator's messages, which leave the system messages out.
 */
export function simBreakpoints(canonical: readonly Message[], breakpoints: readonly CacheBreakpoint[]): CacheBreakpoint[] {
  const simIndex: number[] = [];
  let next = 0;
  for (const message of canonical) simIndex.push(message.role === 'system' ? -1 : next++);
  return breakpoints.flatMap((b) => {
    if (typeof b.after !== 'number') return [b];
    const at = simIndex[b.after];
    return at === undefined || at < 0 ? [{ ...b, after: 'system' as const }] : [{ ...b, after: at }];
  });
}

/**
 * A simulated request as cache segments, in the order providers hash a prompt: the tools, the
 * system prompt, then each message. Tokens are counted as the simulator's usage counts them
 * (each message's framing included), so the segments sum to the prompt less its reply priming.
 */
export function promptSegments(request: CacheableRequest): PromptSegment[] {
  const marks = new Map<'tools' | 'system' | number, '5m' | '1h'>();
  for (const b of request.cacheBreakpoints ?? []) marks.set(b.after, b.ttl);
  const segments: PromptSegment[] = [];
  const push = (key: string, tokens: number, at: 'tools' | 'system' | number): void => {
    const ttl = marks.get(at);
    segments.push(ttl ? { key, tokens, breakpoint: ttl } : { key, tokens });
  };
  const tools = request.tools ?? [];
  if (tools.length > 0) {
    const tokens = tools.reduce((n, t) => n + countTokens(t.name) + countTokens(t.description) + countTokens(JSON.stringify(t.parameters)), 0);
    push(`tools\u0000${JSON.stringify(tools)}`, tokens, 'tools');
  }
  if (request.system) push(`system\u0000${request.system}`, MESSAGE_OVERHEAD_TOKENS + countTokens(request.system), 'system');
  request.messages.forEach((m, i) => {
    const calls = m.toolCalls ?? [];
    const tokens = MESSAGE_OVERHEAD_TOKENS + countTokens(m.text) + m.attachments.length * ATTACHMENT_TOKENS + calls.reduce((n, c) => n + countTokens(c.name) + countTokens(c.arguments), 0);
    push(`${m.role}\u0000${m.text}\u0000${JSON.stringify(m.attachments)}\u0000${JSON.stringify(calls)}`, tokens, i);
  });
  return segments;
}
