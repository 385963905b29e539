/**
 * HTTP transport: sends one wire request with fetch and turns the answer into batches of
 * canonical events (one batch per network read, so the hot path allocates little).
 *
 * - Non-2xx answers become typed errors with the provider's message and Retry-After.
 * - A body that is not the protocol (HTML from a proxy, bad JSON) is a ProtocolError naming the URL.
 * - A stream that closes before its terminator is a ProtocolError, not a short answer.
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
} from '../errors.js';
import type { CanonicalRequest, ProtocolEvent } from '../types.js';
import type { Endpoint, Protocol } from './protocol.js';

export interface TransportOptions {
  signal?: AbortSignal | undefined;
  /** Milliseconds the whole request may take, first byte to last. */
  timeoutMs?: number | undefined;
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

/** Send a request and yield its canonical events in batches. */
export async function* sendRequest(
  protocol: Protocol,
  endpoint: Endpoint,
  request: CanonicalRequest,
  options: TransportOptions = {},
): AsyncGenerator<ProtocolEvent[], void, undefined> {
  const built = protocol.buildRequest(request, endpoint);
  const userSignal = options.signal;
  if (userSignal?.aborted) throw new AbortError();
  const wire = endpoint.authorize ? await endpoint.authorize(built) : built;
  const timeoutMs = options.timeoutMs !== undefined && options.timeoutMs > 0 ? options.timeoutMs : undefined;
  // An AbortController (and fetch's work to follow its signal) is a few percent of a short
  // call, so there is one only when something can abort before the body is read: the
  // caller's signal or a timeout. A consumer that leaves early can only do so once the body
  // is being read, and cancelling the body aborts the request just the same (see finally).
  const controller = userSignal || timeoutMs !== undefined ? new AbortController() : undefined;
  let timedOut = false;
  const onAbort = (): void => controller?.abort();
  userSignal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          controller?.abort();
        }, timeoutMs)
      : undefined;
  let bodyReader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let finished = false;

  const failure = (err: unknown): Error => {
    if (err instanceof SwitchboardError) return err;
    if (timedOut) return new TimeoutError(`${endpoint.provider} did not answer within ${options.timeoutMs} ms (${safeURL(wire.url)}).`);
    if (userSignal?.aborted) return new AbortError();
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    const detail = cause instanceof Error ? cause.message : String(cause);
    return new NetworkError(`Could not reach ${endpoint.provider} at ${safeURL(wire.url)}: ${redactSecrets(detail)}`, err);
  };

  try {
    let response: Response;
    try {
      response = await fetch(wire.url, {
        method: 'POST',
        headers: wire.headers,
        body: wire.body,
        signal: controller?.signal ?? null,
      });
    } catch (err) {
      throw failure(err);
    }

    if (!response.ok) {
      let text = '';
      try {
        text = await response.text();
      } catch (err) {
        throw failure(err);
      }
      const { message, code } = looksLikeHTML(response, text)
        ? { message: `an HTML page instead of an API reply from ${safeURL(wire.url)} (a proxy or a wrong base URL?): ${snippet(stripTags(text))}`, code: undefined }
        : protocol.parseErrorBody(text, response.headers);
      throw apiErrorFromStatus({
        status: response.status,
        provider: endpoint.provider,
        providerMessage: message || response.statusText || `HTTP ${response.status}`,
        providerCode: code,
        url: safeURL(wire.url),
        retryAfterMs: parseRetryAfter(response.headers),
      });
    }

    const contentType = response.headers.get('content-type') ?? '';
    if (!request.stream || contentType.includes('application/json')) {
      let text: string;
      try {
        text = await response.text();
      } catch (err) {
        throw failure(err);
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new ProtocolError(
          `${endpoint.provider} at ${safeURL(wire.url)} answered with something that is not JSON (content-type ${contentType || 'none'}): ${snippet(looksLikeHTML(response, text) ? stripTags(text) : text)}`,
          { url: safeURL(wire.url) },
        );
      }
      yield protocol.parseResponse(body, endpoint);
      finished = true;
      return;
    }

    const streamType = protocol.streamContentType ?? 'text/event-stream';
    if (!contentType.includes(streamType)) {
      const text = await response.text().catch(() => '');
      throw new ProtocolError(
        `${endpoint.provider} at ${safeURL(wire.url)} answered a streaming request with content-type ${contentType || 'none'} instead of ${streamType}: ${snippet(looksLikeHTML(response, text) ? stripTags(text) : text)}`,
        { url: safeURL(wire.url) },
      );
    }
    if (!response.body) throw new ProtocolError(`${endpoint.provider} sent an empty stream.`, { url: safeURL(wire.url) });

    const reader = protocol.createStreamReader(endpoint);
    let batch: ProtocolEvent[] = [];
    const frames = protocol.createFrameDecoder?.();
    const parser = createParser({
      onEvent: (message) => reader.onEvent(message, batch),
    });
    const decoder = new TextDecoder();
    const feed = frames
      ? (bytes: Uint8Array) => {
          for (const message of frames.push(bytes)) reader.onEvent(message, batch);
        }
      : (bytes: Uint8Array) => parser.feed(decoder.decode(bytes, { stream: true }));
    // The reader is never released: the response does not leave this function, and Node's
    // releaseLock() builds a TypeError (stack trace included) for every request.
    const body = response.body.getReader();
    bodyReader = body;
    for (;;) {
      let chunk: Awaited<ReturnType<typeof body.read>>;
      try {
        chunk = await body.read();
      } catch (err) {
        if (timedOut || userSignal?.aborted) throw failure(err);
        throw new ProtocolError(
          `The connection to ${endpoint.provider} closed in the middle of the stream; the partial reply was discarded.`,
          { url: safeURL(wire.url), isRetryable: true, cause: err },
        );
      }
      if (chunk.done) break;
      feed(chunk.value);
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
        { url: safeURL(wire.url), isRetryable: true },
      );
    }
    finished = true;
  } finally {
    if (timer) clearTimeout(timer);
    userSignal?.removeEventListener('abort', onAbort);
    // A consumer that stopped reading (or an error) cancels the upstream request.
    if (!finished) {
      controller?.abort();
      bodyReader?.cancel().catch(() => undefined);
    }
  }
}

function looksLikeHTML(response: Response, text: string): boolean {
  return (response.headers.get('content-type') ?? '').includes('text/html') || /^\s*<(!doctype|html)/i.test(text);
}

function stripTags(text: string): string {
  return text.replace(/<script[\s\S]*?<\/script>/gi, '').replace(/<[^>]+>/g, ' ');
}

/** The URL without query-string credentials (Gemini sends `?key=`). */
export function safeURL(url: string): string {
  return redactSecrets(url);
}
