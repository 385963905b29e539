/**
 * The gateway's response cache, through the official clients: a repeated request is answered
 * from the cache (never reaching upstream) in the caller's own protocol, streamed or not, at
 * cost 0; `Cache-Control: no-store` and `no-cache` are honoured; errors, cut streams and
 * (unless configured) sampled requests are never stored; no entry holds a key.
 * Upstream is a local OpenAI-compatible stand-in that records every request it gets, and the
 * simulator behind a counting forwarder for tool calls. What caching saved (hits, and an
 * Anthropic stand-in's prompt cache) is followed into the ledger, the request log, `switchboard
 * usage`, GET /admin/usage and /metrics.
 */
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../src/gateway/config.js';
import { openVirtualKeyStack } from '../src/gateway/virtual-key-stack.js';
import { SQLiteConversationLog } from '../src/store/conversation-log.js';
import { startAnthropicCacheStandIn } from './helpers/anthropic-cache-standin.js';
import { runCLI } from './helpers/cli.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { MASTER_KEY, startGateway, waitFor, type RunningGateway } from './helpers/gateway.js';
import { startStandIn, type StandIn } from './helpers/openai-standin.js';

const UPSTREAM_KEY = 'sk-upstream-secret-key-4242';
const CONFIG = [
  'providers:',
  `  - { name: local, protocol: openai, base_url: "\${UPSTREAM_URL}/v1", api_key: ${UPSTREAM_KEY} }`,
  `  - { name: simup, protocol: openai, base_url: "\${SIM_URL}/sim-fast/v1", api_key: ${UPSTREAM_KEY} }`,
  'aliases:',
  '  echo: echo@local',
  '  warm: warm@local',
  '  plain: plain@local',
  'response_cache:',
  '  store: sqlite',
  '  models:',
  '    warm: { any_temperature: true }',
  '    plain: false',
].join('\n');

/** A forwarder in front of the simulator that counts what passes. */
async function countingForwarder(target: string): Promise<{ url: string; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const server: Server = createServer((req, res) => {
    n++;
    const up = httpRequest(`${target}${req.url ?? ''}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, count: () => n, close: () => new Promise((r) => server.close(() => r())) };
}

let upstream: StandIn;
let sim: RunningSimulator;
let forwarder: Awaited<ReturnType<typeof countingForwarder>>;
let gw: RunningGateway;
let openai: OpenAI;
let anthropic: Anthropic;
let google: GoogleGenAI;

beforeAll(async () => {
  upstream = await startStandIn({ costPerToken: 0.001 });
  sim = await startSimulator();
  forwarder = await countingForwarder(sim.url);
  gw = await startGateway(CONFIG, { env: { UPSTREAM_URL: upstream.url, SIM_URL: forwarder.url } });
  openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MASTER_KEY, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: gw.url, apiKey: MASTER_KEY, maxRetries: 0 });
  google = new GoogleGenAI({ apiKey: MASTER_KEY, httpOptions: { baseUrl: gw.url, retryOptions: { attempts: 1 } } });
});
afterAll(async () => {
  await gw.close();
  await forwarder.close();
  await sim.close();
  await upstream.close();
});

/** How many requests reached upstream while `run` ran. */
async function upstreamCalls(run: () => Promise<unknown>): Promise<number> {
  const before = upstream.requests.length;
  await run();
  return upstream.requests.length - before;
}

describe('OpenAI chat completions', () => {
  it('answers the second identical request from the cache, at cost 0, without reaching upstream', async () => {
    const ask = () => openai.chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: 'What is a cache?' }] }).withResponse();
    let first!: Awaited<ReturnType<typeof ask>>;
    expect(await upstreamCalls(async () => (first = await ask()))).toBe(1);
    expect(first.response.headers.get('x-switchboard-cache')).toBe('miss');
    const cost = Number(first.response.headers.get('x-switchboard-cost'));
    expect(cost).toBeGreaterThan(0);

    let second!: Awaited<ReturnType<typeof ask>>;
    expect(await upstreamCalls(async () => (second = await ask()))).toBe(0);
    expect(second.response.headers.get('x-switchboard-cache')).toBe('hit');
    expect(second.response.headers.get('x-switchboard-cost')).toBe('0');
    expect(Number(second.response.headers.get('x-switchboard-saved-cost'))).toBeCloseTo(cost, 12);
    expect(second.data.choices[0]?.message.content).toBe(first.data.choices[0]?.message.content);
    expect(second.data.choices[0]?.finish_reason).toBe('stop');
    // The same tokens, at the cost this reply had: nothing.
    expect(second.data.usage).toEqual({ ...first.data.usage, cost: 0 });

    await waitFor(() => gw.accessLog.filter((l) => l.model === 'echo').length >= 2);
    const log = gw.accessLog.filter((l) => l.model === 'echo');
    expect(log.map((l) => l.cache)).toEqual(['miss', 'hit']);
    expect(log[1]?.cost).toBe(0);
    expect(log[1]?.saved_cost).toBeCloseTo(cost, 12);
  });

  it('replays a cached reply as a stream with the same chunks, finish and usage', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me about rivers and seas' }];
    const read = async () => {
      const raw = await openai.chat.completions.create({ model: 'echo', stream: true, stream_options: { include_usage: true }, messages }).withResponse();
      const chunks: { text: string; finish: string | null | undefined; usage: unknown }[] = [];
      for await (const c of raw.data) chunks.push({ text: c.choices[0]?.delta?.content ?? '', finish: c.choices[0]?.finish_reason, usage: c.usage ?? null });
      return { chunks, header: raw.response.headers.get('x-switchboard-cache') };
    };
    let live!: Awaited<ReturnType<typeof read>>;
    expect(await upstreamCalls(async () => (live = await read()))).toBe(1);
    let cached!: Awaited<ReturnType<typeof read>>;
    expect(await upstreamCalls(async () => (cached = await read()))).toBe(0);
    expect([live.header, cached.header]).toEqual(['miss', 'hit']);
    expect(cached.chunks.map((c) => c.text).join('')).toBe('echo heard: Tell me about rivers and seas');
    expect(cached.chunks.filter((c) => c.text !== '').map((c) => c.text)).toEqual(live.chunks.filter((c) => c.text !== '').map((c) => c.text));
    expect(cached.chunks.map((c) => c.finish).filter(Boolean)).toEqual(['stop']);
    expect(cached.chunks.at(-1)?.usage).toEqual({ ...(live.chunks.at(-1)?.usage as object), cost: 0 });
    // The streamed entry serves the same request without a stream too.
    const whole = await openai.chat.completions.create({ model: 'echo', messages }).withResponse();
    expect(whole.response.headers.get('x-switchboard-cache')).toBe('hit');
    expect(whole.data.choices[0]?.message.content).toBe('echo heard: Tell me about rivers and seas');
  });

  it('replays a tool call exactly', async () => {
    const ask = () =>
      openai.chat.completions.create({
        model: 'llama@simup',
        messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
        tools: [{ type: 'function', function: { name: 'get_weather', description: 'Current weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }],
      });
    const before = forwarder.count();
    const live = await ask();
    const cached = await ask();
    expect(forwarder.count() - before).toBe(1);
    expect(live.choices[0]?.finish_reason).toBe('tool_calls');
    expect(live.choices[0]?.message.tool_calls?.[0]).toBeDefined();
    expect(cached.choices[0]?.message.tool_calls).toEqual(live.choices[0]?.message.tool_calls);
    expect(cached.choices[0]?.finish_reason).toBe('tool_calls');
  });
});

describe('the other protocols', () => {
  it('OpenAI Responses: stream and whole', async () => {
    const input = 'Responses API caching check';
    const first = await openai.responses.create({ model: 'echo', input }).withResponse();
    let text = '';
    const calls = await upstreamCalls(async () => {
      const stream = await openai.responses.create({ model: 'echo', input, stream: true });
      for await (const ev of stream) if (ev.type === 'response.output_text.delta') text += ev.delta;
      const again = await openai.responses.create({ model: 'echo', input }).withResponse();
      expect(again.response.headers.get('x-switchboard-cache')).toBe('hit');
      expect(again.data.output_text).toBe(first.data.output_text);
    });
    expect(first.response.headers.get('x-switchboard-cache')).toBe('miss');
    expect(calls).toBe(0);
    expect(text).toBe(`echo heard: ${input}`);
  });

  it('Anthropic messages: stream and whole', async () => {
    const params = { model: 'echo', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Anthropic caching check' }] };
    const first = await anthropic.messages.create(params).withResponse();
    expect(first.response.headers.get('x-switchboard-cache')).toBe('miss');
    const calls = await upstreamCalls(async () => {
      const again = await anthropic.messages.create(params).withResponse();
      expect(again.response.headers.get('x-switchboard-cache')).toBe('hit');
      expect(again.data.content).toEqual(first.data.content);
      expect(again.data.stop_reason).toBe('end_turn');
      const streamed = await anthropic.messages.stream(params).finalMessage();
      expect(streamed.content).toEqual(first.data.content);
      expect(streamed.usage.output_tokens).toBe(first.data.usage.output_tokens);
    });
    expect(calls).toBe(0);
  });

  it('Gemini generateContent: stream and whole', async () => {
    const params = { model: 'echo', contents: 'Gemini caching check' };
    const first = await google.models.generateContent(params);
    const calls = await upstreamCalls(async () => {
      const again = await google.models.generateContent(params);
      expect(again.text).toBe(first.text);
      expect(again.usageMetadata?.candidatesTokenCount).toBe(first.usageMetadata?.candidatesTokenCount);
      let text = '';
      for await (const chunk of await google.models.generateContentStream(params)) text += chunk.text ?? '';
      expect(text).toBe(first.text);
    });
    expect(first.text).toBe('echo heard: Gemini caching check');
    expect(calls).toBe(0);
  });
});

describe('what is not read or not stored', () => {
  const ask = (content: string, headers: Record<string, string> = {}, model = 'echo', temperature?: number) =>
    openai.chat.completions.create({ model, messages: [{ role: 'user', content }], ...(temperature === undefined ? {} : { temperature }) }, { headers }).withResponse();

  it('Cache-Control: no-store neither reads nor stores', async () => {
    await ask('stored before');
    const calls = await upstreamCalls(async () => {
      const a = await ask('stored before', { 'cache-control': 'no-store' });
      expect(a.response.headers.get('x-switchboard-cache')).toBe('bypass');
      await ask('never stored', { 'cache-control': 'no-store' });
      await ask('never stored', { 'cache-control': 'no-store' });
    });
    expect(calls).toBe(3);
    const later = await ask('never stored');
    expect(later.response.headers.get('x-switchboard-cache')).toBe('miss');
  });

  it('Cache-Control: no-cache skips the read and stores the fresh reply', async () => {
    await ask('refresh me');
    expect(await upstreamCalls(async () => expect((await ask('refresh me', { 'cache-control': 'no-cache' })).response.headers.get('x-switchboard-cache')).toBe('miss'))).toBe(1);
    expect(await upstreamCalls(async () => expect((await ask('refresh me')).response.headers.get('x-switchboard-cache')).toBe('hit'))).toBe(0);
  });

  it('temperature above 0 is cached only where the config opts in', async () => {
    expect(await upstreamCalls(async () => {
      for (let i = 0; i < 2; i++) expect((await ask('sampled', {}, 'echo', 0.7)).response.headers.get('x-switchboard-cache')).toBe('bypass');
    })).toBe(2);
    expect(await upstreamCalls(async () => {
      const states = [];
      for (let i = 0; i < 2; i++) states.push((await ask('sampled', {}, 'warm', 0.7)).response.headers.get('x-switchboard-cache'));
      expect(states).toEqual(['miss', 'hit']);
    })).toBe(1);
  });

  it('a model the config turns off gets no header and no cache', async () => {
    expect(await upstreamCalls(async () => {
      for (let i = 0; i < 2; i++) expect((await ask('uncached', {}, 'plain')).response.headers.get('x-switchboard-cache')).toBeNull();
    })).toBe(2);
  });

  it('errors and streams cut by upstream are never stored', async () => {
    // Each request goes upstream as often as the first did (the gateway's retries included).
    const failing = () => upstreamCalls(() => expect(ask('boom', {}, 'fail-500@local')).rejects.toThrow());
    const first = await failing();
    expect(first).toBeGreaterThan(0);
    expect(await failing()).toBe(first);
    const cut = () =>
      upstreamCalls(async () => {
        const stream = await openai.chat.completions.create({ model: 'cut-model@local', stream: true, messages: [{ role: 'user', content: 'Hello there friend' }] });
        await expect((async () => { for await (const _ of stream) void _; })()).rejects.toThrow();
      });
    const firstCut = await cut();
    expect(firstCut).toBeGreaterThan(0);
    expect(await cut()).toBe(firstCut);
  });

  it('no cache entry holds a key', () => {
    const files = readdirSync(gw.home).filter((f) => f.startsWith('response-cache.db'));
    expect(files.length).toBeGreaterThan(0);
    const bytes = files.map((f) => readFileSync(join(gw.home, f)).toString('latin1')).join('');
    expect(bytes).toContain('echo heard: What is a cache?');
    expect(bytes).not.toContain(UPSTREAM_KEY);
    expect(bytes).not.toContain(MASTER_KEY);
  });
});

describe('the config', () => {
  it('names file, line and key when the cache settings are wrong', () => {
    expect(() => parseGatewayConfig('master_key: sk-12345678\nresponse_cache:\n  store: redis\n', 'gw.yaml', {})).toThrow(/^gw\.yaml:3: response_cache\.store: is redis, but no Redis is configured/);
    expect(() => parseGatewayConfig('response_cache:\n  ttl: 5\n', 'gw.yaml', {})).toThrow(/^gw\.yaml:2: response_cache\.ttl: is not a known setting \(known here: enabled, store, ttl_seconds/);
    expect(() => parseGatewayConfig('response_cache:\n  models:\n    fast: { ttl_seconds: -1 }\n', 'gw.yaml', {})).toThrow(/^gw\.yaml:3: response_cache\.models\.fast/);
    const config = parseGatewayConfig('virtual_keys:\n  redis_url: redis://127.0.0.1:1\nresponse_cache: {}\n', 'gw.yaml', {});
    expect(config.responseCache?.store).toBe('redis');
    expect(parseGatewayConfig('{}', 'gw.yaml', {}).responseCache).toBeUndefined();
  });

  it('a rule for the key wins over the model\'s and the default', async () => {
    const local = await startGateway(`providers:\n  - { name: local, protocol: openai, base_url: "\${UPSTREAM_URL}/v1" }\nresponse_cache:\n  enabled: false\n  models:\n    a@local: false\n  keys:\n    master: { ttl_seconds: 60 }\n`, { env: { UPSTREAM_URL: upstream.url }, requestLog: false });
    try {
      const client = new OpenAI({ baseURL: `${local.url}/v1`, apiKey: MASTER_KEY, maxRetries: 0 });
      const states: (string | null)[] = [];
      const calls = await upstreamCalls(async () => {
        for (let i = 0; i < 2; i++) states.push((await client.chat.completions.create({ model: 'a@local', messages: [{ role: 'user', content: 'key rule' }] }).withResponse()).response.headers.get('x-switchboard-cache'));
      });
      expect(states).toEqual(['miss', 'hit']);
      expect(calls).toBe(1);
    } finally {
      await local.close();
    }
  });

  it('a reload that keeps the store keeps its entries; one that changes the store opens the new one and says so', async () => {
    const yaml = (cache: string) => `master_key: ${MASTER_KEY}\nproviders:\n  - { name: local, protocol: openai, base_url: "\${UPSTREAM_URL}/v1" }\nresponse_cache:\n${cache}`;
    const env = { UPSTREAM_URL: upstream.url };
    const local = await startGateway(yaml('  store: memory\n'), { env, requestLog: false });
    try {
      const client = new OpenAI({ baseURL: `${local.url}/v1`, apiKey: MASTER_KEY, maxRetries: 0 });
      const state = async () => (await client.chat.completions.create({ model: 'r@local', messages: [{ role: 'user', content: 'reload and the cache' }] }).withResponse()).response.headers.get('x-switchboard-cache');
      const reload = (cache: string) => local.gateway.reload(parseGatewayConfig(yaml(cache), 'test.yaml', { ...process.env, SWITCHBOARD_HOME: local.home, ...env }));
      const states: (string | null)[] = [];
      const calls = await upstreamCalls(async () => {
        states.push(await state(), await state());
        reload('  store: memory\n  ttl_seconds: 600\n');
        states.push(await state());
        reload('  store: sqlite\n');
        states.push(await state(), await state());
      });
      expect(states).toEqual(['miss', 'hit', 'hit', 'miss', 'hit']);
      expect(calls).toBe(2);
      expect(local.warnings.filter((w) => w.startsWith('response cache:'))).toEqual([
        'response cache: the new configuration changes its store (from the memory store to the SQLite store); entries in the old store are not carried over.',
      ]);
      expect(readdirSync(local.home)).toContain('response-cache.db');
    } finally {
      await local.close();
    }
  });
});

describe('what caching saved', () => {
  it('a hit saves its reply\'s price and a prompt cache its discount: in the ledger, the request log, usage and metrics', async () => {
    const anthropicUp = await startAnthropicCacheStandIn(() => 'Noted.', 1024);
    const dir = mkdtempSync(join(tmpdir(), 'sb-gw-saved-'));
    const yaml = [
      `master_key: ${MASTER_KEY}`,
      'virtual_keys:',
      `  ledger: ${join(dir, 'ledger.db')}`,
      'providers:',
      `  - { name: local, protocol: openai, base_url: "\${UPSTREAM_URL}/v1", api_key: ${UPSTREAM_KEY} }`,
      `  - { name: anthropic, protocol: anthropic, base_url: "\${ANTHROPIC_URL}", api_key: ${UPSTREAM_KEY} }`,
      'response_cache: {}',
    ].join('\n');
    writeFileSync(join(dir, 'gateway.yaml'), yaml);
    const env = { SWITCHBOARD_KEY_PEPPER: 'gateway-test-pepper', SWITCHBOARD_HOME: dir, UPSTREAM_URL: upstream.url, ANTHROPIC_URL: anthropicUp.url };
    const stack = await openVirtualKeyStack(parseGatewayConfig(yaml, 'gateway.yaml', { ...process.env, ...env }), { log: () => {} });
    const keyed = await startGateway(yaml, { env, authenticator: stack.keys, admission: stack.admission, admin: stack.admin, readiness: stack.readiness });
    try {
      const made = await fetch(`${keyed.url}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'saver' }) });
      const key = ((await made.json()) as { key: string }).key;
      const client = new OpenAI({ baseURL: `${keyed.url}/v1`, apiKey: key, maxRetries: 0 });

      // A miss, then a hit that saves what the miss cost.
      const ask = () => client.chat.completions.create({ model: 'echo@local', messages: [{ role: 'user', content: 'Count my savings' }] }).withResponse();
      const miss = await ask();
      const hit = await ask();
      expect([miss.response.headers.get('x-switchboard-cache'), hit.response.headers.get('x-switchboard-cache')]).toEqual(['miss', 'hit']);
      const hitSaved = miss.response.headers.get('x-switchboard-cost') as string;
      expect(hit.response.headers.get('x-switchboard-saved-cost')).toBe(hitSaved);

      // A long system prompt at Anthropic: the first request writes the prompt cache, the second
      // (no-cache: past the response cache) reads it. Sonnet 4.5: $3 per million input tokens,
      // writes $3.75, reads $0.30, so a written token saves -0.75e9 femto-dollars, a read one 2.7e9.
      const system = Array.from({ length: 1500 }, () => 'policy').join(' ');
      // The stand-in streams, as Anthropic does when asked to.
      const long = async (headers: Record<string, string> = {}) => {
        const stream = await client.chat.completions.create({ model: 'claude-sonnet-4-5@anthropic', max_tokens: 50, stream: true, messages: [{ role: 'system', content: system }, { role: 'user', content: 'Summarise the policy.' }] }, { headers });
        for await (const chunk of stream) void chunk;
      };
      await long();
      await long({ 'cache-control': 'no-cache' });
      const [written, read] = anthropicUp.usages.slice(-2);
      if (!written || !read) throw new Error('the Anthropic stand-in saw fewer than two requests');
      expect(written.cache_creation_input_tokens).toBeGreaterThan(0);
      expect(read.cache_read_input_tokens).toBe(written.cache_creation_input_tokens);
      const writeFemto = -750_000_000n * BigInt(written.cache_creation_input_tokens);
      const readFemto = 2_700_000_000n * BigInt(read.cache_read_input_tokens);
      const hitFemto = BigInt(Math.round(Number(hitSaved) * 1e15));

      // The ledger, through GET /admin/usage.
      const expected = { 'echo@local': hitFemto, 'claude-sonnet-4-5@anthropic': writeFemto + readFemto };
      let usage: { model: string; saved_femto: string; saved_cost: string }[] = [];
      for (let i = 0; i < 100; i++) {
        const res = await fetch(`${keyed.url}/admin/usage?by=model`, { headers: { authorization: `Bearer ${MASTER_KEY}` } });
        usage = ((await res.json()) as { data: typeof usage }).data;
        if (usage.length === 2 && usage.every((r) => r.saved_femto !== '0')) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(Object.fromEntries(usage.map((r) => [r.model, BigInt(r.saved_femto)]))).toEqual(expected);
      expect(usage.find((r) => r.model === 'echo@local')?.saved_cost).toBe(Number(hitSaved).toFixed(6));

      // The request log beside it, as `switchboard usage` reads it (the alias as the caller wrote it).
      await waitFor(() => keyed.accessLog.length >= 4);
      const log = new SQLiteConversationLog({ env: { SWITCHBOARD_HOME: dir } });
      let logged: Record<string, bigint | undefined> = {};
      for (let i = 0; i < 100 && Object.keys(logged).length < 2; i++) {
        logged = Object.fromEntries(log.usage({ by: 'model' }).map((r) => [r.key, r.savedFemto]));
        if (Object.keys(logged).length < 2) await new Promise((r) => setTimeout(r, 20));
      }
      log.close();
      expect(logged).toEqual(expected);

      // `switchboard usage --ledger`: JSON, CSV and the table's SAVED column.
      const cli = (...args: string[]) => runCLI(['usage', '--ledger', '--by', 'model', '-c', join(dir, 'gateway.yaml'), ...args], { env });
      const json = await cli('--json');
      expect(json.stderr).toBe('');
      const rows = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { model: string; saved_femto: string });
      expect(Object.fromEntries(rows.map((r) => [r.model, BigInt(r.saved_femto)]))).toEqual(expected);
      const csv = (await cli('--csv')).stdout.split('\n');
      expect(csv[0]).toContain('saved_cost,saved_femto');
      const table = (await cli()).stdout;
      expect(table.split('\n')[0]).toMatch(/COST\s+SAVED$/);
      expect(table).toContain(`$${Number(hitSaved).toFixed(6)}`);

      // /metrics: the cache's answers and the money, by source.
      const metrics = await (await fetch(`${keyed.url}/metrics`)).text();
      const value = (line: string) => Number(metrics.split('\n').find((l) => l.startsWith(`${line} `))?.slice(line.length + 1));
      expect(value('switchboard_response_cache_requests_total{result="hit"}')).toBe(1);
      expect(value('switchboard_response_cache_requests_total{result="miss"}')).toBe(3);
      expect(value('switchboard_cache_saved_usd_total{gen_ai_request_model="echo@local",source="response_cache"}')).toBeCloseTo(Number(hitSaved), 12);
      expect(value('switchboard_cache_saved_usd_total{gen_ai_request_model="claude-sonnet-4-5@anthropic",source="prompt_cache"}')).toBeCloseTo(Number(readFemto) / 1e15, 12);
      expect(value('switchboard_cache_extra_usd_total{gen_ai_request_model="claude-sonnet-4-5@anthropic",source="prompt_cache"}')).toBeCloseTo(Number(-writeFemto) / 1e15, 12);
    } finally {
      await keyed.close();
      await stack.close();
      await anthropicUp.close();
    }
  });
});
