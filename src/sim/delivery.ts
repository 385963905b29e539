/**
 * Writing responses with the simulated timing: JSON after a delay, or an SSE stream whose
 * pieces go out at their due times. When delays are zero the whole stream is one write.
 * A client that disconnects stops everything (no timers left behind); an injected cut
 * destroys the connection midway with no terminator.
 */
import type { ServerResponse } from 'node:http';
import type { PlannedTurn } from './turn.js';

/** Renders one planned turn as the frames of a protocol's stream. */
export interface StreamEncoder {
  /** Frames before the first token (role chunk, message_start, ...). */
  head(): string;
  /** The frame carrying one token. */
  piece(text: string, index: number): string;
  /** Frames after the last token (finish, usage, terminator). */
  tail(): string;
}

/** Node adds `connection` itself: keep-alive, or close for an embedded simulator (see server.ts). */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
};

/** Run `fn` after `ms`, unless the response closes first; 0 runs it at once. */
function afterDelay(res: ServerResponse, ms: number, fn: () => void): void {
  if (ms <= 0) {
    fn();
    return;
  }
  const timer = setTimeout(fn, ms);
  res.once('close', () => clearTimeout(timer));
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, delayMs = 0): void {
  afterDelay(res, delayMs, () => {
    if (res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  });
}

/** Send the headers and half of a JSON body, then drop the connection. */
export function sendTruncatedJson(res: ServerResponse, body: unknown, delayMs: number, headers: Record<string, string> = {}): void {
  afterDelay(res, delayMs, () => {
    if (res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.write(text.slice(0, Math.floor(text.length / 2)), () => res.destroy());
  });
}

/** How a stream goes out besides its frames. */
export interface StreamOptions {
  headers?: Record<string, string>;
  contentType?: string;
  /** An injected failure: stop after this many pieces. */
  cutAfter?: number;
  /** With cutAfter: end with this frame (an error event) and close cleanly, instead of dropping the connection. */
  errorFrame?: string;
  /** `latin1` for binary frames handed out as strings (Bedrock's event stream); UTF-8 otherwise. */
  encoding?: 'latin1';
}

/**
 * Stream a planned turn. `cutAfter` (an injected failure) destroys the connection after
 * that many pieces instead of finishing, or sends `errorFrame` and closes.
 */
export function sendStream(res: ServerResponse, turn: PlannedTurn, encoder: StreamEncoder, options: StreamOptions = {}): void {
  const { cutAfter, errorFrame } = options;
  const encoding = options.encoding ?? 'utf8';
  const count = cutAfter === undefined ? turn.pieces.length : Math.min(cutAfter, turn.pieces.length);
  const cut = cutAfter !== undefined;
  res.writeHead(200, { ...SSE_HEADERS, ...(options.contentType ? { 'content-type': options.contentType } : {}), ...options.headers });

  // Due time of each piece, relative to the start.
  const due = new Array<number>(count);
  let elapsed = 0;
  for (let i = 0; i < count; i++) {
    elapsed += turn.delays[i] ?? 0;
    due[i] = elapsed;
  }

  const finish = (frames: string): void => {
    if (errorFrame !== undefined) res.end(frames + errorFrame, encoding);
    else if (cut) res.write(frames, encoding, () => res.destroy());
    else res.end(frames + encoder.tail(), encoding);
  };

  if (elapsed === 0) {
    // No waiting at all: the whole stream in one write.
    let frames = encoder.head();
    for (let i = 0; i < count; i++) frames += encoder.piece(turn.pieces[i] as string, i);
    finish(frames);
    return;
  }

  res.write(encoder.head(), encoding);
  const start = performance.now();
  let next = 0;
  let timer: NodeJS.Timeout | undefined;
  res.once('close', () => clearTimeout(timer));
  // Each wake-up writes every piece already due in one write, so timer granularity
  // (about 1 ms) never slows a fast stream down.
  const pump = (): void => {
    if (res.destroyed) return;
    const now = performance.now() - start;
    let frames = '';
    while (next < count && (due[next] as number) <= now) {
      frames += encoder.piece(turn.pieces[next] as string, next);
      next++;
    }
    if (next >= count) {
      finish(frames);
      return;
    }
    if (frames) res.write(frames, encoding);
    timer = setTimeout(pump, (due[next] as number) - now);
  };
  pump();
}
