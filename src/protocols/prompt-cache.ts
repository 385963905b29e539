/**
 * Provider prompt caching, placed automatically. Anthropic bills input read from its cache at
 * a tenth of the input price, but only for prefixes a request marks with `cache_control`
 * breakpoints; OpenRouter passes the same markers to Anthropic and Gemini models. This file
 * decides where the markers go, on the request-building side only:
 *
 * 1. the last tool (tools come first in Anthropic's prefix order: tools, system, messages),
 * 2. the system prompt,
 * 3. the end of the previous request's prompt (the next-to-last user turn): this turn reads
 *    the prefix the last turn wrote, however many blocks came between (Anthropic looks back
 *    only 20 blocks from a breakpoint for an earlier entry),
 * 4. the end of this prompt: written now, read by the next turn.
 *
 * A breakpoint is placed only where the prefix up to it is long enough to be cached (the
 * minimum depends on the model family; shorter prefixes are not cached, and a marker there
 * would waste one of the four a request may carry). Markers do not change the prefix the
 * provider hashes, and everything else is built the same way every turn, so the prefix stays
 * byte-identical from one turn to the next. OpenAI, Gemini and DeepSeek cache long prefixes
 * by themselves and get no markers.
 */
import type { CacheBreakpoint, RequestParams } from '../types.js';

/** Anthropic's limit on breakpoints per request. */
export const MAX_BREAKPOINTS = 4;

/**
 * The shortest prefix, in tokens, each family caches (Anthropic's prompt-caching guide; for
 * Gemini, Google's context-caching minimums). Checked in order; the first match wins.
 */
const MINIMUM_TOKENS: [RegExp, number][] = [
  [/opus-4[.-][5-9]|haiku-4[.-]5/, 4096],
  [/sonnet-4[.-]6/, 2048],
  [/haiku-3|3[.-]5-haiku|3-haiku/, 2048],
  [/gemini.*pro/, 2048],
  [/gemini/, 1024],
];
const DEFAULT_MINIMUM = 1024;

export function minimumCacheableTokens(model: string): number {
  const id = model.toLowerCase();
  for (const [pattern, tokens] of MINIMUM_TOKENS) if (pattern.test(id)) return tokens;
  return DEFAULT_MINIMUM;
}

/**
 * A cautious token count for deciding whether a prefix is long enough: one token per four
 * characters of its JSON, about what Claude's and Gemini's tokenizers give for English text.
 */
export function roughTokenCount(value: unknown): number {
  return typeof value === 'string' ? value.length / 4 : JSON.stringify(value).length / 4;
}

type Block = Record<string, unknown>;
interface WireMessage {
  role: string;
  content: Block[] | string;
}

/** The marker, with the 1-hour lifetime when chosen (billed at twice the input price instead of 1.25x). */
function marker(params: RequestParams): Block {
  const setting = params.promptCaching;
  return typeof setting === 'object' && setting.ttl === '1h' ? { type: 'ephemeral', ttl: '1h' } : { type: 'ephemeral' };
}

/** Off when the caller says so, or when the caller placed markers of their own (through extraBody). */
function wanted(params: RequestParams): boolean {
  if (params.promptCaching === false) return false;
  return params.extraBody === undefined || !JSON.stringify(params.extraBody).includes('cache_control');
}

/** The wire messages' indexes where breakpoints 3 and 4 go: the next-to-last and the last user turn. */
function conversationPoints(messages: WireMessage[]): number[] {
  const users: number[] = [];
  for (let i = messages.length - 1; i >= 0 && users.length < 2; i--) if (messages[i]?.role === 'user') users.push(i);
  return users.reverse();
}

/**
 * Prefix lengths at each candidate point, in order, and whether it is long enough: returns the
 * candidates that get a marker (at most MAX_BREAKPOINTS).
 */
function chosen<T>(candidates: { at: T; tokens: number }[], minimum: number): T[] {
  const out: T[] = [];
  for (const c of candidates) if (c.tokens >= minimum && out.length < MAX_BREAKPOINTS) out.push(c.at);
  return out;
}

/** Running prefix sizes of a message list, for the candidate indexes. */
function messagePrefixTokens(messages: WireMessage[], points: number[], before: number): Map<number, number> {
  const sizes = new Map<number, number>();
  let running = before;
  let next = 0;
  for (let i = 0; i < messages.length && next < points.length; i++) {
    running += roughTokenCount((messages[i] as WireMessage).content);
    if (i === points[next]) {
      sizes.set(i, running);
      next++;
    }
  }
  return sizes;
}

/** The last block of a message, with the content turned into blocks if it was a string. */
function lastBlock(message: WireMessage): Block | undefined {
  if (typeof message.content === 'string') message.content = [{ type: 'text', text: message.content }];
  return message.content[message.content.length - 1];
}

/** Add breakpoints to an Anthropic Messages body built by anthropic.ts (mutates it). */
export function addAnthropicBreakpoints(body: { model?: unknown; system?: unknown; tools?: unknown; messages: WireMessage[] }, params: RequestParams): void {
  if (!wanted(params)) return;
  const minimum = minimumCacheableTokens(String(body.model ?? ''));
  const tools = Array.isArray(body.tools) ? (body.tools as Block[]) : [];
  const toolTokens = tools.length > 0 ? roughTokenCount(tools) : 0;
  const systemTokens = typeof body.system === 'string' ? roughTokenCount(body.system) : 0;
  const points = conversationPoints(body.messages);
  const sizes = messagePrefixTokens(body.messages, points, toolTokens + systemTokens);
  type Point = 'tools' | 'system' | number;
  const candidates: { at: Point; tokens: number }[] = [];
  if (tools.length > 0) candidates.push({ at: 'tools', tokens: toolTokens });
  if (systemTokens > 0) candidates.push({ at: 'system', tokens: toolTokens + systemTokens });
  for (const p of points) candidates.push({ at: p, tokens: sizes.get(p) ?? 0 });
  const control = marker(params);
  for (const at of chosen(candidates, minimum)) {
    if (at === 'tools') (tools[tools.length - 1] as Block).cache_control = control;
    else if (at === 'system') body.system = [{ type: 'text', text: body.system, cache_control: control }];
    else {
      const block = lastBlock(body.messages[at] as WireMessage);
      if (block) block.cache_control = control;
    }
  }
}

/** A block of a wire message list: the message's index and the block's within it. */
export interface BlockPosition {
  message: number;
  block: number;
}

/**
 * Place given breakpoints on an Anthropic Messages body (mutates it): after the tools, after
 * the system prompt, or on the last block of canonical message `after` (`ends` maps a
 * canonical message to that block). Used for markers a caller placed itself.
 */
export function placeAnthropicBreakpoints(
  body: { system?: unknown; tools?: unknown; messages: WireMessage[] },
  breakpoints: readonly CacheBreakpoint[],
  ends: readonly (BlockPosition | undefined)[],
): void {
  for (const b of breakpoints.slice(0, MAX_BREAKPOINTS)) {
    const control: Block = b.ttl === '1h' ? { type: 'ephemeral', ttl: '1h' } : { type: 'ephemeral' };
    const tools = Array.isArray(body.tools) ? (body.tools as Block[]) : [];
    if (b.after === 'tools') {
      if (tools.length > 0) (tools[tools.length - 1] as Block).cache_control = control;
    } else if (b.after === 'system') {
      if (typeof body.system === 'string') body.system = [{ type: 'text', text: body.system, cache_control: control }];
    } else {
      const at = ends[b.after];
      const content = at === undefined ? undefined : body.messages[at.message]?.content;
      const block = Array.isArray(content) ? content[at?.block ?? -1] : undefined;
      if (block) block.cache_control = control;
    }
  }
}

/** OpenRouter's models that take Anthropic-style markers in Chat Completions messages. */
export function takesCacheMarkers(model: string): boolean {
  return /^(anthropic|google)\//.test(model);
}

/**
 * Add breakpoints to an OpenAI-shaped body bound for OpenRouter's Anthropic or Gemini models:
 * on the system message and the last two user turns, as text parts with `cache_control`.
 */
export function addChatCompletionsBreakpoints(body: { model?: unknown; messages: WireMessage[] }, params: RequestParams): void {
  if (!wanted(params) || !takesCacheMarkers(String(body.model ?? ''))) return;
  const minimum = minimumCacheableTokens(String(body.model));
  const systems = body.messages.flatMap((m, i) => (m.role === 'system' ? [i] : []));
  const lastSystem = systems[systems.length - 1];
  const points = [...(lastSystem === undefined ? [] : [lastSystem]), ...conversationPoints(body.messages)];
  const sizes = messagePrefixTokens(body.messages, points, 0);
  const control = marker(params);
  const marked = chosen(points.map((p) => ({ at: p, tokens: sizes.get(p) ?? 0 })), minimum);
  if (marked.length === 0) return;
  // These messages are the caller's history: marked ones are copied, never changed in place.
  body.messages = [...body.messages];
  for (const at of marked) {
    const original = body.messages[at] as WireMessage;
    const copy: WireMessage = { ...original, content: typeof original.content === 'string' ? original.content : original.content.map((part) => ({ ...part })) };
    const block = lastBlock(copy);
    if (block?.type !== 'text') continue;
    block.cache_control = control;
    body.messages[at] = copy;
  }
}

function ttlOf(block: unknown): CacheBreakpoint['ttl'] | undefined {
  const control = (block as { cache_control?: { type?: unknown; ttl?: unknown } } | null)?.cache_control;
  if (typeof control !== 'object' || control === null) return undefined;
  return control.ttl === '1h' ? '1h' : '5m';
}

/**
 * The server side: the breakpoints of an Anthropic Messages body in canonical positions.
 * `messageEnds[i]` is the index, in the canonical messages, of the last message read from the
 * body's message i (a user turn with tool results becomes several). Undefined when none.
 */
export function readAnthropicBreakpoints(body: Record<string, unknown>, messageEnds: readonly number[]): CacheBreakpoint[] | undefined {
  const out: CacheBreakpoint[] = [];
  const tools = Array.isArray(body.tools) ? (body.tools as unknown[]) : [];
  const toolTTL = tools.map(ttlOf).find((t) => t !== undefined);
  if (toolTTL) out.push({ after: 'tools', ttl: toolTTL });
  const systemTTL = Array.isArray(body.system) ? (body.system as unknown[]).map(ttlOf).find((t) => t !== undefined) : undefined;
  if (systemTTL) out.push({ after: 'system', ttl: systemTTL });
  const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : [];
  messages.forEach((message, i) => {
    const blocks = Array.isArray(message?.content) ? (message.content as unknown[]) : [];
    const ttl = blocks.map(ttlOf).find((t) => t !== undefined);
    const at = messageEnds[i];
    if (ttl && at !== undefined) out.push({ after: at, ttl });
  });
  return out.length > 0 ? out : undefined;
}
