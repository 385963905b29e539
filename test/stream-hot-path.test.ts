/**
 * The streaming hot path end to end (Call and Chat against a local OpenAI-compatible
 * stand-in), and the EventStream that hands out events one by one from batches.
 * Pins the behaviour the benchmark-driven optimisations must keep.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Call, Chat, InvalidInputError, ProtocolError } from '../src/index.js';
import { EventStream } from '../src/event-stream.js';
import type { StreamEvent } from '../src/types.js';

const chunk = (delta: Record<string, unknown>, finish: string | null = null): string =>
  `data: ${JSON.stringify({ id: 'c1', model: 'upstream-model', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const usage = `data: ${JSON.stringify({ id: 'c1', choices: [], usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 } })}\n\n`;

/** `hang` answers two tokens and then keeps the stream open; its closes are counted. */
let hangClosed = 0;
let server: http.Server;
let baseURL = '';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const { model } = JSON.parse(raw) as { model: string };
      if (model === 'fail') {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'upstream exploded', type: 'server_error' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (model === 'hang') {
        res.on('close', () => hangClosed++);
        res.write(chunk({ role: 'assistant', content: 'one' }));
        res.write(chunk({ content: ' two' }));
        return;
      }
      // Written in pieces so that events arrive across several reads.
      res.write(chunk({ role: 'assistant', content: '' }) + chunk({ content: 'Hel' }));
      setTimeout(() => {
        res.write(chunk({ content: 'lo' }) + chunk({ content: ` from ${model}` }, 'stop'));
        if (model === 'cut') {
          res.end();
          return;
        }
        res.end(`${usage}data: [DONE]\n\n`);
      }, 5);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const waitFor = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('Call and Chat streams', () => {
  it('streams text deltas in order, then a finish event with the whole reply', async () => {
    const call = new Call('a', { baseURL, apiKey: 'sk-test-123456' });
    const events: StreamEvent[] = [];
    for await (const event of call.stream('hi')) events.push(event);
    const deltas = events.filter((e) => e.type === 'text-delta').map((e) => (e as { text: string }).text);
    expect(deltas).toEqual(['Hel', 'lo', ' from a']);
    const finish = events.at(-1);
    expect(finish?.type).toBe('finish');
    if (finish?.type !== 'finish') return;
    expect(finish.result.text).toBe('Hello from a');
    expect(finish.result.usage).toMatchObject({ promptTokens: 5, completionTokens: 3, totalTokens: 8 });
    expect(call.lastResults.a?.text).toBe('Hello from a');
    expect(await call.run('hi')).toBe('Hello from a');
  });

  it('reports bad input when the stream is read, as a generator would', async () => {
    const call = new Call('a', { baseURL, apiKey: 'sk-test-123456' });
    const stream = call.stream(42 as unknown as string);
    await expect(stream.next()).rejects.toBeInstanceOf(InvalidInputError);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it('commits a chat turn once its reply is whole', async () => {
    const chat = new Chat('a', { baseURL, apiKey: 'sk-test-123456' });
    expect(await chat.send('hi')).toBe('Hello from a');
    expect(chat.history).toEqual([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Hello from a' },
    ]);
    expect(chat.usage).toMatchObject({ promptTokens: 5, completionTokens: 3 });
  });

  it('runs a second turn only after the first has finished', async () => {
    const chat = new Chat('a', { baseURL, apiKey: 'sk-test-123456' });
    const [first, second] = await Promise.all([chat.send('one'), chat.send('two')]);
    expect([first, second]).toEqual(['Hello from a', 'Hello from a']);
    expect((chat.history as { content: unknown }[]).map((m) => m.content)).toEqual(['one', 'Hello from a', 'two', 'Hello from a']);
  });

  it.each([
    ['without a signal', {}],
    ['with a signal', { signal: new AbortController().signal }],
  ])('leaving the loop early cancels the request and commits nothing (%s)', async (_label, extra) => {
    const chat = new Chat('hang', { baseURL, apiKey: 'sk-test-123456', ...extra });
    const before = hangClosed;
    const seen: string[] = [];
    for await (const event of chat.stream('hi')) {
      if (event.type === 'text-delta') seen.push(event.text);
      break;
    }
    expect(seen).toEqual(['one']);
    await waitFor(() => hangClosed > before);
    expect(hangClosed).toBe(before + 1);
    expect(chat.history).toEqual([]);
    // The lock is released: the next turn runs.
    chat.model = 'a';
    expect(await chat.send('again')).toBe('Hello from a');
  });

  it('treats a stream without its terminator as an error and keeps the history', async () => {
    const chat = new Chat('cut', { baseURL, apiKey: 'sk-test-123456' });
    await expect(chat.send('hi')).rejects.toBeInstanceOf(ProtocolError);
    expect(chat.history).toEqual([]);
  });

  it('with several models, a failure is an error event and the others carry on', async () => {
    const call = new Call(['a', 'fail', 'b'], { baseURL, apiKey: 'sk-test-123456' });
    const replies = await call.run('hi');
    expect(replies.a).toBe('Hello from a');
    expect(replies.b).toBe('Hello from b');
    expect(replies.fail).toBeInstanceOf(Error);
  });
});

describe('EventStream', () => {
  /** A source of batches that records whether it was started and whether its finally ran. */
  function source(batches: number[][]) {
    const log = { opened: false, closed: false };
    const open = () => {
      log.opened = true;
      return (async function* () {
        try {
          for (const b of batches) {
            await new Promise((r) => setTimeout(r, 1));
            yield b;
          }
        } finally {
          log.closed = true;
        }
      })();
    };
    return { open, log };
  }

  it('hands out every item in order, across batches', async () => {
    const { open } = source([[1, 2], [], [3], [4, 5, 6]]);
    const out: number[] = [];
    for await (const n of new EventStream(open)) out.push(n);
    expect(out).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('answers overlapping next() calls in order, as a generator does', async () => {
    const { open } = source([[1], [2, 3]]);
    const stream = new EventStream(open);
    const results = await Promise.all([stream.next(), stream.next(), stream.next(), stream.next()]);
    expect(results).toEqual([
      { done: false, value: 1 },
      { done: false, value: 2 },
      { done: false, value: 3 },
      { done: true, value: undefined },
    ]);
  });

  it('starts the source lazily; return() before the first next() never starts it', async () => {
    const { open, log } = source([[1]]);
    const stream = new EventStream(open);
    expect(log.opened).toBe(false);
    expect(await stream.return()).toEqual({ done: true, value: undefined });
    expect(log.opened).toBe(false);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it('closes the source on break, and calls onItem only for items handed out', async () => {
    const { open, log } = source([[1, 2, 3]]);
    const handed: number[] = [];
    for await (const n of new EventStream(open, (n: number) => handed.push(n))) {
      if (n === 2) break;
    }
    expect(handed).toEqual([1, 2]);
    expect(log.closed).toBe(true);
  });

  it('closes the source when onItem throws, and passes the error on', async () => {
    const { open, log } = source([[1, 2]]);
    const stream = new EventStream(open, (n: number) => {
      if (n === 2) throw new Error('hook failed');
    });
    expect(await stream.next()).toEqual({ done: false, value: 1 });
    await expect(stream.next()).rejects.toThrow('hook failed');
    expect(log.closed).toBe(true);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it('throw() closes the source and rejects with the error', async () => {
    const { open, log } = source([[1], [2]]);
    const stream = new EventStream(open);
    await stream.next();
    await expect(stream.throw(new Error('stop'))).rejects.toThrow('stop');
    expect(log.closed).toBe(true);
  });

  it('forEach visits every item once, and closes the source when the visitor throws', async () => {
    const all = source([[1, 2], [3]]);
    const handed: number[] = [];
    const seen: number[] = [];
    await new EventStream(all.open, (n: number) => handed.push(n)).forEach((n) => seen.push(n));
    expect(seen).toEqual([1, 2, 3]);
    expect(handed).toEqual([1, 2, 3]);

    const some = source([[1, 2], [3]]);
    const stream = new EventStream(some.open);
    await expect(
      stream.forEach((n) => {
        if (n === 2) throw new Error('visitor failed');
      }),
    ).rejects.toThrow('visitor failed');
    expect(some.log.closed).toBe(true);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it('passes on an error from the source', async () => {
    const stream = new EventStream<number>(() =>
      (async function* () {
        yield [1];
        throw new Error('source failed');
      })(),
    );
    expect(await stream.next()).toEqual({ done: false, value: 1 });
    await expect(stream.next()).rejects.toThrow('source failed');
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });
});
