/**
 * Plain HTTP helpers for the gateway: the request id, the caller's credential, and the body
 * read with a size limit. Nothing here knows a wire protocol.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BadRequestError } from '../errors.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
let idPrefix = randomBytes(4).toString('hex');
let idCounter = 0;

/** The caller's `x-request-id` when it is a sane token, else a fresh one (unique per process). */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && REQUEST_ID.test(given)) return given;
  if (++idCounter > 0xffffffff) {
    idPrefix = randomBytes(4).toString('hex');
    idCounter = 0;
  }
  return `req_${idPrefix}${idCounter.toString(16).padStart(8, '0')}`;
}

const responsePrefix = randomBytes(8).toString('hex');
let responseCounter = 0;
/** A response id unique per process (the server half adds its protocol's prefix). */
export function responseId(): string {
  return `${responsePrefix}${(++responseCounter).toString(16).padStart(12, '0')}`;
}

/**
 * The credential as the caller's SDK sends it: `Authorization: Bearer` (OpenAI), `x-api-key`
 * (Anthropic), `x-goog-api-key` or `?key=` (Gemini). Undefined when none is present.
 */
export function credentialOf(req: IncomingMessage, query: URLSearchParams | undefined): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1];
  }
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return apiKey;
  const goog = req.headers['x-goog-api-key'];
  if (typeof goog === 'string' && goog !== '') return goog;
  const key = query?.get('key');
  return key ? key : undefined;
}

/** A client error raised by the gateway itself, rendered by the caller's server half. */
export function clientError(status: number, message: string): BadRequestError {
  return new BadRequestError({ status, provider: 'gateway', providerMessage: message });
}

/** A percent-encoded part of a path, decoded; undefined for a malformed escape (`%zz`), which names no endpoint. */
export function decodePathPart(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

/** The parts of an `/admin/...` path (the admin and console APIs) after `/admin/`, decoded; undefined when one is malformed. */
export function apiPathParts(path: string): string[] | undefined {
  const parts = path.replace(/\/+$/, '').split('/').slice(2).map(decodePathPart);
  return parts.includes(undefined) ? undefined : (parts as string[]);
}

/**
 * Read the whole body as UTF-8, refusing more than `limit` bytes (413) without reading the rest,
 * and a body that has not ended `timeoutMs` after its headers (408): a client that trickles its
 * body, or never ends a chunked one, would otherwise hold its connection and its buffered bytes
 * until Node's own request timeout (five minutes).
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(clientError(413, `The request body is ${declared} bytes; this gateway accepts at most ${limit}.`));
  }
  // The whole body came with the headers (as most do) and is parsed already: read it at once
  // rather than a few ticks later through the stream's events.
  if (req.complete && !req.readableFlowing) {
    const chunks: Buffer[] = [];
    let size = 0;
    for (let chunk = req.read() as Buffer | null; chunk !== null; chunk = req.read() as Buffer | null) {
      size += chunk.length;
      if (size > limit) {
        req.resume();
        return Promise.reject(clientError(413, `The request body is larger than ${limit} bytes, the most this gateway accepts.`));
      }
      chunks.push(chunk);
    }
    return Promise.resolve(chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8'));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err: Error): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.resume();
      reject(err);
    };
    const timer = setTimeout(() => stop(clientError(408, `The request body did not arrive within ${timeoutMs} ms of its headers (limits.body_timeout_ms); nothing was sent upstream.`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        stop(clientError(413, `The request body is larger than ${limit} bytes, the most this gateway accepts.`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      clearTimeout(timer);
      resolve(chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    });
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * How deep a request body may nest arrays and objects. A real request nests a few dozen
 * levels at most (a message's content parts, a tool's JSON schema); the gateway's own walks
 * over a body (validation, the cache key, token counts) recurse, and a body nested thousands
 * deep would overflow the stack in one of them.
 */
const MAX_BODY_DEPTH = 256;

/** Whether `value` nests arrays and objects more than `max` levels deep (walked without recursion). */
function nestsDeeperThan(value: unknown, max: number): boolean {
  const pending: { value: object; depth: number }[] = [];
  if (value !== null && typeof value === 'object') pending.push({ value, depth: 1 });
  for (let next = pending.pop(); next; next = pending.pop()) {
    if (next.depth > max) return true;
    const members = next.value as Record<string, unknown>;
    for (const key in members) {
      const member = members[key];
      if (member !== null && typeof member === 'object') pending.push({ value: member, depth: next.depth + 1 });
    }
  }
  return false;
}

/** Parse a JSON body; a syntax error, or nesting past MAX_BODY_DEPTH, is a 400 saying so. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw clientError(400, 'The request body is empty; send a JSON object.');
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch (err) {
    throw clientError(400, `The request body is not valid JSON: ${(err as Error).message}.`);
  }
  if (nestsDeeperThan(body, MAX_BODY_DEPTH)) {
    throw clientError(400, `The request body nests arrays and objects more than ${MAX_BODY_DEPTH} levels deep, the most this gateway accepts.`);
  }
  return body;
}

/** Whether the content type is JSON (a missing one is accepted, as the providers do). */
export function isJsonContentType(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  if (type === undefined || type === '') return true;
  const base = type.split(';')[0]?.trim().toLowerCase() ?? '';
  return base === 'application/json' || base.endsWith('+json');
}
