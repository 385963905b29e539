/**
 * HTTP transport: sends one wire request with fetch and turns the answer into batches of
 * canonical events (one batch per network read, so the hot path allocates little). It is the
 * one place every protocol's answer passes through, so what holds for all of them is checked
 * here rather than in each protocol.
 *
 * - Non-2xx answers become typed errors with the provider's message and Retry-After.
 * - A body that is not the protocol (HTML from a proxy, bad JSON) is a ProtocolError naming the URL.
 * - A stream that closes before its terminator is a ProtocolError, not a short answer; so is a
 *   200 with no completion in it, an event or body the protocol cannot read, and usage that is
 *   not token counts. A 400 saying the prompt is too long is a ContextLengthError.
 * - Nothing waits forever or grows without bound: a first-byte timeout, an idle timeout between
 *   events and a maximum reply size apply by default (limits.ts).
 * - Leaving the iteration early aborts the request.
 */
import { createParser } from 'eventsource-parser';
import {
  AbortError,
  NetworkError,
  ProtocolError,
  SwitchboardError,
  TimeoutError,
  apiErrorFromStatus,
  redactSecrets,
  redactURL,
} from '../errors.js';
import { limitOf, type Limits } from '../limits.js';
import { contextOverflowError } from './context-overflow.js';
import type { CanonicalRequest, ProtocolEvent } from '../types.js';
import type { Endpoint, Protocol, SSEMessage, WireRequest } from './protocol.js';

export interface TransportOptions {
  signal?: AbortSignal | undefined;
  /** Milliseconds the whole request may take, first byte to last. */
  timeoutMs?: number | undefined;
  /** The fetch to send with (default: the global one); the gateway passes a pooled client (pooled-fetch.ts). */
  fetch?: typeof fetch | undefined;
  /** Time and size limits (first byte, idle, reply size); defaults in limits.ts. */
  limits?: Limits | undefined;
}

/** Parse a Retry-After header (seconds or an HTTP date) or `retry-after-ms` into milliseconds. */
export function parseRetryAfter(headers: Headers): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}...` : flat;
}

/** Most of an error body kept for its message; the rest is not read. */
const ERROR_BODY_BYTES = 64 * 1024;

/**
 * Aborts a request whose server goes quiet: no response headers within `firstByteMs`, then
 * no progress within `idleMs`. Progress is only noted (a clock read); the timer re-arms
 * itself for the remainder when it fires early, so no timer is reset per event.
 */
class Watchdog {
  expired: 'first-byte' | 'idle' | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #last = 0;
  readonly #idleMs: number | undefined;
  readonly #abort: () => void;

  constructor(abort: () => void, firstByteMs: number | undefined, idleMs: number | undefined) {
    this.#abort = abort;
    this.#idleMs = idleMs;
    if (firstByteMs !== undefined) this.#timer = setTimeout(() => this.#expire('first-byte'), firstByteMs);
  }

  /** The headers arrived: from now on, the idle limit applies. */
  headers(): void {
    this.stop();
    if (this.#idleMs === undefined) return;
    this.#last = performance.now();
    this.#timer = setTimeout(this.#check, this.#idleMs);
  }

  progress(): void {
    this.#last = performance.now();
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #check = (): void => {
    const idleMs = this.#idleMs as number;
    const quiet = performance.now() - this.#last;
    if (quiet >= idleMs) this.#expire('idle');
    else this.#timer = setTimeout(this.#check, idleMs - quiet);
  };

  #expire(which: 'first-byte' | 'idle'): void {
    this.expired = which;
    this.#timer = undefined;
    this.#abort();
  }
}

/** Events that are (part of) a completion, as opposed to metadata around one. */
function isCompletion(event: ProtocolEvent): boolean {
  return event.type !== 'start' && event.type !== 'usage' && event.type !== 'annotations';
}

const USAGE_COUNTS = ['promptTokens', 'completionTokens', 'totalTokens'] as const;
const USAGE_BREAKDOWNS = ['cachedTokens', 'cacheWriteTokens', 'reasoningTokens'] as const;

/** Usage a server reported, checked: token counts are non-negative integers, a cost a non-negative number. */
function checkUsage(event: Extract<ProtocolEvent, { type: 'usage' }>, provider: string, url: string): void {
  const usage = event.usage as unknown as Record<string, unknown>;
  const bad = (field: string, value: unknown): never => {
    throw new ProtocolError(
      `${provider} reported usage that is not a token count (${field}: ${JSON.stringify(value) ?? String(value)}); the reply was discarded.`,
      { url },
    );
  };
  for (const field of USAGE_COUNTS) {
    const n = usage[field];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) bad(field, n);
  }
  for (const field of USAGE_BREAKDOWNS) {
    const n = usage[field];
    if (n !== undefined && (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)) bad(field, n);
  }
  if (event.cost !== undefined && !(typeof event.cost === 'number' && Number.isFinite(event.cost) && event.cost >= 0)) bad('cost', event.cost);
}

/** Send a request and yield its canonical events in batches. */
export async function* sendRequest(
  protocol: Protocol,
  endpoint: Endpoint,
  request: CanonicalRequest,
  options: TransportOptions = {},
): AsyncGenerator<ProtocolEvent[], void, undefined> {
  const built = buildWireRequest(protocol, endpoint, request);
  const url = safeURL(built.url);
  const userSignal = options.signal;
  if (userSignal?.aborted) throw new AbortError();
  // Signing (SigV4) or an access token (Vertex) goes on last, over the finished request.
  const wire = endpoint.authorize ? await endpoint.authorize(built) : built;
  const timeoutMs = options.timeoutMs !== undefined && options.timeoutMs > 0 ? options.timeoutMs : undefined;
  const maxReplyBytes = limitOf(options.limits, 'maxReplyBytes');
  const firstByteMs = limitOf(options.limits, 'firstByteTimeout');
  const idleMs = limitOf(options.limits, 'idleTimeout');
  // An AbortController costs a few percent of a short call, so there is one only when
  // something can abort: the caller's signal, a timeout or the idle watchdog (on by default).
  const controller = userSignal || timeoutMs !== undefined || firstByteMs !== undefined || idleMs !== undefined ? new AbortController() : undefined;
  let timedOut = false;
  const onAbort = (): void => controller?.abort();
  if (controller) userSignal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          controller?.abort();
        }, timeoutMs)
      : undefined;
  const watchdog = firstByteMs !== undefined || idleMs !== undefined ? new Watchdog(onAbort, firstByteMs, idleMs) : undefined;
  let bodyReader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let finished = false;

  const failure = (err: unknown): Error => {
    if (err instanceof SwitchboardError) return err;
    if (timedOut) return new TimeoutError(`${endpoint.provider} did not answer within ${options.timeoutMs} ms (${url}).`);
    if (watchdog?.expired === 'first-byte') {
      return new TimeoutError(`${endpoint.provider} sent no response within ${firstByteMs} ms (${url}); limits.firstByteTimeout sets how long to wait.`);
    }
    if (watchdog?.expired === 'idle') {
      return new TimeoutError(`${endpoint.provider} went ${idleMs} ms without sending anything in the middle of its reply (${url}); limits.idleTimeout sets how long to wait.`);
    }
    if (userSignal?.aborted) return new AbortError();
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    const detail = cause instanceof Error ? cause.message : String(cause);
    return new NetworkError(`Could not reach ${endpoint.provider} at ${url}: ${redactSecrets(detail)}`, err);
  };
  const tooLarge = (): ProtocolError =>
    new ProtocolError(`The reply from ${endpoint.provider} is larger than ${maxReplyBytes} bytes (limits.maxReplyBytes); it was discarded.`, { url });
  const notProtocol = (err: unknown, what: string): Error =>
    err instanceof SwitchboardError
      ? err
      : new ProtocolError(`${endpoint.provider} at ${url} sent ${what} that is not its protocol (${err instanceof Error ? err.message : String(err)}).`, { url, cause: err });

  /**
   * The next piece of a body. A read that fails is the timeout or abort that caused it, else a
   * network failure, or in the middle of a stream a cut stream (which a retry may get whole).
   */
  const readChunk = async (body: ReadableStreamDefaultReader<Uint8Array>, inStream: boolean): ReturnType<typeof body.read> => {
    try {
      return await body.read();
    } catch (err) {
      if (!inStream || timedOut || watchdog?.expired || userSignal?.aborted) throw failure(err);
      throw new ProtocolError(
        `The connection to ${endpoint.provider} closed in the middle of the stream; the partial reply was discarded.`,
        { url, isRetryable: true, cause: err },
      );
    }
  };

  /** A whole body as text, reading at most `max` bytes (more: `onOverflow`, or the text so far when it returns nothing). */
  const readText = async (response: Response, max: number | undefined, onOverflow?: () => Error): Promise<string> => {
    if (!response.body) return '';
    // A length the server declared within the bound: read it in one go (cheaper than chunk by chunk).
    const declared = Number(response.headers.get('content-length') ?? Number.NaN);
    if (Number.isSafeInteger(declared) && (max === undefined || declared <= max)) {
      try {
        const text = await response.text();
        watchdog?.progress();
        return text;
      } catch (err) {
        throw failure(err);
      }
    }
    // The reader is never released: the response does not leave this function, and Node's
    // releaseLock() builds a TypeError (stack trace included) for every request.
    const body = (bodyReader = response.body.getReader());
    const decoder = new TextDecoder();
    let text = '';
    let received = 0;
    for (;;) {
      const chunk = await readChunk(body, false);
      if (chunk.done) break;
      watchdog?.progress();
      received += chunk.value.byteLength;
      if (max !== undefined && received > max) {
        body.cancel().catch(() => undefined);
        if (onOverflow) throw onOverflow();
        text += decoder.decode(chunk.value.subarray(0, chunk.value.byteLength - (received - max)));
        return text;
      }
      text += decoder.decode(chunk.value, { stream: true });
    }
    return text + decoder.decode();
  };

  try {
    let response: Response;
    try {
      response = await (options.fetch ?? fetch)(wire.url, {
        method: 'POST',
        headers: wire.headers,
        body: wire.body,
        signal: controller?.signal ?? userSignal ?? null,
      });
    } catch (err) {
      throw failure(err);
    }
    watchdog?.headers();

    if (!response.ok) {
      const text = await readText(response, ERROR_BODY_BYTES);
      const { message, code } = looksLikeHTML(response, text)
        ? { message: `an HTML page instead of an API reply from ${url} (a proxy or a wrong base URL?): ${snippet(stripTags(text))}`, code: undefined }
        : protocol.parseErrorBody(text, response.headers);
      const overflow = contextOverflowError(response.status, text, message, endpoint.provider);
      if (overflow) throw overflow;
      throw apiErrorFromStatus({
        status: response.status,
        provider: endpoint.provider,
        providerMessage: message || response.statusText || `HTTP ${response.status}`,
        providerCode: code,
        url,
        retryAfterMs: parseRetryAfter(response.headers),
      });
    }

    const contentType = response.headers.get('content-type') ?? '';
    if (!request.stream || contentType.includes('application/json')) {
      const text = await readText(response, maxReplyBytes, tooLarge);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new ProtocolError(
          `${endpoint.provider} at ${url} answered with something that is not JSON (content-type ${contentType || 'none'}): ${snippet(looksLikeHTML(response, text) ? stripTags(text) : text)}`,
          { url },
        );
      }
      let events: ProtocolEvent[];
      try {
        events = protocol.parseResponse(body, endpoint);
      } catch (err) {
        throw notProtocol(err, `a reply (${snippet(text)})`);
      }
      let complete = false;
      for (const event of events) {
        if (event.type === 'usage') checkUsage(event, endpoint.provider, url);
        else if (isCompletion(event)) complete = true;
      }
      if (!complete) throw emptyReply(endpoint.provider, url, snippet(text));
      yield events;
      finished = true;
      return;
    }

    const streamType = protocol.streamContentType ?? 'text/event-stream';
    if (!contentType.includes(streamType)) {
      const text = await readText(response, ERROR_BODY_BYTES);
      throw new ProtocolError(
        `${endpoint.provider} at ${url} answered a streaming request with content-type ${contentType || 'none'} instead of ${streamType}: ${snippet(looksLikeHTML(response, text) ? stripTags(text) : text)}`,
        { url },
      );
    }
    if (!response.body) throw new ProtocolError(`${endpoint.provider} sent an empty stream.`, { url });

    const reader = protocol.createStreamReader(endpoint);
    let batch: ProtocolEvent[] = [];
    let complete = false;
    let events = 0;
    const onMessage = (message: SSEMessage): void => {
      events++;
      const from = batch.length;
      try {
        reader.onEvent(message, batch);
      } catch (err) {
        throw notProtocol(err, `a stream event (${snippet(message.data)})`);
      }
      for (let i = from; i < batch.length; i++) {
        const event = batch[i] as ProtocolEvent;
        if (event.type === 'usage') checkUsage(event, endpoint.provider, url);
        else if (!complete) complete = isCompletion(event);
      }
    };
    // SSE, or the protocol's own framing (Bedrock's binary event stream).
    const frames = protocol.createFrameDecoder?.();
    const parser = createParser({ onEvent: onMessage });
    const decoder = new TextDecoder();
    const feed = frames
      ? (bytes: Uint8Array): void => {
          let decoded: SSEMessage[];
          try {
            decoded = frames.push(bytes);
          } catch (err) {
            throw notProtocol(err, 'a stream frame');
          }
          for (const message of decoded) onMessage(message);
        }
      : (bytes: Uint8Array): void => parser.feed(decoder.decode(bytes, { stream: true }));
    const body = (bodyReader = response.body.getReader());
    let received = 0;
    for (;;) {
      const chunk = await readChunk(body, true);
      if (chunk.done) break;
      received += chunk.value.byteLength;
      if (maxReplyBytes !== undefined && received > maxReplyBytes) throw tooLarge();
      const before = events;
      feed(chunk.value);
      // Only whole events are progress: a server dripping stray bytes or comments is idle.
      if (events !== before) watchdog?.progress();
      if (batch.length > 0) {
        const out = batch;
        batch = [];
        yield out;
      }
      if (reader.done) break;
    }
    if (!frames) {
      const tail = decoder.decode();
      if (tail) parser.feed(tail);
      parser.reset({ consume: true });
    }
    if (batch.length > 0) yield batch;
    if (!reader.done) {
      throw new ProtocolError(
        `The stream from ${endpoint.provider} ended before it was complete (no end-of-stream marker); the partial reply was discarded.`,
        { url, isRetryable: true },
      );
    }
    if (!complete) throw emptyReply(endpoint.provider, url, 'a stream with no content and no finish reason');
    finished = true;
  } finally {
    if (timer) clearTimeout(timer);
    watchdog?.stop();
    userSignal?.removeEventListener('abort', onAbort);
    // A consumer that stopped reading (or an error) cancels the upstream request.
    if (!finished) {
      controller?.abort();
      bodyReader?.cancel().catch(() => undefined);
    }
  }
}

/**
 * The protocol's request, for a base URL that may carry a query (`...?api_key=...`): the
 * protocol appends its path to the base URL without the query, and the query goes last.
 */
function buildWireRequest(protocol: Protocol, endpoint: Endpoint, request: CanonicalRequest): WireRequest {
  const q = endpoint.baseURL.indexOf('?');
  if (q < 0) return protocol.buildRequest(request, endpoint);
  const wire = protocol.buildRequest(request, { ...endpoint, baseURL: endpoint.baseURL.slice(0, q).replace(/\/+$/, '') });
  wire.url += (wire.url.includes('?') ? '&' : '?') + endpoint.baseURL.slice(q + 1);
  return wire;
}

/** A 200 answer that holds no completion at all: neither content nor a finish reason. */
function emptyReply(provider: string, url: string, what: string): ProtocolError {
  return new ProtocolError(`${provider} at ${url} answered 200 without a completion in it (${what}); nothing was kept.`, { url, isRetryable: true });
}

function looksLikeHTML(response: Response, text: string): boolean {
  return (response.headers.get('content-type') ?? '').includes('text/html') || /^\s*<(!doctype|html)/i.test(text);
}

function stripTags(text: string): string {
  return text.replace(/<script[\s\S]*?<\/script>/gi, '').replace(/<[^>]+>/g, ' ');
}

/** The URL without credentials: no user-info, no `?key=` (Gemini) or other credential parameters. */
export function safeURL(url: string): string {
  return redactURL(url);
}
