/**
 * The response cache's key: a SHA-256 of the canonical request. Two requests get the same
 * key exactly when everything that can change the answer is the same: the model string as
 * resolved, the endpoint, the messages, and every request parameter (tools, schema, sampling).
 * Object keys are sorted, so `{ role, content }` and `{ content, role }` hash alike. Nothing
 * secret goes in: API keys and headers are not part of a request's params.
 *
 * A chat sends its whole history every turn, so hashing it anew would cost more each turn
 * (about 1 µs per KB). When the caller says the next request continues this one (`continued`:
 * Chat does), the hash state after the request's messages is kept beside its last message, so
 * the next turn, whose history begins with the very same message objects, hashes only what was
 * added. Chat never changes a message object once it is in the history (it keeps copies, and
 * hands out copies; a tool is given a copy of the conversation, tools/loop.ts), which is what
 * makes object identity a safe test. Nobody else keeps the
 * state: a kept state holds the request's messages until the last one is collected, which for
 * a gateway request or a Call (fresh objects, never sent again) is garbage kept for nothing,
 * and keeping it costs more than the hash (the collector promotes everything it holds).
 */
import { createHash, hash as hashOnce, type Hash } from 'node:crypto';
import type { Message, RequestParams } from '../types.js';

/** Bumped when the key's inputs or the stored entry's shape change: old entries stop matching. */
export const CACHE_FORMAT = 2;

/** Parameters that change how a request is billed, not what it answers. */
const NOT_ANSWER_CHANGING = new Set<string>(['promptCaching', 'cacheBreakpoints']);

export interface KeyInput {
  /** The model string after alias resolution. */
  model: string;
  /** A custom endpoint: the same model name on two servers answers differently. */
  baseURL?: string | undefined;
  messages: readonly Message[];
  params: RequestParams;
  /** The next request extends these very message objects (Chat): keep the hash state for it. */
  continued?: boolean | undefined;
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

/** No lone surrogate (ES2024's String.prototype.isWellFormed, in Node since 20). */
function wellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

/** A field that delimits itself: its length, a colon, the text. */
function field(text: string): string {
  return `${text.length}:${text}`;
}

/**
 * One message's canonical text, self-delimiting so that the texts of a history can run
 * together unambiguously. The common message (a role, string content, perhaps a tool call id)
 * is its fields length-prefixed: no escaping pass over the content, which is what a JSON
 * spelling costs (three times the hash itself on a long history). Anything else, and a field
 * with a lone surrogate (which UTF-8 cannot tell apart from U+FFFD), is `o` and the sorted-key
 * JSON (which escapes it), length-prefixed. A `p` record and an `o` record never spell the same
 * text.
 */
function messageText(message: Message): string {
  const m = message as unknown as Record<string, unknown>;
  const { role, content, tool_call_id: id } = m;
  if (typeof content === 'string' && typeof role === 'string' && wellFormed(content) && wellFormed(role) && (id === undefined || (typeof id === 'string' && wellFormed(id)))) {
    let plain = true;
    for (const key in m) if (key !== 'role' && key !== 'content' && key !== 'tool_call_id') plain = false;
    if (plain) return `p${field(role)}${id === undefined ? '-' : field(id)}${field(content)}`;
  }
  return `o${field(canonicalJSON(message))}`;
}

function answerParams(params: RequestParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) if (!NOT_ANSWER_CHANGING.has(key)) out[key] = value;
  return out;
}

/** The last request's tail, kept while its parameters are all primitives (nothing that could change unseen). */
interface SpelledTail {
  model: string;
  baseURL: string | undefined;
  keys: string[];
  values: unknown[];
  text: string;
}
let lastTail: SpelledTail | undefined;

/**
 * The canonical text after the messages: model, endpoint and the parameters that change the
 * answer, as sorted-key JSON. A client sends the same parameters turn after turn (a new object
 * each time), and spelling them costs a dozen calls into JSON.stringify (about 7 µs in a whole
 * turn, where nothing is warm); when model, endpoint and every parameter equal the last
 * request's, in the same order, the last text is the text. Only primitive parameters are
 * compared: an object (tools, a schema) may have been changed in place since, so a request with
 * one is always spelled out.
 */
function tailText(model: string, baseURL: string | undefined, params: RequestParams): string {
  const keys = Object.keys(params);
  const record = params as Record<string, unknown>;
  const last = lastTail;
  if (last && last.model === model && last.baseURL === baseURL && last.keys.length === keys.length) {
    let same = true;
    for (let i = 0; i < keys.length && same; i++) same = last.keys[i] === keys[i] && last.values[i] === record[keys[i] as string];
    if (same) return last.text;
  }
  const text = canonicalJSON({ model, baseURL, params: answerParams(params) });
  const values = keys.map((key) => record[key]);
  const primitive = values.every((value) => value === null || value === undefined || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean');
  lastTail = primitive ? { model, baseURL, keys, values, text } : undefined;
  return text;
}

/** The hash state after a run of messages: kept beside the run's last message object. */
interface HashedPrefix {
  messages: readonly Message[];
  hash: Hash;
}
const hashedPrefixes = new WeakMap<Message, HashedPrefix>();

/** The longest run at the start of `messages` hashed before (the very same objects, in order). */
function longestHashedPrefix(messages: readonly Message[]): HashedPrefix | undefined {
  for (let end = messages.length - 1; end >= 0; end--) {
    const prefix = hashedPrefixes.get(messages[end] as Message);
    if (!prefix || prefix.messages.length !== end + 1) continue;
    let same = true;
    for (let i = 0; i < end && same; i++) same = prefix.messages[i] === messages[i];
    if (same) return prefix;
  }
  return undefined;
}

/**
 * The hex SHA-256 of the canonical request: the format version, each message's canonical
 * text (self-delimiting, so they cannot run together), then the model, endpoint and parameters.
 */
export function requestKey(input: KeyInput): string {
  const { messages } = input;
  // Only Chat keeps hash states, so only its requests look for one.
  const known = input.continued ? longestHashedPrefix(messages) : undefined;
  const from = known ? known.messages.length : 0;
  // One update for all new messages: each call into the hash costs about a microsecond.
  let text = known ? '' : `switchboard-cache-v${CACHE_FORMAT}\n`;
  for (let i = from; i < messages.length; i++) text += messageText(messages[i] as Message);
  const tail = tailText(input.model, input.baseURL, input.params);
  // Nothing to keep and nothing to continue: one call, no hash object.
  if (!known && !input.continued) return hashOnce('sha256', text + tail, 'hex');
  const hash = known ? known.hash.copy() : createHash('sha256');
  hash.update(text);
  const last = messages[messages.length - 1];
  if (input.continued && last && from !== messages.length) hashedPrefixes.set(last, { messages: [...messages], hash: hash.copy() });
  hash.update(tail);
  return hash.digest('hex');
}
