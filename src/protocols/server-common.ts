/**
 * What every server half shares: a response's events collected into one message (for
 * non-streamed bodies), HTTP statuses for typed errors, and small readers for request
 * bodies that throw the protocol's own WireRequestError.
 */
import { APIError, type SwitchboardError } from '../errors.js';
import type { FinishReason, ProtocolEvent, ReasoningDetail, TokenUsage } from '../types.js';
import { WireRequestError, type StreamEnd } from './protocol.js';

export interface CollectedToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** One response's events, folded into the parts a whole-body response is written from. */
export interface CollectedResponse {
  text: string;
  reasoning: ReasoningDetail[];
  toolCalls: CollectedToolCall[];
  annotations: unknown[];
  finishReason: FinishReason;
  rawFinishReason?: string;
  usage?: TokenUsage;
  cost?: number;
}

export function collectEvents(events: readonly ProtocolEvent[], end?: StreamEnd): CollectedResponse {
  const out: CollectedResponse = { text: '', reasoning: [], toolCalls: [], annotations: [], finishReason: 'stop' };
  for (const event of events) {
    switch (event.type) {
      case 'text-delta':
        out.text += event.text;
        break;
      case 'reasoning-delta': {
        let last = out.reasoning[out.reasoning.length - 1];
        // A signature closes a reasoning block; text after it starts the next one.
        if (!last || last.signature !== undefined) out.reasoning.push((last = { text: '' }));
        last.text += event.text;
        if (event.signature !== undefined) last.signature = event.signature;
        break;
      }
      case 'tool-call-delta': {
        const call = (out.toolCalls[event.index] ??= { id: '', name: '', arguments: '' });
        if (event.id) call.id = event.id;
        if (event.name) call.name = event.name;
        call.arguments += event.argumentsDelta;
        break;
      }
      case 'annotations':
        out.annotations.push(...event.annotations);
        break;
      case 'finish':
        out.finishReason = event.reason;
        if (event.rawReason !== undefined) out.rawFinishReason = event.rawReason;
        break;
      case 'usage':
        out.usage = event.usage;
        if (event.cost !== undefined) out.cost = event.cost;
        break;
      case 'start':
        break;
    }
  }
  out.toolCalls = out.toolCalls.filter((c) => c !== undefined);
  if (end) {
    out.finishReason = end.finishReason;
    if (end.rawFinishReason !== undefined) out.rawFinishReason = end.rawFinishReason;
    if (end.usage) out.usage = end.usage;
    if (typeof end.cost === 'number') out.cost = end.cost;
  }
  return out;
}

/** The HTTP status a typed error is answered with (before a protocol's own adjustments). */
export function errorStatus(error: SwitchboardError | WireRequestError): number {
  if (error instanceof WireRequestError || error instanceof APIError) return error.status;
  switch (error.code) {
    case 'authentication':
    case 'missing_key':
      return 401;
    case 'permission':
      return 403;
    case 'not_found':
    case 'unknown_provider':
      return 404;
    case 'rate_limit':
      return 429;
    case 'overloaded':
    case 'no_deployment':
      return 503;
    case 'timeout':
      return 504;
    case 'network':
    case 'protocol':
      return 502;
    case 'server':
    case 'aborted':
      return 500;
    default:
      return 400;
  }
}

/** `Retry-After` (whole seconds, as the header takes) and `retry-after-ms` for an error that says when to retry. */
export function retryHeaders(error: SwitchboardError | WireRequestError): Record<string, string> {
  const ms = error instanceof APIError ? error.retryAfterMs : (error as { retryAfterMs?: unknown }).retryAfterMs;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return {};
  return { 'retry-after': String(Math.ceil(ms / 1000)), 'retry-after-ms': String(Math.round(ms)) };
}

/** The message a client may see: the provider's own text for provider errors. */
export function errorMessage(error: SwitchboardError | WireRequestError): string {
  return error instanceof APIError ? error.providerMessage : error.message;
}

/**
 * Anthropic's stop reason (Bedrock Converse uses the same words) for how a reply ended;
 * `contentFilter` is the protocol's word for a refusal (`refusal`, `content_filtered`).
 */
export function stopReason(end: { finishReason: FinishReason; rawFinishReason?: string | undefined; stopSequence?: string | undefined }, contentFilter: string): string {
  if (end.stopSequence !== undefined || end.rawFinishReason === 'stop_sequence') return 'stop_sequence';
  switch (end.finishReason) {
    case 'length':
      return 'max_tokens';
    case 'tool-calls':
      return 'tool_use';
    case 'content-filter':
      return contentFilter;
    default:
      return 'end_turn';
  }
}

/**
 * The first key of `record` that `known` does not hold, or undefined: how a server half
 * refuses fields the real provider refuses. A for-in over a parsed JSON object (own keys
 * only), so checking a body allocates nothing.
 */
export function unknownField(record: Record<string, unknown>, known: ReadonlySet<string>): string | undefined {
  for (const key in record) if (!known.has(key)) return key;
  return undefined;
}

/** A plain JSON object, or undefined. */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * A request's `stream` flag: true, false, or absent (null reads as absent, as the providers
 * read it). Anything else is refused: `"stream": "yes"` must not quietly answer in one body.
 */
export function readStreamFlag(record: Record<string, unknown>, refuse: (got: string) => Error): boolean {
  const value = record.stream;
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw refuse(jsonTypeName(value));
  return value;
}

/** A JSON type a body field may have (null always reads as absent, as the providers read it). */
export type JsonType = 'object' | 'array' | 'string' | 'number' | 'boolean';

/**
 * Each server half's map of the top-level fields whose JSON type it checks, to the types each
 * may have: a field of another type would otherwise be read as absent and quietly ignored
 * (`"tool_choice": "any"` to Anthropic, `"systemInstruction": "..."` to Gemini).
 */
export type FieldTypes = ReadonlyMap<string, readonly JsonType[]>;

/** The expected types of `field` when `value` is none of them (null and undefined never are wrong); undefined when it is right. */
export function wrongType(types: FieldTypes, field: string, value: unknown): readonly JsonType[] | undefined {
  if (value === null || value === undefined) return undefined;
  const expected = types.get(field);
  if (expected === undefined) return undefined;
  const type = Array.isArray(value) ? 'array' : typeof value;
  return expected.includes(type as JsonType) ? undefined : expected;
}

const TYPE_NAMES: Record<JsonType, string> = { object: 'an object', array: 'an array', string: 'a string', number: 'a number', boolean: 'a boolean' };

/** Expected types as an error message says them: 'an object or a string'. */
export function typeNames(types: readonly JsonType[]): string {
  return types.map((t) => TYPE_NAMES[t]).join(' or ');
}

/** OpenAI's refusal of a field of the wrong JSON type (Chat Completions and Responses word it alike). */
export function openAITypeMessage(field: string, expected: readonly JsonType[], value: unknown): string {
  return `Invalid type for '${field}': expected ${typeNames(expected)}, but got ${jsonTypeName(value)} instead.`;
}

/** A JSON value's type as an error message says it: 'a string', 'an array', 'an object'. */
export function jsonTypeName(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Tool-call arguments (a JSON string) as an object for protocols that carry objects. */
export function argumentsObject(args: string): unknown {
  if (args.trim() === '') return {};
  try {
    return JSON.parse(args) as unknown;
  } catch {
    return { _unparsed: args };
  }
}
