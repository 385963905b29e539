/**
 * The response cache's key: a SHA-256 of the canonical request. Two requests get the same
 * key exactly when everything that can change the answer is the same: the model string as
 * resolved, the endpoint, the messages, and every request parameter (tools, schema, sampling).
 * Object keys are sorted, so `{ role, content }` and `{ content, role }` hash alike. Nothing
 * secret goes in: API keys and headers are not part of a request's params.
 *
 * A chat sends its whole history every turn, so hashing it anew would cost more each turn
 * (about 1 µs per KB). The hash state after each request's messages is kept beside its last
 * message, so the next turn, whose history begins with the very same message objects, hashes
 * only what was added. Chat never changes a message object once it is in the history (it
 * keeps copies, and hands out copies), which is what makes object identity a safe test.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Message, RequestParams } from '../types.js';

/** Bumped when the key's inputs or the stored entry's shape change: old entries stop matching. */
export const CACHE_FORMAT = 1;

/** Parameters that change how a request is billed, not what it answers. */
const NOT_ANSWER_CHANGING = new Set<string>(['promptCaching', 'cacheBreakpoints']);

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

/**
 * One message's canonical text. The common message (a role, string content, perhaps a tool
 * call id) is a JSON array in a fixed order, which the engine's own JSON.stringify writes about
 * four times faster than a sorted-key walk; anything else is the sorted-key object. An array
 * and an object can never spell the same text.
 */
function messageText(message: Message): string {
  const m = message as unknown as Record<string, unknown>;
  if (typeof m.content === 'string') {
    let plain = true;
    for (const key in m) if (key !== 'role' && key !== 'content' && key !== 'tool_call_id') plain = false;
    if (plain) return JSON.stringify([m.role, m.content, m.tool_call_id ?? null]);
  }
  return canonicalJSON(message);
}

function answerParams(params: RequestParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(params)) if (!NOT_ANSWER_CHANGING.has(key)) out[key] = value;
  return out;
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
 * text on its own line (JSON has no raw newline, so the lines cannot run together), then the
 * model, endpoint and parameters.
 */
export function requestKey(input: KeyInput): string {
  const { messages } = input;
  const known = longestHashedPrefix(messages);
  let hash: Hash;
  if (known) hash = known.hash.copy();
  else hash = createHash('sha256').update(`switchboard-cache-v${CACHE_FORMAT}\n`);
  // One update for all new messages: each call into the hash costs about a microsecond.
  let text = '';
  for (let i = known ? known.messages.length : 0; i < messages.length; i++) text += `${messageText(messages[i] as Message)}\n`;
  hash.update(text);
  const last = messages[messages.length - 1];
  if (last && known?.messages.length !== messages.length) hashedPrefixes.set(last, { messages: [...messages], hash: hash.copy() });
  hash.update(canonicalJSON({ model: input.model, baseURL: input.baseURL, params: answerParams(input.params) }));
  return hash.digest('hex');
}
