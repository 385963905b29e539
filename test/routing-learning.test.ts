/**
 * Routing that learns: priors from the simulator's endpoints listing, change detection,
 * honest measurements, model groups from the config file, breakers that spare the only
 * deployment, and the metrics store's home. Speeds come from the providers' own timing
 * (a llama.cpp-style stand-in reporting `timings`) or from the listing, so the scenarios do
 * not depend on how busy the machine is.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Call } from '../src/call.js';
import { setWarnHandler } from '../src/catalog/cost.js';
import { ConfigError, ServerError } from '../src/errors.js';
import { image } from '../src/input.js';
import { createRegistry, parseConfig } from '../src/providers/config.js';
import type { ProviderRegistry } from '../src/providers/registry.js';
import { MemoryMetricsStore } from '../src/routing/metrics.js';
import { RoutingPolicy } from '../src/routing/policy.js';
import { parseEndpointsListing, PriorStore, refreshPriors } from '../src/routing/priors.js';
import { CircuitBreakers } from '../src/routing/retry.js';
import { defaultMetricsStore } from '../src/routing/router.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { DeferredMetricsStore } from '../src/store/sqlite-metrics.js';
import { runCLI } from './helpers/cli.js';
import { startStandIn, type StandIn } from './helpers/stand-in.js';

/** What each llama.cpp-style server does: its speed (reported in `timings`), or a one-read reply after a delay. */
interface ServerBehaviour {
  tps: number;
  /** Answer the whole stream in one write after this many ms, without `timings`. */
  oneReadAfterMs?: number;
  /** Wait this long before the first byte. */
  stallMs?: number;
}

const behaviours = new Map<string, ServerBehaviour>();
let llama: StandIn;
let home: string;

function chunk(res: ServerResponse, data: unknown): void {
  res.write(`data: ${JSON.stringify(data)}\n\n`);
}

/** llama.cpp's OpenAI-compatible stream: content deltas, then finish with usage and `timings`. */
async function llamaServer(name: string, body: string, res: ServerResponse): Promise<void> {
  const b = behaviours.get(name) ?? { tps: 50 };
  // An image to a text-only model: llama.cpp refuses that request with a 500, every time.
  if (body.includes('image_url')) {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 500, message: 'image input is not supported by this model', type: 'server_error' } }));
    return;
  }
  if (b.stallMs) await new Promise((r) => setTimeout(r, b.stallMs));
  if (res.destroyed) return;
  const words = ['Hello', ' from', ` ${name}`, ',', ' here', ' are', ' some', ' words', ' for', ' you', '.'];
  const id = 'chatcmpl-1';
  const frames = [
    { id, object: 'chat.completion.chunk', created: 1, model: 'tiny', choices: [{ index: 0, delta: { role: 'assistant', content: null } }] },
    ...words.map((w) => ({ id, object: 'chat.completion.chunk', created: 1, model: 'tiny', choices: [{ index: 0, delta: { content: w } }] })),
  ];
  const last: Record<string, unknown> = {
    id,
    object: 'chat.completion.chunk',
    created: 1,
    model: 'tiny',
    choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: words.length, total_tokens: 5 + words.length },
  };
  if (b.oneReadAfterMs === undefined) {
    last.timings = { prompt_n: 5, prompt_ms: 4, predicted_n: words.length, predicted_ms: (words.length / b.tps) * 1000, predicted_per_second: b.tps };
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  if (b.oneReadAfterMs !== undefined) {
    await new Promise((r) => setTimeout(r, b.oneReadAfterMs));
    res.end([...frames, last].map((f) => `data: ${JSON.stringify(f)}\n\n`).join('') + 'data: [DONE]\n\n');
    return;
  }
  for (const f of frames) chunk(res, f);
  chunk(res, last);
  res.end('data: [DONE]\n\n');
}

beforeAll(async () => {
  llama = await startStandIn((req, res) => llamaServer(req.url.split('/')[1] ?? '', req.body, res));
  home = mkdtempSync(join(tmpdir(), 'sb-routing-'));
  writeFileSync(
    join(home, 'config.json'),
    JSON.stringify({
      providers: ['gpu-a', 'gpu-b', 'gpu-c'].map((name) => ({ name, protocol: 'openai', baseURL: `${llama.url}/${name}/v1`, local: true })),
      models: { tiny: ['gpu-a', { provider: 'gpu-b', model: 'tiny-q8' }, 'gpu-c'] },
    }),
  );
});
afterAll(async () => {
  await llama.close();
  rmSync(home, { recursive: true, force: true });
});

function fresh() {
  return { metrics: new MemoryMetricsStore(), policy: new RoutingPolicy(), breakers: new CircuitBreakers(), priors: new PriorStore({ path: null }) };
}

function registry(): ProviderRegistry {
  return createRegistry(join(home, 'no-such-dir'), { SWITCHBOARD_HOME: home });
}

async function ask(call: Call, model: string): Promise<string> {
  await call.run('Say something.');
  return call.lastResults[model]?.provider ?? 'none';
}

describe('model groups from the config file', () => {
  it('routes between two local deployments of one model by measured speed; local costs 0 with no warning', async () => {
    behaviours.set('gpu-a', { tps: 40 });
    behaviours.set('gpu-b', { tps: 400 });
    behaviours.set('gpu-c', { tps: 60 });
    const warnings: string[] = [];
    const previous = setWarnHandler((m) => warnings.push(m));
    try {
      const model = 'tiny@highest-tks-per-sec|providers:gpu-a,gpu-b';
      const call = new Call(model, { registry: registry(), env: {}, routing: fresh() });
      const picks: string[] = [];
      for (let i = 0; i < 20; i++) picks.push(await ask(call, model));
      expect(new Set(picks)).toEqual(new Set(['gpu-a', 'gpu-b'])); // gpu-c is not among the providers
      expect(picks.slice(4).filter((p) => p === 'gpu-b').length).toBeGreaterThanOrEqual(15);
      expect(call.lastResults[model]?.usage.cost).toBe(0);
      // The member's own id for the model went to the server.
      expect(llama.requests.some((r) => r.url.startsWith('/gpu-b/') && JSON.parse(r.body).model === 'tiny-q8')).toBe(true);
      expect(warnings).toEqual([]);
    } finally {
      setWarnHandler(previous);
    }
  });

  it('works from the CLI: a mode with providers: on a group needs no OpenRouter key', async () => {
    behaviours.set('gpu-a', { tps: 40 });
    behaviours.set('gpu-b', { tps: 400 });
    const out = await runCLI(['ask', '--json', '-m', 'tiny@tps|providers:gpu-a,gpu-b', 'hello'], { env: { SWITCHBOARD_HOME: home } });
    expect(out.stderr).not.toContain('OPENROUTER');
    expect(out.status).toBe(0);
    const line = JSON.parse(out.stdout.trim().split('\n')[0] ?? '{}') as { provider?: string; cost?: number };
    expect(['gpu-a', 'gpu-b']).toContain(line.provider);
    expect(line.cost).toBe(0);
  });

  it('a bare group name tries its members in order', async () => {
    const call = new Call('tiny', { registry: registry(), env: {}, routing: fresh() });
    expect(await ask(call, 'tiny')).toBe('gpu-a');
  });

  it('rejects a group naming an unknown provider, and malformed members, with the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-config-'));
    writeFileSync(join(dir, 'switchboard.config.json'), JSON.stringify({ models: { tiny: ['nowhere'] } }));
    expect(() => createRegistry(dir, {})).toThrow(/models\["tiny"\] names provider "nowhere"/);
    rmSync(dir, { recursive: true, force: true });
    expect(() => parseConfig({ models: { tiny: [] } }, 'f.json')).toThrow(ConfigError);
    expect(() => parseConfig({ models: { tiny: [{ provider: 'a', price: 1 }] } }, 'f.json')).toThrow(/models\["tiny"\]\[0\]\.price is not a known field/);
    expect(() => parseConfig({ providers: [{ name: 'x', protocol: 'openai', baseURL: 'http://h', local: 'yes' }] }, 'f.json')).toThrow(/local must be true or false/);
  });
});

describe('change detection (speeds from the servers own timing)', () => {
  it('abandons a deployment that slows down 5x within 5 requests, and finds it again once it recovers', async () => {
    behaviours.set('gpu-a', { tps: 300 });
    behaviours.set('gpu-b', { tps: 150 });
    behaviours.set('gpu-c', { tps: 100 });
    const model = 'tiny@tps';
    const call = new Call(model, { registry: registry(), env: {}, routing: fresh() });
    for (let i = 0; i < 30; i++) await ask(call, model);
    expect(await ask(call, model)).toBe('gpu-a');

    behaviours.set('gpu-a', { tps: 60 });
    const after: string[] = [];
    for (let i = 0; i < 5; i++) after.push(await ask(call, model));
    const left = after.findIndex((p) => p !== 'gpu-a');
    expect(left).toBeGreaterThanOrEqual(0);
    expect(left).toBeLessThan(5);
    expect(after.slice(left).filter((p) => p === 'gpu-a').length).toBeLessThanOrEqual(1);
    for (let i = 0; i < 10; i++) await ask(call, model);
    expect(await ask(call, model)).toBe('gpu-b');

    behaviours.set('gpu-a', { tps: 300 });
    let back = -1;
    for (let i = 0; i < 300 && back < 0; i++) if ((await ask(call, model)) === 'gpu-a') back = i;
    expect(back).toBeGreaterThanOrEqual(0);
    const settled: string[] = [];
    for (let i = 0; i < 10; i++) settled.push(await ask(call, model));
    expect(settled.filter((p) => p === 'gpu-a').length).toBeGreaterThanOrEqual(9);
  });
});

describe('honest measurements', () => {
  it("uses the server's own timing when it reports one", async () => {
    behaviours.set('gpu-a', { tps: 123 });
    const routing = fresh();
    const call = new Call('tiny@gpu-a|tps>1', { registry: registry(), env: {}, routing });
    await call.run('hi');
    expect(routing.metrics.snapshot('tiny@gpu-a')?.tokensPerSecond?.p50).toBe(123);
  });

  it('a reply that arrives in one read is measured from the request: within 2x of the real speed', async () => {
    // 11 tokens generated over 220 ms: 50 tokens/s. Measured from the first byte it would be
    // thousands of tokens per second.
    behaviours.set('gpu-a', { tps: 50, oneReadAfterMs: 220 });
    const routing = fresh();
    const call = new Call('tiny@gpu-a|tps>1', { registry: registry(), env: {}, routing });
    await call.run('hi');
    const tps = routing.metrics.snapshot('tiny@gpu-a')?.tokensPerSecond?.p50 ?? 0;
    expect(tps).toBeGreaterThan(25);
    expect(tps).toBeLessThan(100);
  });

  it('an aborted request, a reply the caller stopped reading and a timeout the caller chose below p90 leave the stats unchanged', async () => {
    behaviours.set('gpu-a', { tps: 200 });
    const routing = fresh();
    const model = 'tiny@gpu-a|tps>1';
    const call = new Call(model, { registry: registry(), env: {}, routing });
    for (let i = 0; i < 3; i++) await call.run('hi');
    const before = routing.metrics.snapshot('tiny@gpu-a');
    expect(before?.attempts).toBe(3);

    behaviours.set('gpu-a', { tps: 200, stallMs: 300 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    await expect(call.run('hi', { signal: controller.signal })).rejects.toMatchObject({ code: 'aborted' });
    // The caller's own 30 ms limit, far below what this server usually takes (p90 of the three above is a few ms, so it is not far below: use a slow history).
    const slow = new Call(model, { registry: registry(), env: {}, routing, timeout: 30 });
    routing.metrics.record('tiny@gpu-a', { at: Date.now(), ok: true, latencyMs: 400, tokensPerSecond: 200 });
    const withSlow = routing.metrics.snapshot('tiny@gpu-a');
    await expect(slow.run('hi')).rejects.toMatchObject({ code: 'timeout' });
    expect(routing.metrics.snapshot('tiny@gpu-a')).toEqual(withSlow);

    behaviours.set('gpu-a', { tps: 200 });
    for await (const part of call.stream('hi')) {
      void part;
      break;
    }
    expect(routing.metrics.snapshot('tiny@gpu-a')).toEqual(withSlow);
  });
});

describe('priors from the endpoints listing', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ port: 0, timeScale: 0 });
  });
  afterAll(() => sim.close());

  it('the simulator publishes OpenRouter-shaped listings with its live profiles', async () => {
    sim.setProviderProfile('sim-cheap', { tokensPerSecond: 999, failRate: 0.1 });
    const res = await fetch(`${sim.url}/api/v1/models/sim/llama/endpoints`);
    expect(res.status).toBe(200);
    const json = (await res.json()) as { data: { id: string; endpoints: Record<string, unknown>[] } };
    expect(json.data.id).toBe('sim/llama');
    const cheap = json.data.endpoints.find((e) => e.tag === 'sim-cheap');
    expect(cheap).toMatchObject({ provider_name: 'sim-cheap', throughput_last_30m: { p50: 999 }, uptime_last_5m: 90 });
    expect(parseEndpointsListing(json, 5, (tag) => tag)['sim-cheap']).toEqual({ tokensPerSecond: 999, ttftMs: 600, uptime: 0.9, fetchedAt: 5 });
    expect((await fetch(`${sim.url}/api/v1/models/sim/nothing/endpoints`)).status).toBe(404);
    sim.resetProfiles();
  });

  it('reads OpenRouter listings leniently: unknown providers and malformed figures are left out', () => {
    const listing = {
      data: {
        endpoints: [
          { provider_name: 'Groq', tag: 'groq', latency_last_30m: { p50: 0.2 }, throughput_last_30m: { p50: 500 }, uptime_last_30m: 99 },
          { provider_name: 'DeepInfra', tag: 'deepinfra/fp8', latency_last_30m: null, throughput_last_30m: { p50: 'fast' } },
          { provider_name: 'Nobody', tag: 'nobody' },
          null,
        ],
      },
    };
    const known = new Map([['groq', 'groq'], ['deepinfra', 'deepinfra']]);
    expect(parseEndpointsListing(listing, 1, (tag) => known.get(tag.split('/')[0] ?? ''))).toEqual({ groq: { tokensPerSecond: 500, ttftMs: 200, uptime: 0.99, fetchedAt: 1 } });
    expect(parseEndpointsListing({ data: null }, 1, () => 'x')).toEqual({});
  });

  it('refreshPriors fetches OpenRouter listings, maps hosts to our providers and caches them with their age', async () => {
    const openrouter = await startStandIn((req, res) => {
      const ok = req.url === '/api/v1/models/meta-llama/llama-3.3-70b-instruct/endpoints';
      res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          ok
            ? { data: { id: 'meta-llama/llama-3.3-70b-instruct', endpoints: [{ provider_name: 'Groq', tag: 'groq', throughput_last_30m: { p50: 310 }, latency_last_30m: { p50: 0.25 }, uptime_last_5m: 100 }] } }
            : { error: { code: 404, message: 'Not found' } },
        ),
      );
    });
    const dir = mkdtempSync(join(tmpdir(), 'sb-priors-'));
    try {
      const path = join(dir, 'priors.json');
      const store = new PriorStore({ path, now: () => 42 });
      const fetched = await refreshPriors(store, ['meta-llama/llama-3.3-70b-instruct', 'nobody/nothing'], { registry: registry(), apiBase: `${openrouter.url}/api/v1` });
      expect(fetched).toBe(1);
      const again = new PriorStore({ path });
      expect(again.get('meta-llama/llama-3.3-70b-instruct')?.providers).toEqual({ groq: { tokensPerSecond: 310, ttftMs: 250, uptime: 1, fetchedAt: 42 } });
      expect(again.get('nobody/nothing')).toBeUndefined();
    } finally {
      await openrouter.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a fresh install picks the published fastest on its first request, by speed and by first-token time', async () => {
    sim.setProviderProfile('sim-anthropic', { tokensPerSecond: 900 });
    sim.setProviderProfile('sim-cheap', { ttftMs: 20 });
    try {
      const env = { SWITCHBOARD_SIM_URL: sim.url };
      const tps = 'sim/llama@highest-tks-per-sec';
      const first = new Call(tps, { env, routing: fresh() });
      await first.run('hi');
      expect(first.lastResults[tps]?.provider).toBe('sim-anthropic');
      const ttft = 'sim/llama@lowest-ttft';
      const second = new Call(ttft, { env, routing: fresh() });
      await second.run('hi');
      expect(second.lastResults[ttft]?.provider).toBe('sim-cheap');
    } finally {
      sim.resetProfiles();
    }
  });
});

describe('breakers and request-caused failures', () => {
  it('one provider failing 30% of the time, alone: nearly all of 1,000 calls succeed', async () => {
    const flaky = await startSimulator({ port: 0, timeScale: 0, failRate: 0.3, seed: 3 });
    try {
      const model = 'sim/llama@sim-flaky';
      const call = new Call(model, { env: { SWITCHBOARD_SIM_URL: flaky.url }, routing: { ...fresh(), retry: { baseDelayMs: 1, maxDelayMs: 2 } } });
      let ok = 0;
      for (let i = 0; i < 1000; i++) {
        try {
          await call.run('hi');
          ok++;
        } catch {
          // counted below
        }
      }
      expect(ok).toBeGreaterThanOrEqual(950);
    } finally {
      await flaky.close();
    }
    // 1,000 calls and their retries: about 20 s on a machine shared with others.
  }, 60_000);

  it('a request the server always refuses (an image to a text-only model) does not cut off valid requests', async () => {
    behaviours.set('gpu-a', { tps: 100 });
    const routing = fresh();
    const model = 'tiny@gpu-a';
    const call = new Call(model, { registry: registry(), env: {}, routing: { ...routing, retry: { baseDelayMs: 1, maxDelayMs: 2 } } });
    await call.run('hello');
    const picture = image(Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64'));
    // Each refusal is retried and fails the same way: the request's own fault, not counted.
    for (let i = 0; i < 3; i++) {
      await expect(call.run(['What is this?', picture])).rejects.toBeInstanceOf(ServerError);
      expect(routing.breakers.state('tiny@gpu-a')).toBe('closed');
      await call.run('hello');
      expect(call.lastResults[model]?.provider).toBe('gpu-a');
    }
    // Refused again and again with nothing in between: the breaker may open, but a valid
    // request still reaches the only deployment it has.
    for (let i = 0; i < 5; i++) await expect(call.run(['What is this?', picture])).rejects.toBeInstanceOf(ServerError);
    await call.run('hello');
    expect(call.lastResults[model]?.provider).toBe('gpu-a');
    expect(routing.breakers.state('tiny@gpu-a')).toBe('closed');
  });

  it('an open breaker does not cut off the only deployment: it is tried anyway', async () => {
    behaviours.set('gpu-a', { tps: 100 });
    const breakers = new CircuitBreakers({ failureThreshold: 1, cooldownMs: 60_000 });
    breakers.failure('tiny@gpu-a');
    expect(breakers.state('tiny@gpu-a')).toBe('open');
    const model = 'tiny@gpu-a';
    const call = new Call(model, { registry: registry(), env: {}, routing: { ...fresh(), breakers } });
    await call.run('hello');
    expect(call.lastResults[model]?.provider).toBe('gpu-a');
    expect(breakers.state('tiny@gpu-a')).toBe('closed');
  });
});

describe('where measurements live', () => {
  it("an env option without SWITCHBOARD_HOME keeps the metrics in the process's SWITCHBOARD_HOME", () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-home-'));
    const saved = { home: process.env.SWITCHBOARD_HOME, metrics: process.env.SWITCHBOARD_METRICS };
    process.env.SWITCHBOARD_HOME = dir;
    delete process.env.SWITCHBOARD_METRICS;
    try {
      const store = defaultMetricsStore({ OPENAI_API_KEY: 'sk-test' });
      expect(store).toBeInstanceOf(DeferredMetricsStore);
      store.record('m@p', { at: Date.now(), ok: true, tokensPerSecond: 10 });
      expect(store.snapshot('m@p')?.attempts).toBe(1);
      store.close?.();
      expect(existsSync(join(dir, 'metrics.db'))).toBe(true);
      // An env that names its own home gets its own store.
      const other = join(dir, 'other');
      mkdirSync(other);
      expect(defaultMetricsStore({ SWITCHBOARD_HOME: other })).not.toBe(store);
    } finally {
      if (saved.home === undefined) delete process.env.SWITCHBOARD_HOME;
      else process.env.SWITCHBOARD_HOME = saved.home;
      if (saved.metrics !== undefined) process.env.SWITCHBOARD_METRICS = saved.metrics;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
