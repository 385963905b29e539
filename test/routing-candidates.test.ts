/**
 * Which deployments routing considers: hosts the catalog marks retired are left out of modes
 * (pinned, they are sent with a warning); a fallback whose first endpoint has no key moves
 * on (a lone pinned model still says which key to set); a model group's member at OpenRouter
 * brings the endpoints listing that gives the group its priors.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Call } from '../src/call.js';
import { catalogCandidates } from '../src/catalog/candidates.js';
import { Catalog, setDefaultCatalog } from '../src/catalog/catalog.js';
import { resetWarnings, setWarnHandler } from '../src/catalog/cost.js';
import { MissingKeyError } from '../src/errors.js';
import { createRegistry } from '../src/providers/config.js';
import { MemoryMetricsStore } from '../src/routing/metrics.js';
import { RoutingPolicy } from '../src/routing/policy.js';
import { PriorStore, refreshPriors } from '../src/routing/priors.js';
import { CircuitBreakers } from '../src/routing/retry.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { startStandIn, type StandIn } from './helpers/stand-in.js';

let hosts: StandIn;
let sim: RunningSimulator;
let home: string;

/** An OpenAI-format stream that says which host answered. */
function answer(host: string, res: ServerResponse): void {
  const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: extra.finish ?? null }], ...(extra.usage ? { usage: extra.usage } : {}) })}\n\n`;
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.end(chunk({ role: 'assistant', content: '' }) + chunk({ content: `from ${host}` }) + chunk({}, { finish: 'stop', usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } }) + 'data: [DONE]\n\n');
}

/** OpenRouter's endpoints listing for moonshotai/kimi-k2: one of its hosts is ours (host-a), three are not. */
const LISTING = {
  data: {
    id: 'moonshotai/kimi-k2',
    endpoints: [
      { provider_name: 'HostA', tag: 'host-a', throughput_last_30m: { p50: 50 }, latency_last_30m: { p50: 0.9 }, uptime_last_5m: 100 },
      { provider_name: 'Groq', tag: 'groq', throughput_last_30m: { p50: 400 }, latency_last_30m: { p50: 0.2 }, uptime_last_5m: 100 },
      { provider_name: 'Together', tag: 'together', throughput_last_30m: { p50: 300 }, latency_last_30m: { p50: 0.4 }, uptime_last_5m: 99 },
      { provider_name: 'DeepInfra', tag: 'deepinfra/fp8', throughput_last_30m: { p50: 200 }, latency_last_30m: { p50: 0.5 }, uptime_last_5m: 98 },
    ],
  },
};

beforeAll(async () => {
  hosts = await startStandIn((req, res) => {
    if (req.url.endsWith('/endpoints')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(LISTING));
      return;
    }
    answer(req.url.split('/')[1] ?? '', res);
  });
  sim = await startSimulator({ port: 0, timeScale: 0 });
  home = mkdtempSync(join(tmpdir(), 'sb-candidates-'));
  writeFileSync(
    join(home, 'config.json'),
    JSON.stringify({
      providers: ['host-a', 'host-b'].map((name) => ({ name, protocol: 'openai', baseURL: `${hosts.url}/${name}/v1`, local: true })),
      models: { kimi: [{ provider: 'host-a', model: 'kimi-a' }, { provider: 'openrouter', model: 'moonshotai/kimi-k2' }] },
    }),
  );
});
afterAll(async () => {
  await hosts.close();
  await sim.close();
  rmSync(home, { recursive: true, force: true });
});
afterEach(() => {
  setDefaultCatalog(undefined);
  setWarnHandler(undefined);
  resetWarnings();
});

function routing() {
  return { metrics: new MemoryMetricsStore(), policy: new RoutingPolicy(), breakers: new CircuitBreakers(), priors: new PriorStore({ path: null }) };
}

const registry = () => createRegistry(join(home, 'no-such-dir'), { SWITCHBOARD_HOME: home });

async function providerOf(call: Call, model: string): Promise<string | undefined> {
  await call.run('hi');
  return call.lastResults[model]?.provider;
}

describe('retired deployments', () => {
  // host-a is the cheaper host, but the catalog says it no longer serves the model.
  const catalog = () =>
    new Catalog({
      source: { test: '1' },
      generatedAt: '2026-12-01',
      models: [
        {
          id: 'acme/tiny',
          name: 'Tiny',
          pricing: { input: 1, output: 2 },
          providers: [
            { provider: 'host-a', model: 'tiny', pricing: { input: 0.1, output: 0.2 }, status: 'retired' },
            { provider: 'host-b', model: 'tiny' },
          ],
        },
      ],
    });

  it('a mode leaves a retired host out of its candidates', async () => {
    setDefaultCatalog(catalog());
    const reg = registry();
    const candidates = { providersFor: (m: string) => catalogCandidates(m, reg, {}) ?? [] };
    expect(candidates.providersFor('acme/tiny').map((c) => c.provider)).toEqual(['host-b']);
    const model = 'acme/tiny@lowest-cost';
    const call = new Call(model, { registry: reg, env: {}, routing: { ...routing(), candidates } });
    expect(await providerOf(call, model)).toBe('host-b');
  });

  it('pinned to a retired host: sent as asked, with one warning that says so', async () => {
    setDefaultCatalog(catalog());
    const warnings: string[] = [];
    setWarnHandler((m) => warnings.push(m));
    const model = 'acme/tiny@host-a';
    const call = new Call(model, { registry: registry(), env: {}, routing: routing() });
    expect(await providerOf(call, model)).toBe('host-a');
    await call.run('again');
    expect(warnings.filter((w) => w.includes('retired'))).toEqual(['the catalog marks acme/tiny at host-a as retired; sending it as pinned. `switchboard models acme/tiny` lists who still serves it.']);
  });
});

describe('a fallback chain whose first endpoint has no key', () => {
  const env = () => ({ SWITCHBOARD_SIM_URL: sim.url });

  it('moves on to the next endpoint instead of throwing', async () => {
    const model = 'openai/gpt-4o-mini->sim/llama';
    const call = new Call(model, { env: env(), routing: routing() });
    await call.run('hi');
    expect(Object.values(call.lastResults)[0]?.provider).toBe('sim-fast');
  });

  it('a single pinned model with no key still says which variable to set', async () => {
    const call = new Call('gpt-4o-mini@openai', { env: env(), routing: routing() });
    const error = await call.run('hi').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MissingKeyError);
    expect((error as MissingKeyError).message).toContain('set the OPENAI_API_KEY environment variable');
    // Unpinned, a vendor's model goes through OpenRouter without the vendor's key: that key is named.
    const viaOpenRouter = await new Call('openai/gpt-4o-mini', { env: env(), routing: routing() }).run('hi').catch((e: unknown) => e);
    expect((viaOpenRouter as MissingKeyError).envVar).toBe('OPENROUTER_API_KEY');
  });

  it('with no key anywhere, the first missing key is the error', async () => {
    const call = new Call('gpt-4o-mini@openai->claude-sonnet-4@anthropic', { env: env(), routing: routing() });
    const error = await call.run('hi').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MissingKeyError);
    expect((error as MissingKeyError).envVar).toBe('OPENAI_API_KEY');
  });
});

describe('a model group with a member at OpenRouter', () => {
  it("gets priors from that member's endpoints listing: OpenRouter unpinned counts at its hosts' median", async () => {
    const state = routing();
    const reg = registry();
    expect(await refreshPriors(state.priors, ['moonshotai/kimi-k2'], { registry: reg, apiBase: `${hosts.url}/api/v1` })).toBe(1);
    const env = { OPENROUTER_API_KEY: 'sk-or-test', OPENROUTER_BASE_URL: `${hosts.url}/openrouter/api/v1` };
    // host-a publishes 50 tokens/s; OpenRouter's hosts' median is 250: the first request goes to OpenRouter.
    const model = 'kimi@tps';
    const call = new Call(model, { registry: reg, env, routing: state });
    expect(await providerOf(call, model)).toMatch(/^openrouter/);
    // By first-token time the order is the same (0.45 s median against 0.9 s).
    const ttft = 'kimi@ttft';
    const second = new Call(ttft, { registry: reg, env, routing: { ...routing(), priors: state.priors } });
    expect(await providerOf(second, ttft)).toMatch(/^openrouter/);
  });
});
