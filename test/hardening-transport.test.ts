/**
 * Servers that misbehave: stall, drip, never end, answer 200 with nothing in it, report
 * usage that is not counts, send `data: null`. Each is a real HTTP server on loopback; each
 * failure must be one of the typed errors, the request must be closed, and the history kept.
 */
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, Chat, ContextLengthError, DEFAULT_LIMITS, ProtocolError, TimeoutError } from '../src/index.js';
import { openaiStreamChunk } from './helpers/fixtures.js';
import { sendJSON, sse, startStandIn, type RecordedRequest, type StandIn } from './helpers/stand-in.js';

const NO_RETRY = { retry: { maxRetries: 0 } };

/** How each model name behaves. */
const behaviours: Record<string, (req: RecordedRequest, res: ServerResponse) => void | Promise<void>> = {
  // Accepts the request and never answers.
  stalled: () => undefined,
  // Headers, then one keep-alive byte every 20 ms, forever.
  dripping: (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    const tick = setInterval(() => res.write(':'), 20);
    res.on('close', () => clearInterval(tick));
  },
  // A stream that never ends: text chunks as fast as the socket takes them.
  endless: (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunk = `data: ${JSON.stringify(openaiStreamChunk({ content: 'x'.repeat(1000) }))}\n\n`;
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  },
  'empty-object': (_req, res) => sendJSON(res, 200, {}),
  'no-choices': (_req, res) => sendJSON(res, 200, { id: 'x', choices: [] }),
  'empty-array': (_req, res) => sendJSON(res, 200, []),
  'json-null': (_req, res) => sendJSON(res, 200, null),
  'only-done': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(sse([{ data: '[DONE]' }]));
  },
  'data-null': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(sse([{ data: openaiStreamChunk({ content: 'Hi' }) }, { data: 'null' }, { data: '[DONE]' }]));
  },
  'negative-usage': (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(
      sse([
        { data: openaiStreamChunk({ content: 'Hi' }, 'stop') },
        { data: { id: 'x', choices: [], usage: { prompt_tokens: -5, completion_tokens: 2, total_tokens: -3 } } },
        { data: '[DONE]' },
      ]),
    );
  },
  'string-usage': (_req, res) =>
    sendJSON(res, 200, {
      id: 'x',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: '12', completion_tokens: '3', total_tokens: '15' },
    }),
  // llama.cpp's answer to a prompt longer than its context.
  'over-context': (_req, res) =>
    sendJSON(res, 400, {
      error: { code: 400, message: 'request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it', type: 'exceed_context_size_error', n_prompt_tokens: 4476, n_ctx: 4096 },
    }),
  // Fifty deltas in one network read, then nothing more for a while.
  burst: (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(sse(Array.from({ length: 50 }, (_, i) => ({ data: openaiStreamChunk({ content: `w${i} ` }) }))));
    const later = setTimeout(() => res.end(sse([{ data: openaiStreamChunk({}, 'stop') }, { data: '[DONE]' }])), 2000);
    res.on('close', () => clearTimeout(later));
  },
  fine: (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(sse([{ data: openaiStreamChunk({ content: 'Fine.' }, 'stop') }, { data: '[DONE]' }]));
  },
};

let server: StandIn;
const closed: string[] = [];

beforeAll(async () => {
  server = await startStandIn((req, res) => {
    const model = (JSON.parse(req.body) as { model: string }).model;
    res.on('close', () => closed.push(model));
    const behave = behaviours[model];
    if (!behave) return sendJSON(res, 404, { error: { message: `no model ${model}` } });
    return behave(req, res);
  });
});
afterAll(() => server.close());

function chatWith(model: string, limits = {}): Chat<string> {
  return new Chat(model, { baseURL: server.url, apiKey: 'sk-test-0123456789abcdef', limits, routing: NO_RETRY, system: 'Be brief.' });
}

async function failureOf(chat: Chat<string>, input = 'Hi'): Promise<Error> {
  const before = chat.history;
  const error = await chat.send(input).then(
    () => new Error('expected the turn to fail'),
    (err: unknown) => err as Error,
  );
  expect(chat.history).toEqual(before);
  expect(chat.usage.totalTokens).toBe(0);
  return error;
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('time limits', () => {
  it('has defaults: a first-byte and an idle timeout, and a reply size limit', () => {
    expect(DEFAULT_LIMITS.firstByteTimeout).toBe(60_000);
    expect(DEFAULT_LIMITS.idleTimeout).toBe(60_000);
    expect(DEFAULT_LIMITS.maxReplyBytes).toBe(64 * 1024 * 1024);
  });

  it('gives up on a server that accepts and never answers, and closes the request', async () => {
    const err = await failureOf(chatWith('stalled', { firstByteTimeout: 300 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).code).toBe('timeout');
    expect(err.message).toMatch(/no response within 300 ms.*firstByteTimeout/);
    await until(() => closed.includes('stalled'));
  });

  it('cuts off a server that drips a keep-alive byte every 20 ms but never sends an event', async () => {
    const err = await failureOf(chatWith('dripping', { idleTimeout: 300 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toMatch(/went 300 ms without sending anything.*idleTimeout/);
    await until(() => closed.includes('dripping'));
  });

  it('stops reading an endless stream at the reply size limit, with a typed error', async () => {
    const err = await failureOf(chatWith('endless', { maxReplyBytes: 200_000 }));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/larger than 200000 bytes/);
    await until(() => closed.includes('endless'));
  });
});

describe('replies that are not a completion', () => {
  it.each(['empty-object', 'no-choices', 'empty-array', 'json-null', 'only-done'])('%s: a ProtocolError, nothing committed', async (model) => {
    const err = await failureOf(chatWith(model));
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe('protocol');
  });

  it('`data: null` in a stream is a ProtocolError naming the event', async () => {
    const err = await failureOf(chatWith('data-null'));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/stream event \(null\).*not its protocol/);
  });

  it.each([
    ['negative-usage', /promptTokens: -5/],
    ['string-usage', /promptTokens: "12"/],
  ])('%s: usage that is not token counts is refused, and the chat still saves and restores', async (model, message) => {
    const chat = chatWith(model);
    const err = await failureOf(chat);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(message);
    const again = Chat.fromJSON(JSON.parse(JSON.stringify(chat)), { baseURL: server.url });
    expect(again.usage).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0, cost: 0 });
  });

  it("llama.cpp's exceed_context_size_error is a ContextLengthError with both numbers", async () => {
    const err = await failureOf(chatWith('over-context'));
    expect(err).toBeInstanceOf(ContextLengthError);
    expect(err).toMatchObject({ code: 'context_length', requiredTokens: 4476, contextLength: 4096, provider: 'custom' });
  });
});

describe('leaving and aborting', () => {
  it('break out of a multi-model stream returns at once while another model is stalled, and closes its request', async () => {
    const chat = new Chat(['fine', 'stalled'], { baseURL: server.url, routing: NO_RETRY });
    const seen: string[] = [];
    for await (const event of chat.stream('Hi')) {
      seen.push(event.type);
      if (event.type === 'finish') break;
    }
    expect(seen).toContain('finish');
    await until(() => closed.filter((m) => m === 'stalled').length >= 2);
    // Nothing was committed for the stalled model; the finished one kept its turn.
    expect(chat.history.stalled).toEqual([]);
    expect(chat.history.fine).toHaveLength(2);
  });

  it('hands out no text delta after abort(), even from a batch already received', async () => {
    const controller = new AbortController();
    const chat = chatWith('burst');
    let after = 0;
    let aborted = false;
    const err = await (async () => {
      for await (const event of chat.stream('Hi', { signal: controller.signal })) {
        if (event.type !== 'text-delta') continue;
        if (aborted) after++;
        controller.abort();
        aborted = true;
      }
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AbortError);
    expect(after).toBe(0);
    expect(chat.history).toEqual([{ role: 'system', content: 'Be brief.' }]);
  });
});

