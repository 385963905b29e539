/**
 * Does a conversation fit a model's context window? Token counts are estimates with the
 * o200k_base encoding (GPT-4o and later) from `gpt-tokenizer`, loaded on first use only
 * (it takes a few hundred milliseconds). Other vendors' tokenizers differ by some percent:
 * keep a margin in `reserveOutput`.
 */
import { createRequire } from 'node:module';
import { ContextLengthError } from '../errors.js';

export { ContextLengthError };
import type { ContentPart, Message } from '../types.js';

/** Per-message framing in the chat format (OpenAI's published counting recipe). */
const TOKENS_PER_MESSAGE = 3;
/** Every reply is primed with `<|start|>assistant<|message|>`. */
const REPLY_PRIMING = 3;
/** An image: OpenAI's figure for a 1024x1024 picture at high detail; low detail is 85. */
const IMAGE_TOKENS = 765;
const LOW_DETAIL_IMAGE_TOKENS = 85;

type CountTokens = (text: string) => number;
let counter: CountTokens | undefined;

/**
 * Characters given to the tokenizer at once. Its merging is quadratic in the length of one
 * pre-tokenized run (200,000 "=" in one piece block the process for about 20 s), so long texts
 * are counted piece by piece, cut at whitespace where there is some: linear in the text, and
 * within a fraction of a percent of counting it whole (a cut can only add a token or two).
 */
const TOKENIZER_PIECE = 1024;

/**
 * How long one count (a request's messages) may run the tokenizer. Prose costs it about 0.05 µs
 * a character, but some text costs hundreds of times that even in short pieces (random CJK or
 * punctuation without a space: about 15 µs), and a body of it would hold the process for
 * minutes. Past this time the rest is counted at the tokens per character measured so far, with
 * a margin: an estimate either way, as every count here is.
 */
const EXACT_COUNT_MS = 100;
const ESTIMATED_MARGIN = 1.1;

/** One count's clock and its tally of what the tokenizer counted (exported for messageTokens' signature). */
export class CountClock {
  /** Set by the first look, after the tokenizer has loaded. */
  #deadline: number | undefined;
  #late = false;
  #chars = 0;
  #tokens = 0;

  /** Whether the tokenizer may still run. */
  inTime(): boolean {
    this.#deadline ??= performance.now() + EXACT_COUNT_MS;
    if (!this.#late && performance.now() > this.#deadline) this.#late = true;
    return !this.#late;
  }

  counted(chars: number, tokens: number): number {
    this.#chars += chars;
    this.#tokens += tokens;
    return tokens;
  }

  /** The tokens of `text` from index `from` on, at the measured rate; with nothing measured, its UTF-8 bytes (a token covers at least one). */
  estimate(text: string, from: number): number {
    if (this.#chars === 0) return Buffer.byteLength(from === 0 ? text : text.slice(from));
    return Math.ceil(((text.length - from) * this.#tokens * ESTIMATED_MARGIN) / this.#chars);
  }
}

function countTokens(text: string, clock: CountClock): number {
  if (text === '') return 0;
  if (!counter) {
    const require = createRequire(import.meta.url);
    const mod = require('gpt-tokenizer/encoding/o200k_base') as { countTokens: CountTokens };
    counter = mod.countTokens;
  }
  if (!clock.inTime()) return clock.estimate(text, 0);
  if (text.length <= TOKENIZER_PIECE) return clock.counted(text.length, counter(text));
  let n = 0;
  for (let start = 0; start < text.length; ) {
    if (!clock.inTime()) return n + clock.estimate(text, start);
    let end = Math.min(text.length, start + TOKENIZER_PIECE);
    if (end < text.length) {
      // Cut before a space (the tokenizer joins a space to the word after it), else anywhere but
      // inside a surrogate pair. The space is looked for in the piece's second half only: a
      // search back to the start of a text without spaces made the count quadratic in its length.
      const space = lastSpaceAfter(text, end, start + TOKENIZER_PIECE / 2);
      if (space >= 0) end = space;
      else if (isHighSurrogate(text.charCodeAt(end - 1))) end -= 1;
    }
    n += clock.counted(end - start, counter(text.slice(start, end)));
    start = end;
  }
  return n;
}

/** The index of the last space before `end` and after `after`, or -1. */
function lastSpaceAfter(text: string, end: number, after: number): number {
  for (let i = end; i > after; i--) if (text.charCodeAt(i) === 32) return i;
  return -1;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function partTokens(part: ContentPart, clock: CountClock): number {
  switch (part.type) {
    case 'text':
      return countTokens(part.text, clock);
    case 'image_url':
      return part.image_url.detail === 'low' ? LOW_DETAIL_IMAGE_TOKENS : IMAGE_TOKENS;
    case 'file':
      // Unknown until the provider extracts it: count the encoded bytes' worth, a rough upper bound.
      return Math.ceil(part.file.file_data.length / 4);
    case 'input_audio':
      return Math.ceil(part.input_audio.data.length / 4);
  }
}

/** Estimated tokens of one message, framing included. */
export function messageTokens(message: Message, clock = new CountClock()): number {
  let n = TOKENS_PER_MESSAGE + countTokens(message.role, clock);
  switch (message.role) {
    case 'system':
    case 'tool':
      n += countTokens(message.content, clock);
      break;
    case 'user':
      n += typeof message.content === 'string' ? countTokens(message.content, clock) : message.content.reduce((s, p) => s + partTokens(p, clock), 0);
      break;
    case 'assistant':
      n += countTokens(message.content ?? '', clock);
      for (const call of message.tool_calls ?? []) n += countTokens(call.function.name, clock) + countTokens(call.function.arguments, clock) + TOKENS_PER_MESSAGE;
      break;
  }
  return n;
}

/** Estimated prompt tokens of a conversation (messages plus the reply's priming). */
export function estimateTokens(messages: readonly Message[]): number {
  const clock = new CountClock();
  let n = REPLY_PRIMING;
  for (const m of messages) n += messageTokens(m, clock);
  return n;
}

export interface FitOptions {
  /** Drop the oldest turns until it fits, instead of throwing. */
  dropOldest?: boolean;
}

/**
 * Turns that are dropped whole: a user message with the replies, tool calls and tool results
 * that follow it, so a tool call never loses its result and no reply loses its question.
 * System messages stand alone (and are never dropped).
 */
function turnGroups(messages: readonly Message[]): number[][] {
  const groups: number[][] = [];
  let open: number[] | undefined;
  messages.forEach((m, i) => {
    if (m.role === 'system') {
      groups.push([i]);
      open = undefined;
    } else if (m.role === 'user' || !open) {
      open = [i];
      groups.push(open);
    } else {
      open.push(i);
    }
  });
  return groups;
}

/**
 * The messages, checked against `contextLength` with `reserveOutput` tokens kept for the reply.
 * Without `dropOldest`, throws ContextLengthError when they do not fit. With it, drops the
 * oldest non-system turns (see turnGroups) until they fit; the latest turn is never dropped, and if even that does not fit, ContextLengthError.
 */
export function fitToContext(
  messages: readonly Message[],
  contextLength: number,
  reserveOutput = 0,
  options: FitOptions = {},
): Message[] {
  const budget = contextLength - reserveOutput;
  const clock = new CountClock();
  const sizes = messages.map((m) => messageTokens(m, clock));
  let total = REPLY_PRIMING + sizes.reduce((a, b) => a + b, 0);
  if (total <= budget) return [...messages];
  if (!options.dropOldest) throw new ContextLengthError(total + reserveOutput, contextLength);

  const groups = turnGroups(messages);
  const dropped = new Set<number>();
  const lastIndex = messages.length - 1;
  for (const group of groups) {
    if (total <= budget) break;
    const head = messages[group[0] as number] as Message;
    if (head.role === 'system') continue;
    if (group.includes(lastIndex)) break;
    for (const i of group) {
      dropped.add(i);
      total -= sizes[i] as number;
    }
  }
  if (total > budget) throw new ContextLengthError(total + reserveOutput, contextLength, ' even after dropping older turns');
  return messages.filter((_, i) => !dropped.has(i));
}

/**
 * A cheap upper bound on the prompt's tokens, without the tokenizer: a byte-level BPE token
 * covers at least one byte, so the UTF-8 size of the serialised messages (which also counts
 * the JSON framing, more than the per-message overhead) bounds the text; images count at
 * their fixed figure. Used to skip the tokenizer for the common prompt that plainly fits.
 */
export function tokenUpperBound(messages: readonly Message[]): number {
  let images = 0;
  for (const m of messages) {
    if (m.role === 'user' && Array.isArray(m.content)) images += m.content.filter((p) => p.type === 'image_url').length;
  }
  return REPLY_PRIMING + Buffer.byteLength(JSON.stringify(messages)) + images * IMAGE_TOKENS;
}
