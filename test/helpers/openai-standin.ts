/**
 * A local stand-in for an OpenAI-compatible provider (OpenRouter's flavour: `provider`
 * and `usage.cost` in the response). Real HTTP on loopback; behaviour is chosen by the
 * model name so one server can play several models:
 *   any name            -> replies "<model> heard: <last user text>", one word per chunk
 *   contains "fail-500" -> HTTP 500 with an OpenAI error body
 *   contains "fail-401" -> HTTP 401
 *   contains "fail-429" -> HTTP 429 with Retry-After: 7
 *   contains "cut"      -> streams two chunks, then closes without [DONE]
 *   contains "html"     -> an HTML page, as a misconfigured proxy would send
 *   contains "slow"     -> waits 2 s before answering
 *   contains "hang"     -> streams one chunk, then nothing (until the client goes away)
 * `aborted` counts responses whose client closed the connection before the end.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  url: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface StandIn {
  url: string;
  requests: RecordedRequest[];
  /** Responses whose client went away before they ended. */
  readonly aborted: number;
  close(): Promise<void>;
}

interface WireMessage {
  role: string;
  content: unknown;
}

function lastUserText(messages: WireMessage[]): string {
  const last = [...messages].reverse().find((m) => m.role === 'user');
  if (!last) return '';
  if (typeof last.content === 'string') return last.content;
  if (Array.isArray(last.content)) {
    return last.content
      .map((p: { type?: string; text?: string }) => (p.type === 'text' ? p.text : `[${p.type}]`))
      .join(' ');
  }
  return '';
}

/** Tokens as this stand-in counts them: whitespace-separated words. */
export function countWords(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

export async function startStandIn(options: { costPerToken?: number; providerName?: string } = {}): Promise<StandIn> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<import('node:net').Socket>();
  let aborted = 0;
  const server: Server = createServer((req, res) => {
    res.on('close', () => {
      if (!res.writableFinished) aborted++;
    });
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => {
      const body = JSON.parse(raw || '{}') as { model: string; messages: WireMessage[]; stream?: boolean };
      requests.push({ url: req.url ?? '', headers: req.headers, body });
      const model = body.model;
      const error = (status: number, message: string, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify({ error: { message, type: status === 401 ? 'authentication_error' : 'server_error', code: status } }));
      };
      if (model.includes('fail-500')) return error(500, 'upstream exploded');
      if (model.includes('fail-401')) return error(401, 'Invalid API key provided: sk-or-v1-verysecretkey1234');
      if (model.includes('fail-429')) return error(429, 'slow down', { 'retry-after': '7' });
      if (model.includes('html')) {
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>');
      }
      const prompt = body.messages.map((m) => (typeof m.content === 'string' ? m.content : lastUserText([m]))).join(' ');
      const text = `${model} heard: ${lastUserText(body.messages)}`;
      const words = text.split(' ');
      const usage = {
        prompt_tokens: countWords(prompt),
        completion_tokens: words.length,
        total_tokens: countWords(prompt) + words.length,
        ...(options.costPerToken === undefined ? {} : { cost: (countWords(prompt) + words.length) * options.costPerToken }),
      };
      const answer = () => {
        if (!body.stream) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ id: 'c1', model, provider: options.providerName, choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage }));
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
        if (model.includes('hang')) {
          chunk({ id: 'c1', model, choices: [{ index: 0, delta: { content: words[0] }, finish_reason: null }] });
          return;
        }
        const n = model.includes('cut') ? 2 : words.length;
        for (let i = 0; i < n; i++) {
          chunk({ id: 'c1', model, provider: options.providerName, choices: [{ index: 0, delta: { content: (i ? ' ' : '') + words[i] }, finish_reason: null }] });
        }
        if (model.includes('cut')) {
          // Let the headers and first chunks reach the client, then drop the connection.
          setTimeout(() => res.destroy(), 30);
          return;
        }
        chunk({ id: 'c1', model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
        chunk({ id: 'c1', model, choices: [], usage });
        res.end('data: [DONE]\n\n');
      };
      if (model.includes('slow')) setTimeout(answer, 2000);
      else answer();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get aborted() {
      return aborted;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
