/**
 * Local HTTP stand-ins for providers: a node:http server whose handler answers with the
 * provider's documented wire format, writing streams in small pieces so that events,
 * lines and multi-byte characters are split across network reads.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getProtocol } from '../../src/protocols/index.js';
import type { Endpoint, ProtocolName } from '../../src/protocols/protocol.js';
import { sendRequest } from '../../src/protocols/transport.js';
import type { CanonicalRequest, ProtocolEvent } from '../../src/types.js';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface StandIn {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export type Handler = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;

export async function startStandIn(handler: Handler): Promise<StandIn> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(recorded);
      res.socket?.setNoDelay(true);
      Promise.resolve(handler(recorded, res)).catch((err: unknown) => {
        res.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Byte offsets that cut `total` bytes into pieces of `size` bytes. */
export function everyNBytes(total: number, size: number): number[] {
  const cuts: number[] = [];
  for (let i = size; i < total; i += size) cuts.push(i);
  return cuts;
}

/**
 * Write `body` cut at the given byte offsets, waiting after each piece so that each
 * arrives in its own network read, then end the response.
 */
export async function writePieces(res: ServerResponse, body: string | Buffer, cuts: number[], delayMs = 1): Promise<void> {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const sorted = [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
  let start = 0;
  for (const cut of [...sorted, bytes.length]) {
    const piece = bytes.subarray(start, cut);
    start = cut;
    await new Promise<void>((resolve) => res.write(piece, () => resolve()));
    await new Promise<void>((resolve) => setTimeout(resolve, delayMs));
  }
  res.end();
}

/** Answer with an SSE stream written in pieces. */
export async function sendSSE(res: ServerResponse, body: string, cuts: number[] = [], delayMs = 1): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  res.flushHeaders();
  await writePieces(res, body, cuts, delayMs);
}

export function sendJSON(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export function endpoint(protocol: ProtocolName, baseURL: string, apiKey = 'sk-test-0123456789abcdef', provider: string = protocol): Endpoint {
  return { provider, protocol, baseURL, apiKey, headers: {}, compat: {} };
}

export function request(overrides: Partial<CanonicalRequest> = {}): CanonicalRequest {
  return { model: 'test-model', messages: [{ role: 'user', content: 'Hi' }], params: {}, stream: true, ...overrides };
}

/** Run the real transport against an endpoint and flatten the batches. */
export async function collect(ep: Endpoint, req: CanonicalRequest = request()): Promise<ProtocolEvent[]> {
  const events: ProtocolEvent[] = [];
  for await (const batch of sendRequest(getProtocol(ep.protocol), ep, req)) events.push(...batch);
  return events;
}

/** Run the transport and return the error it throws. */
export async function failure(ep: Endpoint, req: CanonicalRequest = request()): Promise<Error> {
  try {
    await collect(ep, req);
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the request to fail');
}

export function textOf(events: ProtocolEvent[]): string {
  return events.map((e) => (e.type === 'text-delta' ? e.text : '')).join('');
}

export function reasoningOf(events: ProtocolEvent[]): string {
  return events.map((e) => (e.type === 'reasoning-delta' ? e.text : '')).join('');
}

/** Tool calls put together from their deltas, by index. */
export function toolCallsOf(events: ProtocolEvent[]): { id?: string; name?: string; arguments: string }[] {
  const calls: { id?: string; name?: string; arguments: string }[] = [];
  for (const e of events) {
    if (e.type !== 'tool-call-delta') continue;
    const call = (calls[e.index] ??= { arguments: '' });
    if (e.id) call.id = e.id;
    if (e.name) call.name = e.name;
    call.arguments += e.argumentsDelta;
  }
  return calls;
}

/** SSE text: each event as `event:` (optional) and `data:` lines, joined with `eol`. */
export function sse(events: ({ event?: string; data: unknown } | string)[], eol = '\n'): string {
  return events
    .map((e) => {
      if (typeof e === 'string') return `${e}${eol}${eol}`;
      const data = typeof e.data === 'string' ? e.data : JSON.stringify(e.data);
      return `${e.event ? `event: ${e.event}${eol}` : ''}data: ${data}${eol}${eol}`;
    })
    .join('');
}
