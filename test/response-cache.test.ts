/**
 * The response cache over real HTTP: a local OpenAI-compatible stand-in that records every
 * request (so a hit provably sends nothing), and the simulator for a tool-call reply.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Call, Chat, InvalidInputError, tool, type Message, type StreamEvent } from '../src/index.js';
import { MemoryCacheStore } from '../src/cache/store.js';
import { SQLiteCacheStore } from '../src/cache/sqlite-store.js';
import { requestKey, type KeyInput } from '../src/cache/key.js';
import { startStandIn, type StandIn } from './helpers/openai-standin.js';

const API_KEY = 'sk-test-cache-0123456789abcdef';
let up: StandIn;
let opts: { baseURL: string; apiKey: string };

beforeAll(async () => {
  up = await startStandIn({ costPerToken: 0.000001 });
  opts = { baseURL: `${up.url}/v1`, apiKey: API_KEY };
});
afterAll(() => up.close());

async function events(stream: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

const deltas = (list: StreamEvent[]) => list.filter((e) => e.type !== 'finish');
const finish = (list: StreamEvent[]) => {
  const last = list[list.length - 1];
  if (last?.type !== 'finish') throw new Error('no finish event');
  return last.result;
};

describe('response cache', () => {
  it('replays a stream with the same deltas; the hit sends nothing, costs 0 and saves the original cost', async () => {
    const store = new MemoryCacheStore();
    const call = new Call('acme/echo', { ...opts, cache: { store } });
    const before = up.requests.length;
    const live = await events(call.stream('Tell me about caches'));
    const hit = await events(call.stream('Tell me about caches'));
    expect(up.requests.length - before).toBe(1);
    expect(deltas(live).length).toBeGreaterThan(2);
    expect(deltas(hit)).toEqual(deltas(live));
    const first = finish(live);
    const second = finish(hit);
    expect(first.cached).toBeUndefined();
    expect(second.cached).toBe(true);
    expect(second.message).toEqual(first.message);
    expect(second.text).toBe(first.text);
    expect(second.finishReason).toBe('stop');
    expect(second.usage.cost).toBe(0);
    // The stand-in bills 1e-6 dollars a token: 4 prompt words + 6 reply words.
    expect(first.usage.cost).toBeCloseTo(10e-6, 15);
    expect(second.usage.savedCost).toBe(first.usage.cost);
    expect(store.stats()).toMatchObject({ entries: 1, hits: 1, misses: 1, savedFemto: 10_000_000_000n });
  });

  it('a chat commits a hit to its history exactly as a live reply, and sums savedCost', async () => {
    const store = new MemoryCacheStore();
    const a = new Chat('acme/echo', { ...opts, system: 'S', cache: { store } });
    const b = new Chat('acme/echo', { ...opts, system: 'S', cache: { store } });
    expect(await a.send('hello there')).toBe(await b.send('hello there'));
    expect(b.history).toEqual(a.history);
    expect(b.lastTurn?.cached).toBe(true);
    expect(b.usage.cost).toBe(0);
    expect(b.usage.savedCost).toBe(a.usage.cost);
    // The second turn differs (the history grew): a miss, then a live reply.
    await b.send('and again');
    expect(b.lastTurn?.cached).toBeUndefined();
    expect(b.usage.savedCost).toBe(a.usage.cost);
  });

  it('a chat some turns in keys its request as one given the same history from scratch, and its history is never changed under the key', async () => {
    const store = new MemoryCacheStore();
    const a = new Chat('acme/echo', { ...opts, system: 'S', cache: { store } });
    await a.send('one');
    await a.send('two');
    // What the chat hands out is a copy: changing it must not change what the next key hashes.
    const handedOut = a.history;
    (handedOut[1] as { content: string }).content = 'changed';
    const before = up.requests.length;
    await a.send('three'); // keyed from the state kept after 'two': only the new messages are hashed
    expect(up.requests.length - before).toBe(1);
    // A second chat given the first one's history (new objects, hashed from the start) asks the same: a hit.
    const b = new Chat('acme/echo', { ...opts, system: 'S', cache: { store } });
    b.history = a.history.slice(0, -2);
    await b.send('three');
    expect(b.lastTurn?.cached).toBe(true);
    expect(up.requests.length - before).toBe(1);
    expect(b.history).toEqual(a.history);
    // And one whose history differs in an earlier message is another request.
    const c = new Chat('acme/echo', { ...opts, system: 'S', cache: { store } });
    c.history = a.history.slice(0, -2).map((m, i) => (i === 1 ? { ...m, content: 'one!' } : m)) as Message[];
    await c.send('three');
    expect(c.lastTurn?.cached).toBeUndefined();
    expect(up.requests.length - before).toBe(2);
  });

  it('a request option overrides the client: false skips the cache', async () => {
    const store = new MemoryCacheStore();
    const call = new Call('acme/echo', { ...opts, cache: { store } });
    await call.run('skip me');
    const before = up.requests.length;
    await call.run('skip me', { cache: false });
    expect(up.requests.length - before).toBe(1);
    expect(call.lastResults['acme/echo']?.cached).toBeUndefined();
  });

  it('caches a temperature above 0 only when asked to', async () => {
    const store = new MemoryCacheStore();
    const sampled = new Call('acme/echo', { ...opts, temperature: 0.7, cache: { store } });
    await sampled.run('random words');
    await sampled.run('random words');
    expect(store.stats().entries).toBe(0);
    const optedIn = new Call('acme/echo', { ...opts, temperature: 0.7, cache: { store, anyTemperature: true } });
    await optedIn.run('random words');
    await optedIn.run('random words');
    expect(optedIn.lastResults['acme/echo']?.cached).toBe(true);
    // Temperature 0 is deterministic: cached with plain `cache: true`.
    const greedy = new Call('acme/echo', { ...opts, temperature: 0, cache: { store } });
    await greedy.run('greedy words');
    await greedy.run('greedy words');
    expect(greedy.lastResults['acme/echo']?.cached).toBe(true);
  });

  it('never stores errors or cut streams', async () => {
    const store = new MemoryCacheStore();
    await expect(new Call('acme/fail-500', { ...opts, cache: { store } }).run('hi')).rejects.toThrow();
    await expect(new Call('acme/cut', { ...opts, cache: { store } }).run('hi')).rejects.toThrow();
    // A consumer that leaves mid-stream stores nothing either.
    for await (const e of new Call('acme/echo', { ...opts, cache: { store } }).stream('leave early please')) {
      if (e.type === 'text-delta') break;
    }
    expect(store.stats().entries).toBe(0);
  });

  it('keys on everything that changes the answer and on nothing else', () => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const base = requestKey({ model: 'openai/gpt-4o-mini', messages, params: {} });
    expect(requestKey({ model: 'openai/gpt-4o-mini', messages: [{ content: 'hi', role: 'user' }], params: {} })).toBe(base);
    expect(requestKey({ model: 'openai/gpt-4o-mini', messages, params: { promptCaching: false } })).toBe(base);
    const changed = [
      requestKey({ model: 'openai/gpt-4o', messages, params: {} }),
      requestKey({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi!' }], params: {} }),
      requestKey({ model: 'openai/gpt-4o-mini', messages, params: { maxTokens: 5 } }),
      requestKey({ model: 'openai/gpt-4o-mini', messages, params: { tools: [{ name: 't', parameters: {} }] } }),
      requestKey({ model: 'openai/gpt-4o-mini', messages, params: { responseFormat: { type: 'json_object' } } }),
      requestKey({ model: 'openai/gpt-4o-mini', baseURL: 'http://127.0.0.1:1/v1', messages, params: {} }),
    ];
    expect(new Set([base, ...changed]).size).toBe(changed.length + 1);
  });

  it('keeps histories apart that the messages\' texts could run together into', () => {
    const key = (messages: unknown[]) => requestKey({ model: 'm', messages: messages as never, params: {} });
    const histories = [
      [{ role: 'user', content: 'ab' }],
      [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }],
      [{ role: 'user', content: '1:a' }],
      [{ role: 'user', content: 'a', tool_call_id: '' }],
      [{ role: 'tool', content: 'a', tool_call_id: 'x' }],
      [{ role: 'tool', content: 'x1:a', tool_call_id: '' }],
      // Lone surrogates: the same bytes once UTF-8 encoded, so they go by their JSON spelling.
      [{ role: 'user', content: '\uD800' }],
      [{ role: 'user', content: '\uDC00' }],
      [{ role: 'user', content: [{ type: 'text', text: 'ab' }] }],
      // ... in a role or a tool call id too: not the same request as U+FFFD there.
      [{ role: '\uD800', content: 'a' }],
      [{ role: '\uFFFD', content: 'a' }],
      [{ role: 'tool', content: 'a', tool_call_id: '\uDBFF' }],
      [{ role: 'tool', content: 'a', tool_call_id: '\uFFFD' }],
    ];
    expect(new Set(histories.map(key)).size).toBe(histories.length);
  });

  it('a parameter changed in place between two requests changes the key', () => {
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const params: Record<string, unknown> = { temperature: 0, maxTokens: 5 };
    const key = () => requestKey({ model: 'm', messages, params: params as never });
    const first = key();
    expect(key()).toBe(first);
    params.maxTokens = 6;
    const second = key();
    expect(second).not.toBe(first);
    const tools = [{ name: 't', parameters: {} as Record<string, unknown> }];
    params.tools = tools;
    const third = key();
    tools[0]!.parameters.type = 'object';
    expect(new Set([first, second, third, key()]).size).toBe(4);
    delete params.tools;
    expect(key()).toBe(second);
  });

  it('a key from a remembered prefix equals the key hashed from scratch', () => {
    // `continued` (what Chat says) keeps the hash state beside the last message; only such requests look for one.
    const turn1 = [{ role: 'system' as const, content: 'S' }, { role: 'user' as const, content: 'one' }];
    requestKey({ model: 'm', messages: turn1, params: {}, continued: true });
    const turn2 = [...turn1, { role: 'assistant' as const, content: 'reply' }, { role: 'user' as const, content: 'two' }];
    const remembered = requestKey({ model: 'm', messages: turn2, params: { maxTokens: 9 }, continued: true });
    expect(requestKey({ model: 'm', messages: structuredClone(turn2), params: { maxTokens: 9 } })).toBe(remembered);
    // The same objects in another order, or one dropped, are other requests.
    const reordered = [turn2[0], turn2[2], turn2[1], turn2[3]] as typeof turn2;
    const dropped = [turn2[0], turn2[3]] as typeof turn2;
    for (const messages of [reordered, dropped]) {
      const warm = requestKey({ model: 'm', messages, params: { maxTokens: 9 }, continued: true });
      expect(warm).not.toBe(remembered);
      expect(warm).toBe(requestKey({ model: 'm', messages: structuredClone(messages), params: { maxTokens: 9 } }));
    }
  });

  it('with the hash state warm, the key still tells every request apart, and equals the key hashed from scratch', () => {
    // A chat's history a few turns in, each turn continuing the last one's message objects.
    const history: Message[] = [{ role: 'system', content: 'You are terse.' }];
    for (let t = 0; t < 4; t++) {
      history.push({ role: 'user', content: `question ${t}` });
      requestKey({ model: 'openai/gpt-4o-mini', messages: history, params: { temperature: 0 }, continued: true });
      history.push({ role: 'assistant', content: `answer ${t}` });
    }
    const next = (content: string): Message[] => [...history, { role: 'user', content }];
    const tools = [{ name: 'lookup', description: 'Find a word', parameters: { type: 'object', properties: { q: { type: 'string' } } } }];
    const requests: KeyInput[] = [
      { model: 'openai/gpt-4o-mini', messages: next('and then?'), params: { temperature: 0 } },
      { model: 'openai/gpt-4o-mini', messages: next('and then!'), params: { temperature: 0 } },
      { model: 'openai/gpt-4o', messages: next('and then?'), params: { temperature: 0 } },
      { model: 'openai/gpt-4o-mini', baseURL: 'http://127.0.0.1:1/v1', messages: next('and then?'), params: { temperature: 0 } },
      { model: 'openai/gpt-4o-mini', messages: next('and then?'), params: { temperature: 0, maxTokens: 64 } },
      { model: 'openai/gpt-4o-mini', messages: next('and then?'), params: { temperature: 0, tools } },
      { model: 'openai/gpt-4o-mini', messages: next('and then?'), params: { temperature: 0, tools: [{ ...tools[0]!, description: 'Find a phrase' }] } },
      { model: 'openai/gpt-4o-mini', messages: next('and then?'), params: { temperature: 0, responseFormat: { type: 'json_object' } } },
      // The same history with an earlier message changed (a new object): not the remembered prefix.
      { model: 'openai/gpt-4o-mini', messages: [history[0]!, { role: 'user', content: 'question 0?' }, ...history.slice(2), { role: 'user', content: 'and then?' }], params: { temperature: 0 } },
      // One message fewer, and a tool result in the last place.
      { model: 'openai/gpt-4o-mini', messages: history.slice(0, -1).concat({ role: 'user', content: 'and then?' }), params: { temperature: 0 } },
      { model: 'openai/gpt-4o-mini', messages: [...history, { role: 'tool', content: 'and then?', tool_call_id: 'call_1' }], params: { temperature: 0 } },
    ];
    const warm = requests.map((r) => requestKey({ ...r, continued: true }));
    expect(new Set(warm).size).toBe(requests.length);
    // Each equals the key of the same request as new objects, hashed from the start; and asking again gives it again.
    requests.forEach((r, i) => {
      expect(requestKey({ ...r, messages: structuredClone(r.messages) })).toBe(warm[i]);
      expect(requestKey({ ...r, continued: true })).toBe(warm[i]);
    });
    // A billing-only parameter changes nothing, warm or cold.
    expect(requestKey({ ...requests[0]!, params: { temperature: 0, promptCaching: true }, continued: true })).toBe(warm[0]);
  });

  it('refuses a bad setting with a typed error that says what to give', () => {
    expect(() => new Call('acme/echo', { ...opts, cache: { ttl: -1 } })).toThrow(/cache.ttl is a number of seconds/);
    expect(() => new Chat('acme/echo', { ...opts, cache: { namespace: '' } })).toThrow(InvalidInputError);
    expect(() => new Chat('acme/echo', { ...opts, cache: { store: {} as MemoryCacheStore } })).toThrow(/get and set methods/);
  });

  it('an expired entry is a miss', async () => {
    const store = new MemoryCacheStore();
    const key = 'default:abc';
    store.set(key, { value: '{}', namespace: 'default', costFemto: null, expiresAt: Date.now() - 1 });
    expect(store.get(key, Date.now())).toBeUndefined();
    expect(store.stats().entries).toBe(0);
  });

  it('evicts the least recently used entries at its byte bound', () => {
    const value = 'x'.repeat(90);
    const store = new MemoryCacheStore({ maxBytes: 300 }); // three entries of 100 bytes fit
    const put = (k: string) => store.set(k, { value, namespace: 'n', costFemto: null, expiresAt: null });
    put('key-00001');
    put('key-00002');
    put('key-00003');
    expect(store.stats().bytes).toBe(3 * (9 + 90));
    store.get('key-00001', Date.now()); // now the most recently used
    put('key-00004');
    expect(store.has('key-00002')).toBe(false);
    expect(['key-00001', 'key-00003', 'key-00004'].every((k) => store.has(k))).toBe(true);
    expect(store.stats().bytes).toBeLessThanOrEqual(300);
    store.set('huge', { value: 'y'.repeat(400), namespace: 'n', costFemto: null, expiresAt: null });
    expect(store.has('huge')).toBe(false);
  });

  it('the SQLite store keeps entries across opens, bounds its bytes and clears by namespace', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sb-cache-')), 'response-cache.db');
    const first = new SQLiteCacheStore({ path });
    const call = new Call('acme/echo', { ...opts, cache: { store: first, namespace: 'evals' } });
    await call.run('persist me');
    first.close();
    const second = new SQLiteCacheStore({ path, maxBytes: 4000 });
    const again = new Call('acme/echo', { ...opts, cache: { store: second, namespace: 'evals' } });
    await again.run('persist me');
    expect(again.lastResults['acme/echo']?.cached).toBe(true);
    expect(second.stats()).toMatchObject({ entries: 1, hits: 1, misses: 1 });
    expect(second.stats().savedFemto).toBeGreaterThan(0n);
    for (let i = 0; i < 10; i++) second.set(`other:${i}`, { value: 'z'.repeat(900), namespace: 'other', costFemto: null, expiresAt: null });
    expect(second.stats().bytes).toBeLessThanOrEqual(4000);
    expect(second.clear('other')).toBeGreaterThan(0);
    second.close();
  });

  it('no entry holds the API key', async () => {
    const memory = new MemoryCacheStore();
    const path = join(mkdtempSync(join(tmpdir(), 'sb-cache-')), 'response-cache.db');
    const sqlite = new SQLiteCacheStore({ path });
    const values: string[] = [];
    const spy = { ...memory, get: memory.get.bind(memory), clear: memory.clear.bind(memory), stats: memory.stats.bind(memory), set: (k: string, e: Parameters<MemoryCacheStore['set']>[1]) => {
      values.push(k, e.value, e.namespace);
      memory.set(k, e);
    } };
    await new Call('acme/echo', { ...opts, headers: { 'x-secret': API_KEY }, cache: { store: spy } }).run('what is my key?');
    await new Call('acme/echo', { ...opts, cache: { store: sqlite } }).run('what is my key?');
    expect(values.length).toBe(3);
    expect(values.join('\n')).not.toContain(API_KEY);
    sqlite.close();
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(path).toString('latin1') + readFileSync(`${path}-wal`, { flag: 'a+' }).toString('latin1');
    expect(bytes).toContain('acme/echo heard'); // the reply is in the file, so the search below looks at real content
    expect(bytes).not.toContain(API_KEY);
  });
});

describe('response cache with tools', () => {
  it('replays a tool-call reply exactly; the tools run again and the history matches', async () => {
    const store = new MemoryCacheStore();
    const runs: unknown[] = [];
    const weather = tool({
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: z.object({ city: z.string(), unit: z.enum(['celsius', 'fahrenheit']).optional() }),
      execute: (args) => {
        runs.push(args);
        return { city: args.city, temperature: 21 };
      },
    });
    const model = 'sim/llama@sim-anthropic';
    const live = new Chat(model, { tools: [weather], cache: { store } });
    const liveEvents = await events(live.stream('What is the weather in Paris?'));
    const replayed = new Chat(model, { tools: [weather], cache: { store } });
    const hitEvents = await events(replayed.stream('What is the weather in Paris?'));
    expect(runs).toEqual([{ city: 'Paris', unit: 'celsius' }, { city: 'Paris', unit: 'celsius' }]);
    expect(deltas(hitEvents)).toEqual(deltas(liveEvents));
    expect(hitEvents.some((e) => e.type === 'tool-call')).toBe(true);
    expect(replayed.history).toEqual(live.history);
    const result = finish(hitEvents);
    expect(result.cached).toBe(true);
    expect(result.steps?.map((s) => s.message)).toEqual(finish(liveEvents).steps?.map((s) => s.message));
    expect(result.usage.cost).toBe(0);
    expect(result.usage.savedCost).toBe(finish(liveEvents).usage.cost);
    expect(store.stats()).toMatchObject({ entries: 2, hits: 2 });
  });

  it('a tool that changes the conversation it is given changes neither the history nor the next key', async () => {
    const store = new MemoryCacheStore();
    const parameters = z.object({ city: z.string(), unit: z.enum(['celsius', 'fahrenheit']).optional() });
    const tampering = tool({
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters,
      execute: (args, ctx) => {
        for (const m of ctx.messages) if (m.role === 'user') (m as { content: string }).content = 'tampered';
        return { city: args.city, temperature: 21 };
      },
    });
    const honest = tool({ name: 'get_weather', description: 'Current weather for a city', parameters, execute: (args) => ({ city: args.city, temperature: 21 }) });
    const model = 'sim/llama@sim-anthropic';
    const a = new Chat(model, { tools: [tampering], cache: { store } });
    await a.send('What is the weather in Paris?');
    const afterFirst = a.history;
    expect(afterFirst.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(['What is the weather in Paris?']);
    // The next turn is keyed from the hash state kept for the first one's messages.
    await a.send('And in Rome?');
    // A chat given the same history (new objects, hashed from the start) asks exactly that: hits.
    const b = new Chat(model, { tools: [honest], cache: { store } });
    b.history = afterFirst;
    await b.send('And in Rome?');
    expect(b.lastTurn?.cached).toBe(true);
    expect(b.history).toEqual(a.history);
  });
});

describe('switchboard ask --cache and switchboard cache', () => {
  it('a repeated ask is answered from the file; stats count it; clear empties it', async () => {
    const { runCLI } = await import('./helpers/cli.js');
    const env = { SWITCHBOARD_HOME: mkdtempSync(join(tmpdir(), 'sb-cli-cache-')) };
    const ask = () => runCLI(['ask', '--cache', '--json', '-m', 'sim/llama@sim-anthropic', '-t', '0', 'Name three rivers.'], { env });
    const first = JSON.parse((await ask()).stdout) as { text: string; cost: number; cached?: boolean };
    const second = JSON.parse((await ask()).stdout) as { text: string; cost: number; cached?: boolean; savedCost?: number };
    expect(first.cached).toBeUndefined();
    expect(first.cost).toBeGreaterThan(0);
    expect(second).toMatchObject({ text: first.text, cost: 0, cached: true, savedCost: first.cost });
    const stats = JSON.parse((await runCLI(['cache', 'stats', '--json'], { env })).stdout) as Record<string, unknown>;
    expect(stats).toMatchObject({ entries: 1, hits: 1, misses: 1, savedCost: first.cost });
    const text = (await runCLI(['cache', 'stats'], { env })).stdout;
    expect(text).toMatch(/hits {5}1, misses 1 \(50\.0% hits\)/);
    expect((await runCLI(['cache', 'clear'], { env })).stdout).toBe('Removed 1 cached reply.\n');
    expect(JSON.parse((await runCLI(['cache', 'stats', '--json'], { env })).stdout)).toMatchObject({ entries: 0, hits: 0, misses: 0, savedCost: 0 });
  });
});

describe('savedCost in the conversation log', () => {
  it('switchboard usage sums what caching saved per model', async () => {
    const { SQLiteConversationLog } = await import('../src/store/conversation-log.js');
    const path = join(mkdtempSync(join(tmpdir(), 'sb-log-')), 'logs.db');
    const log = new SQLiteConversationLog({ path });
    const store = new MemoryCacheStore();
    const chat = new Chat('acme/echo', { ...opts, cache: { store } });
    const id = log.create(chat.models, undefined);
    for (let i = 0; i < 2; i++) {
      await chat.send('the same question');
      chat.resetHistory();
      log.recordTurn(id, { user: 'the same question', results: [chat.lastTurn as NonNullable<typeof chat.lastTurn>], errors: [], state: chat.toJSON(), models: chat.models });
    }
    const [row] = log.usage({ by: 'model' });
    // The second turn was a hit: it saved the first turn's cost.
    expect(row?.savedFemto).toBe(BigInt(Math.round((chat.turns[0]?.usage.cost ?? 0) * 1e15)));
    expect(row?.savedFemto).toBeGreaterThan(0n);
    log.close();
  });
});
