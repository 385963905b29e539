/**
 * The response cache: an identical request is answered from storage, at no cost, as the same
 * stream of events a live reply gives (text and reasoning deltas, then `finish`). The turn's
 * result says `cached: true`, its cost is 0 and `usage.savedCost` holds what the reply cost
 * when it was made. The tool loop and Chat see an ordinary turn, so tool calls run and
 * history commits exactly as for a live reply.
 *
 * Only whole replies are stored: a failed request, a stream cut short or a reply that ended
 * in an error is never written. A request sampled at a temperature above 0 gives a different
 * answer each time, so it is cached only when the caller says so (`anyTemperature`).
 */
import { warnOnce } from '../catalog/cost.js';
import { InvalidInputError } from '../errors.js';
import type { AssistantMessage, Message, RequestParams, StreamEvent, TurnResult, Usage } from '../types.js';
import { dollarsToFemto } from '../money.js';
import { requestKey } from './key.js';
import { MemoryCacheStore, type CacheStore } from './store.js';

export interface CacheOptions {
  /** Seconds an entry stays (default 86,400: one day); 0 keeps it until evicted. */
  ttl?: number;
  /** Entries of one namespace are looked up and cleared together (default `default`). */
  namespace?: string;
  /** Where entries live (default: one in-memory LRU of 64 MiB per process). */
  store?: CacheStore;
  /** Also cache requests sampled at a temperature above 0 (off: those answers vary by design). */
  anyTemperature?: boolean;
}

/** `cache` on Call, Chat or one request: `true` for the defaults, an object to choose, `false` to skip. */
export type CacheSetting = boolean | CacheOptions;

/** The cache a turn uses, with its options settled. */
export interface ResponseCache {
  store: CacheStore;
  namespace: string;
  ttlMs: number | null;
  anyTemperature: boolean;
}

export const DEFAULT_TTL_SECONDS = 86_400;

let processStore: MemoryCacheStore | undefined;
/** The in-memory store `cache: true` uses, one per process. */
export function defaultCacheStore(): MemoryCacheStore {
  processStore ??= new MemoryCacheStore();
  return processStore;
}

/** A request's setting over the client's: `false` turns it off, `true` keeps the client's choices. */
export function resolveCache(client: CacheSetting | undefined, request: CacheSetting | undefined): ResponseCache | undefined {
  let setting = request ?? client;
  if (request === true && typeof client === 'object') setting = client;
  if (setting === undefined || setting === false) return undefined;
  const options: CacheOptions = setting === true ? {} : setting;
  const ttl = options.ttl ?? DEFAULT_TTL_SECONDS;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) {
    throw new InvalidInputError(`cache.ttl is a number of seconds (0 keeps entries until evicted); got ${String(ttl)}.`);
  }
  if (options.namespace !== undefined && (typeof options.namespace !== 'string' || options.namespace === '')) {
    throw new InvalidInputError(`cache.namespace is a non-empty string; got ${JSON.stringify(options.namespace)}.`);
  }
  if (options.store !== undefined && (typeof options.store?.get !== 'function' || typeof options.store.set !== 'function')) {
    throw new InvalidInputError('cache.store needs get and set methods (a CacheStore such as MemoryCacheStore or SQLiteCacheStore).');
  }
  return {
    store: options.store ?? defaultCacheStore(),
    namespace: options.namespace ?? 'default',
    ttlMs: ttl === 0 ? null : ttl * 1000,
    anyTemperature: options.anyTemperature === true,
  };
}

/** Whether a request's answer may be stored and replayed. */
export function isCacheable(params: RequestParams, cache: Pick<ResponseCache, 'anyTemperature'>): boolean {
  return cache.anyTemperature || params.temperature === undefined || params.temperature === 0;
}

/** A delta as stored: `[0, text]` a text delta, `[1, text]` a reasoning delta. */
export type StoredDelta = [0 | 1, string];

/** A stored reply: the deltas as they streamed, and the result's fields that describe the answer. */
interface StoredReply {
  v: 1;
  /** The deltas of the answer, in order. */
  deltas: StoredDelta[];
  resolvedModel: string;
  provider: string;
  message: AssistantMessage;
  finishReason: TurnResult['finishReason'];
  rawFinishReason?: string;
  reasoning?: string;
  reasoningDetails?: TurnResult['reasoningDetails'];
  annotations?: unknown[];
  citations?: TurnResult['citations'];
  /** What the reply cost when it was made (dollars; null when unpriced). */
  cost: number | null;
}

export interface CachedTurnOptions {
  baseURL?: string | undefined;
  params: RequestParams;
  /** The next request extends these message objects (Chat's history): the key keeps its hash state for it (key.ts). */
  historyContinues?: boolean | undefined;
}

/** The cache key of a request: namespace, then the hash of the canonical request. */
export function cacheKey(model: string, messages: readonly Message[], options: CachedTurnOptions, namespace: string): string {
  return `${namespace}:${requestKey({ model, baseURL: options.baseURL, messages, params: options.params, continued: options.historyContinues })}`;
}

/**
 * Stores a live reply: called by the live turn with its result and the deltas of the attempt
 * that answered, before it hands the finish on, so a consumer that stops right after the
 * finish still leaves the entry. A promise (a store on the network) is awaited first.
 */
export type StoreReply = (result: TurnResult, deltas: StoredDelta[]) => void | Promise<void>;

/** A live turn that, given `store`, records its deltas and stores its whole reply (turn.ts). */
export type LiveTurn<O> = (model: string, messages: Message[], options: O, store?: StoreReply) => AsyncGenerator<StreamEvent[], void, undefined>;

/**
 * Look the request up; on a hit replay it, on a miss run `live`, which stores its whole reply.
 * Not a generator itself: with a store that answers at once (memory, SQLite) a miss is the live
 * turn as it is, with no generator layer in between (each would cost a few microtasks a batch),
 * and the cache's whole part of it is the key, the lookup and the write.
 */
export function cachedTurn<O extends CachedTurnOptions>(
  model: string,
  messages: Message[],
  options: O,
  cache: ResponseCache,
  live: LiveTurn<O>,
): AsyncGenerator<StreamEvent[], void, undefined> {
  if (!isCacheable(options.params, cache)) return live(model, messages, options);
  const started = performance.now();
  const startedAt = Date.now();
  // A request the key cannot spell (a parameter JSON cannot hold) is sent as it is, uncached.
  let key: string;
  try {
    key = cacheKey(model, messages, options, cache.namespace);
  } catch (err) {
    skipped(err);
    return live(model, messages, options);
  }
  const store: StoreReply = (result, deltas) => storeReply(cache, key, result, deltas);
  const answer = (stored: string | undefined): AsyncGenerator<StreamEvent[], void, undefined> => {
    const reply = stored === undefined ? undefined : parseReply(stored);
    return reply ? replay(model, reply, started, new Date(startedAt).toISOString()) : live(model, messages, options, store);
  };
  const stored = lookUp(cache, key, startedAt);
  return stored instanceof Promise ? afterLookUp(stored, answer) : answer(stored);
}

/** A store that answers later (Redis): wait for it, then hand out the hit or the live turn. */
async function* afterLookUp(
  pending: Promise<string | undefined>,
  then: (stored: string | undefined) => AsyncGenerator<StreamEvent[], void, undefined>,
): AsyncGenerator<StreamEvent[], void, undefined> {
  yield* then(await pending);
}

/** The store's answer, now or later; a store that fails is a miss (see `guarded`). */
function lookUp(cache: ResponseCache, key: string, now: number): string | undefined | Promise<string | undefined> {
  return guarded(() => cache.store.get(key, now), undefined);
}

/** Write a whole reply: never one that ended in an error. */
function storeReply(cache: ResponseCache, key: string, result: TurnResult, deltas: StoredDelta[]): void | Promise<void> {
  if (result.finishReason === 'error') return;
  return guarded(
    () =>
      cache.store.set(key, {
        value: JSON.stringify(toStored(result, deltas)),
        namespace: cache.namespace,
        costFemto: result.usage.cost === null ? null : dollarsToFemto(result.usage.cost),
        expiresAt: cache.ttlMs === null ? null : Date.now() + cache.ttlMs,
      }),
    undefined,
  );
}

function toStored(result: TurnResult, deltas: StoredDelta[]): StoredReply {
  const out: StoredReply = {
    v: 1,
    deltas,
    resolvedModel: result.resolvedModel,
    provider: result.provider,
    message: result.message,
    finishReason: result.finishReason,
    cost: result.usage.cost,
  };
  copyOptional(result, out);
  return out;
}

/** The result's fields a reply may or may not have, stored and replayed as they came. */
const OPTIONAL = ['rawFinishReason', 'reasoning', 'reasoningDetails', 'annotations', 'citations'] as const;
type OptionalFields = Pick<TurnResult, (typeof OPTIONAL)[number]>;

function copyOptional(from: OptionalFields, to: OptionalFields): void {
  for (const key of OPTIONAL) if (from[key] !== undefined) (to as Record<string, unknown>)[key] = from[key];
}

function parseReply(value: string): StoredReply | undefined {
  try {
    const reply = JSON.parse(value) as StoredReply;
    return reply.v === 1 && Array.isArray(reply.deltas) && typeof reply.message === 'object' ? reply : undefined;
  } catch {
    return undefined;
  }
}

/** The stored reply as a turn: its deltas in one batch, then the finish with `cached: true`. */
async function* replay(model: string, reply: StoredReply, started: number, startedAt: string): AsyncGenerator<StreamEvent[], void, undefined> {
  const events: StreamEvent[] = reply.deltas.map(([kind, text]) => ({ type: kind === 0 ? 'text-delta' : 'reasoning-delta', model, text }));
  if (events.length > 0) yield events;
  const elapsed = Math.round((performance.now() - started) * 10) / 10;
  const usage: Usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0, cost: 0 };
  if (reply.cost !== null) usage.savedCost = reply.cost;
  const result: TurnResult = {
    model,
    resolvedModel: reply.resolvedModel,
    provider: reply.provider,
    text: reply.message.content ?? '',
    message: reply.message,
    finishReason: reply.finishReason,
    usage,
    ttftMs: events.length > 0 ? elapsed : null,
    latencyMs: elapsed,
    tokensPerSecond: null,
    startedAt,
    cached: true,
  };
  copyOptional(reply, result);
  yield [{ type: 'finish', model, result }];
}

/**
 * A store that fails (a locked file, a lost connection) costs the cache, never the turn. An
 * answer given at once stays synchronous: awaiting it would cost the turn a few microtasks.
 */
function guarded<T>(op: () => T | Promise<T>, fallback: T): T | Promise<T> {
  const skip = (err: unknown): T => {
    skipped(err);
    return fallback;
  };
  try {
    const value = op();
    return value instanceof Promise ? value.catch(skip) : value;
  } catch (err) {
    return skip(err);
  }
}

function skipped(err: unknown): void {
  warnOnce('response-cache', `the response cache failed and is skipped: ${(err as Error).message}`);
}
