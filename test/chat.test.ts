import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  APIError,
  AbortError,
  AuthenticationError,
  Call,
  Chat,
  InvalidHistoryError,
  MissingKeyError,
  ModelStringError,
  ProtocolError,
  RateLimitError,
  TimeoutError,
} from '../src/index.js';
import { startStandIn, type StandIn } from './helpers/openai-standin.js';

let up: StandIn;
let opts: { baseURL: string; apiKey: string };

beforeAll(async () => {
  up = await startStandIn({ costPerToken: 0.000001 });
  opts = { baseURL: `${up.url}/v1`, apiKey: 'sk-test-abcdef123456' };
});
afterAll(() => up.close());

describe('Chat with one model', () => {
  it('starts with the system message and zero usage', () => {
    const chat = new Chat('acme/one', { ...opts, system: 'You are the best assistant in the world.' });
    expect(chat.history).toEqual([{ role: 'system', content: 'You are the best assistant in the world.' }]);
    expect(chat.usage).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0, cost: 0 });
  });

  it('send appends the user turn and the reply, and adds the reported usage and cost', async () => {
    const chat = new Chat('acme/one', { ...opts, system: 'Be brief.' });
    const reply = await chat.send('Who created you?');
    expect(reply).toBe('acme/one heard: Who created you?');
    expect(chat.history).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Who created you?' },
      { role: 'assistant', content: 'acme/one heard: Who created you?' },
    ]);
    // prompt = "Be brief. Who created you?" = 5 words; reply "acme/one heard: Who created you?" = 5 words.
    expect(chat.usage).toMatchObject({ promptTokens: 5, completionTokens: 5, totalTokens: 10 });
    expect(chat.usage.cost).toBeCloseTo(10e-6, 15);
    const turn = chat.lastTurn;
    expect(turn?.provider).toBe('custom');
    expect(turn?.usage.totalTokens).toBe(10);
    expect(turn?.ttftMs).toBeGreaterThanOrEqual(0);
    expect(turn?.latencyMs).toBeGreaterThanOrEqual(turn?.ttftMs ?? 0);

    await chat.send('And then?');
    expect(chat.history).toHaveLength(5);
    // The second request carried the whole conversation.
    const last = up.requests[up.requests.length - 1];
    expect((last?.body.messages as unknown[]).length).toBe(4);
    expect(chat.usage.totalTokens).toBe(10 + chat.turns[1]!.usage.totalTokens);
    expect(last?.body.stream_options).toEqual({ include_usage: true });
    expect(last?.headers.authorization).toBe('Bearer sk-test-abcdef123456');
  });

  it('stream yields deltas then a finish event, and updates history like send', async () => {
    const chat = new Chat('acme/one', opts);
    const deltas: string[] = [];
    let finished = 0;
    for await (const event of chat.stream('hello there')) {
      if (event.type === 'text-delta') deltas.push(event.text);
      if (event.type === 'finish') {
        finished++;
        expect(event.result.text).toBe(deltas.join(''));
      }
    }
    expect(finished).toBe(1);
    expect(deltas.length).toBe(4);
    expect(chat.history).toEqual([
      { role: 'user', content: 'hello there' },
      { role: 'assistant', content: 'acme/one heard: hello there' },
    ]);
  });

  it('resetHistory keeps the system message; resetUsage zeroes; reset does both', async () => {
    const chat = new Chat('acme/one', { ...opts, system: 'S' });
    await chat.send('hi');
    chat.resetHistory();
    expect(chat.history).toEqual([{ role: 'system', content: 'S' }]);
    expect(chat.usage.totalTokens).toBeGreaterThan(0);
    chat.resetUsage();
    expect(chat.usage).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0, cost: 0 });
    await chat.send('again');
    chat.reset();
    expect(chat.history).toEqual([{ role: 'system', content: 'S' }]);
    expect(chat.usage.totalTokens).toBe(0);
  });

  it('a failed turn leaves history and usage as they were', async () => {
    const chat = new Chat('acme/fail-500', opts);
    await expect(chat.send('hi')).rejects.toMatchObject({ code: 'server', status: 500 });
    expect(chat.history).toEqual([]);
    expect(chat.usage.totalTokens).toBe(0);
  });

  it('a stream cut before [DONE] is an error, and nothing is added', async () => {
    const chat = new Chat('acme/cut', opts);
    await expect(chat.send('hi')).rejects.toBeInstanceOf(ProtocolError);
    expect(chat.history).toEqual([]);
  });

  it('leaving a stream early adds nothing to the history', async () => {
    const chat = new Chat('acme/one', opts);
    for await (const event of chat.stream('tell me')) {
      if (event.type === 'text-delta') break;
    }
    expect(chat.history).toEqual([]);
    expect(await chat.send('next')).toBe('acme/one heard: next');
  });

  it('switching model keeps the history and sends it to the new model', async () => {
    const chat = new Chat('acme/one', opts);
    await chat.send('My name is José.');
    chat.model = 'acme/two';
    expect(chat.model).toBe('acme/two');
    await chat.send('What is my name?');
    const last = up.requests[up.requests.length - 1];
    expect(last?.body.model).toBe('acme/two');
    expect((last?.body.messages as { content: string }[]).map((m) => m.content)).toEqual([
      'My name is José.',
      'acme/one heard: My name is José.',
      'What is my name?',
    ]);
    expect(chat.turns.map((t) => t.model)).toEqual(['acme/one', 'acme/two']);
    expect(() => {
      chat.model = 'bad model';
    }).toThrow(ModelStringError);
    expect(chat.model).toBe('acme/two');
  });

  it('passes request parameters and extra body fields through', async () => {
    const chat = new Chat('acme/one', { ...opts, temperature: 0.2, maxTokens: 50, extraBody: { top_k: 3 } });
    await chat.send('x', { responseFormat: { type: 'json_object' } });
    const body = up.requests[up.requests.length - 1]?.body;
    expect(body).toMatchObject({ temperature: 0.2, max_tokens: 50, top_k: 3, response_format: { type: 'json_object' } });
  });
});

describe('Chat with several models', () => {
  it('send and run key their replies in the order the models were given, not the order they finished', async () => {
    const chat = new Chat(['acme/slow', 'acme/one'], opts);
    const replies = await chat.send('Hi');
    expect(Object.keys(replies)).toEqual(['acme/slow', 'acme/one']);
    expect(Object.keys(await new Call(['acme/slow', 'acme/one'], opts).run('Hi'))).toEqual(['acme/slow', 'acme/one']);
  });

  it('keys history, usage and replies by model, and resets each', async () => {
    const chat = new Chat(['acme/one', 'acme/two'], { ...opts, system: 'S' });
    expect(chat.history).toEqual({ 'acme/one': [{ role: 'system', content: 'S' }], 'acme/two': [{ role: 'system', content: 'S' }] });
    const replies = await chat.send('Who created you?');
    expect(replies).toEqual({ 'acme/one': 'acme/one heard: Who created you?', 'acme/two': 'acme/two heard: Who created you?' });
    expect(chat.history['acme/two']).toEqual([
      { role: 'system', content: 'S' },
      { role: 'user', content: 'Who created you?' },
      { role: 'assistant', content: 'acme/two heard: Who created you?' },
    ]);
    expect(Object.keys(chat.usage)).toEqual(['acme/one', 'acme/two']);
    expect(chat.usage['acme/one']?.completionTokens).toBe(5);
    chat.resetHistory();
    expect(chat.history['acme/one']).toEqual([{ role: 'system', content: 'S' }]);
    chat.resetUsage();
    expect(chat.usage['acme/two']).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0, cost: 0 });
  });

  it('one failing model reports a typed error; the others answer and commit', async () => {
    const chat = new Chat(['acme/one', 'acme/fail-401'], opts);
    const replies = await chat.send('hi');
    expect(replies['acme/one']).toBe('acme/one heard: hi');
    expect(replies['acme/fail-401']).toBeInstanceOf(AuthenticationError);
    expect(chat.history['acme/one']).toHaveLength(2);
    expect(chat.history['acme/fail-401']).toEqual([]);
  });

  it('streams both models concurrently', async () => {
    const chat = new Chat(['acme/one', 'acme/two'], opts);
    const order: string[] = [];
    for await (const e of chat.stream('go')) if (e.type === 'finish') order.push(e.model);
    expect(order.sort()).toEqual(['acme/one', 'acme/two']);
  });
});

describe('Call', () => {
  it('returns text for one model and an object for several', async () => {
    expect(await new Call('acme/one', opts).run('ping')).toBe('acme/one heard: ping');
    const call = new Call(['acme/one', 'acme/two'], opts);
    expect(await call.run('ping')).toEqual({ 'acme/one': 'acme/one heard: ping', 'acme/two': 'acme/two heard: ping' });
    expect(call.lastResults['acme/two']?.usage.completionTokens).toBe(3);
  });
});

describe('toJSON and fromJSON', () => {
  it('round-trips a conversation without the API key', async () => {
    const chat = new Chat(['acme/one', 'acme/two'], { ...opts, system: 'S', temperature: 0.5 });
    await chat.send('remember me');
    const json = JSON.stringify(chat);
    expect(json).not.toContain('sk-test');
    const restored = Chat.fromJSON(JSON.parse(json), opts);
    expect(restored.history).toEqual(chat.history);
    expect(restored.usage).toEqual(chat.usage);
    await restored.send('again');
    expect((restored.history as Record<string, unknown[]>)['acme/one']).toHaveLength(5);
  });

  it('refuses malformed histories with a message naming the problem', () => {
    const bad = { version: 1, models: ['acme/one'], keyed: false, system: null, params: {}, history: { 'acme/one': [{ role: 'bot', content: 'x' }] } };
    expect(() => Chat.fromJSON(bad, opts)).toThrow(InvalidHistoryError);
    expect(() => Chat.fromJSON(bad, opts)).toThrow(/history\["acme\/one"\]\[0\]: "role" must be one of/);
    const chat = new Chat('acme/one', opts);
    expect(() => {
      chat.history = [{ role: 'tool', tool_call_id: 'nope', content: '1' }];
    }).toThrow(/answers no earlier tool call/);
    expect(() => {
      chat.history = [{ role: 'user', content: 'hi' }, { role: 'system', content: 'late' }];
    }).toThrow(/may only come first/);
  });
});

describe('errors', () => {
  it('a missing key names the variable to set', () => {
    const chat = new Chat('openai/gpt-4o-mini', { env: {} });
    return expect(chat.send('hi')).rejects.toThrow(MissingKeyError);
  });

  it('the missing-key message says which variable', async () => {
    const err = await new Chat('openai/gpt-4o-mini', { env: {} }).send('hi').catch((e: unknown) => e);
    expect((err as Error).message).toContain('OPENROUTER_API_KEY');
  });

  it('a malformed model string says what was expected', () => {
    expect(() => new Chat('gpt 4o', opts)).toThrow(ModelStringError);
    expect(() => new Chat('', opts)).toThrow(/empty/);
    expect(() => new Chat('gpt-4o', { env: {} })).toThrow(/vendor\/model/);
  });

  it('never puts the API key in an error', async () => {
    const err = (await new Chat('acme/fail-401', { ...opts, apiKey: 'sk-or-v1-verysecretkey1234' }).send('hi').catch((e: unknown) => e)) as APIError;
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err.status).toBe(401);
    expect(err.message).not.toContain('verysecretkey');
    expect(err.providerMessage).not.toContain('verysecretkey');
    expect(JSON.stringify(err)).not.toContain('verysecretkey');
  });

  it('429 carries retry-after; HTML from a proxy names the URL', async () => {
    const rl = (await new Chat('acme/fail-429', opts).send('x').catch((e: unknown) => e)) as RateLimitError;
    expect(rl).toBeInstanceOf(RateLimitError);
    expect(rl.retryAfterMs).toBe(7000);
    expect(rl.isRetryable).toBe(true);
    const html = (await new Chat('acme/html', opts).send('x').catch((e: unknown) => e)) as ProtocolError;
    expect(html).toBeInstanceOf(ProtocolError);
    expect(html.message).toContain(`${up.url}/v1/chat/completions`);
    expect(html.message).toContain('502 Bad Gateway');
  });

  it('timeout and abort are typed', async () => {
    // Two deployments: the retried timeouts cool the first one down (its circuit breaker opens).
    await expect(new Chat('acme/slow-timeout', { ...opts, timeout: 100 }).send('x')).rejects.toBeInstanceOf(TimeoutError);
    const controller = new AbortController();
    const p = new Chat('acme/slow-abort', opts).send('x', { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(p).rejects.toBeInstanceOf(AbortError);
  });

  it('two custom endpoints serving the same model name keep separate circuit breakers', async () => {
    // Three failed attempts (one and two retries) cool the unreachable endpoint down...
    await expect(new Chat('acme/shared', { baseURL: 'http://127.0.0.1:1/v1' }).send('x')).rejects.toMatchObject({ code: 'network' });
    // ...which says nothing about the same model name on a server that works.
    expect(await new Chat('acme/shared', opts).send('x')).toBe('acme/shared heard: x');
  });

  it('a connection failure is a network error', async () => {
    await expect(new Chat('acme/one', { baseURL: 'http://127.0.0.1:1/v1' }).send('x')).rejects.toMatchObject({ code: 'network' });
  });
});

describe('OpenRouter', () => {
  it('sends attribution headers and the key from OPENROUTER_API_KEY, and takes its reported cost', async () => {
    const env = { OPENROUTER_API_KEY: 'sk-or-v1-envkey123456', OPENROUTER_BASE_URL: `${up.url}/api/v1` };
    const chat = new Chat('moonshotai/kimi-k2:free', { env });
    expect(await chat.send('hi')).toBe('moonshotai/kimi-k2:free heard: hi');
    const req = up.requests[up.requests.length - 1];
    expect(req?.url).toBe('/api/v1/chat/completions');
    expect(req?.headers.authorization).toBe('Bearer sk-or-v1-envkey123456');
    expect(req?.headers['x-title']).toBe('switchboard');
    expect(req?.headers['http-referer']).toBeTruthy();
    expect(req?.body.usage).toEqual({ include: true });
    expect(chat.usage.cost).toBeCloseTo(chat.usage.totalTokens * 1e-6, 12);
    expect(chat.lastTurn?.provider).toBe('openrouter');
  });
});
