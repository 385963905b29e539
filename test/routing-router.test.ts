import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, AuthenticationError, BadRequestError, RateLimitError, SwitchboardError } from '../src/errors.js';
import { Call } from '../src/call.js';
import { ProviderRegistry } from '../src/providers/registry.js';
import type { CandidateSource } from '../src/routing/candidates.js';
import { MemoryMetricsStore } from '../src/routing/metrics.js';
import { NoDeploymentError } from '../src/routing/no-deployment-error.js';
import { RoutingPolicy } from '../src/routing/policy.js';
import { CircuitBreakers } from '../src/routing/retry.js';
import { checkModelString } from '../src/routing/router.js';
import { runTurn, type TurnOptions } from '../src/turn.js';
import { resolveCache } from '../src/cache/response-cache.js';
import { MemoryCacheStore } from '../src/cache/store.js';
import type { StreamEvent, TurnResult } from '../src/types.js';

type Behaviour =
  | { status: number; headers?: Record<string, string>; body?: string }
  | { text: string[]; cutAfter?: number; upstream?: string }
  | { hang: true };

interface Stub {
  behaviours: Behaviour[];
  requests: { at: number; body: Record<string, unknown> }[];
}

const stubs = new Map<string, Stub>();
let server: Server;
let origin = '';

function chunk(res: ServerResponse, data: unknown): void {
  res.write(`data: ${JSON.stringify(data)}\n\n`);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const name = (req.url ?? '').split('/')[1] ?? '';
  let raw = '';
  req.on('data', (c: Buffer) => (raw += c.toString()));
  req.on('end', () => {
    const stub = stubs.get(name);
    if (!stub) {
      res.writeHead(404).end();
      return;
    }
    stub.requests.push({ at: Date.now(), body: JSON.parse(raw) as Record<string, unknown> });
    const b = stub.behaviours.length > 1 ? (stub.behaviours.shift() as Behaviour) : (stub.behaviours[0] as Behaviour);
    if ('hang' in b) return;
    if ('status' in b) {
      res.writeHead(b.status, { 'content-type': 'application/json', ...b.headers });
      res.end(b.body ?? JSON.stringify({ error: { message: `status ${b.status} from ${name}` } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const head: Record<string, unknown> = { id: 'x', model: 'm', choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] };
    if (b.upstream) head.provider = b.upstream;
    chunk(res, head);
    b.text.forEach((t, i) => {
      if (b.cutAfter !== undefined && i >= b.cutAfter) return;
      chunk(res, { choices: [{ index: 0, delta: { content: t } }] });
    });
    if (b.cutAfter !== undefined) {
      // Let the written chunks reach the client, then cut the connection.
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    chunk(res, { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    chunk(res, { choices: [], usage: { prompt_tokens: 5, completion_tokens: b.text.length, total_tokens: 5 + b.text.length } });
    res.end('data: [DONE]\n\n');
  });
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
});

let counter = 0;
/** Fresh providers on the local server with scripted behaviours (the last one repeats). */
function providers(spec: Record<string, Behaviour[]>): { registry: ProviderRegistry; names: Record<string, string>; stub: (k: string) => Stub } {
  const registry = new ProviderRegistry([]);
  const names: Record<string, string> = {};
  for (const [key, behaviours] of Object.entries(spec)) {
    const name = key === 'openrouter' ? 'openrouter' : `p${++counter}-${key}`;
    const path = key === 'openrouter' ? `or${++counter}` : name;
    stubs.set(path, { behaviours: [...behaviours], requests: [] });
    registry.register({ name, protocol: 'openai', baseURL: `${origin}/${path}/v1`, keyEnv: [] });
    names[key] = name;
    names[`path:${key}`] = path;
  }
  return { registry, names, stub: (k) => stubs.get(names[`path:${k}`] as string) as Stub };
}

const OK = (...text: string[]): Behaviour => ({ text });

function options(registry: ProviderRegistry, extra: Partial<TurnOptions> = {}): TurnOptions {
  return {
    registry,
    env: {},
    params: {},
    metrics: new MemoryMetricsStore(),
    policy: new RoutingPolicy(),
    breakers: new CircuitBreakers(),
    random: () => 0.5,
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
    ...extra,
  };
}

async function run(model: string, opts: TurnOptions): Promise<{ events: StreamEvent[]; result: TurnResult }> {
  const events: StreamEvent[] = [];
  let result: TurnResult | undefined;
  for await (const batch of runTurn(model, [{ role: 'user', content: 'hi' }], opts)) {
    for (const e of batch) {
      if (e.type === 'finish') result = e.result;
      else events.push(e);
    }
  }
  if (!result) throw new Error('no finish');
  return { events, result };
}

async function failure(model: string, opts: TurnOptions, events: StreamEvent[] = []): Promise<unknown> {
  try {
    for await (const batch of runTurn(model, [{ role: 'user', content: 'hi' }], opts)) events.push(...batch);
  } catch (err) {
    return err;
  }
  throw new Error('the turn succeeded');
}

const texts = (events: StreamEvent[]) => events.flatMap((e) => (e.type === 'text-delta' ? [e.text] : []));

describe('router end to end (local OpenAI-format servers)', () => {
  it('retries a 429, waiting at least its Retry-After', async () => {
    const { registry, names, stub } = providers({ a: [{ status: 429, headers: { 'retry-after-ms': '60' } }, OK('Hel', 'lo')] });
    const { events, result } = await run(`m@${names.a}`, options(registry));
    expect(texts(events)).toEqual(['Hel', 'lo']);
    expect(result.text).toBe('Hello');
    const reqs = stub('a').requests;
    expect(reqs).toHaveLength(2);
    expect((reqs[1]?.at ?? 0) - (reqs[0]?.at ?? 0)).toBeGreaterThanOrEqual(55);
  });

  it('retries a 500 and records the failure and the success', async () => {
    const { registry, names, stub } = providers({ a: [{ status: 500 }, OK('ok')] });
    const opts = options(registry);
    const { result } = await run(`m@${names.a}`, opts);
    expect(result.text).toBe('ok');
    expect(stub('a').requests).toHaveLength(2);
    const stats = opts.metrics?.snapshot(`m@${names.a}`);
    expect(stats?.errorsByCode).toEqual({ server: 1 });
    expect(stats?.successes).toBe(1);
    expect(stats?.ttftMs?.count).toBe(1);
    expect(stats?.tokensPerSecond?.count).toBe(1);
  });

  it('gives up after maxRetries', async () => {
    const { registry, names, stub } = providers({ a: [{ status: 503 }] });
    const err = await failure(`m@${names.a}`, options(registry, { retry: { maxRetries: 2, baseDelayMs: 1 } }));
    expect(err).toMatchObject({ code: 'server', status: 503 });
    expect(stub('a').requests).toHaveLength(3);
  });

  it('does not retry 400 or 401', async () => {
    const { registry, names, stub } = providers({ bad: [{ status: 400 }], auth: [{ status: 401 }] });
    expect(await failure(`m@${names.bad}`, options(registry))).toBeInstanceOf(BadRequestError);
    expect(await failure(`m@${names.auth}`, options(registry))).toBeInstanceOf(AuthenticationError);
    expect(stub('bad').requests).toHaveLength(1);
    expect(stub('auth').requests).toHaveLength(1);
  });

  it('a Retry-After beyond maxRetryAfterMs is not waited for', async () => {
    const { registry, names, stub } = providers({ a: [{ status: 429, headers: { 'retry-after': '3600' } }] });
    expect(await failure(`m@${names.a}`, options(registry))).toBeInstanceOf(RateLimitError);
    expect(stub('a').requests).toHaveLength(1);
  });

  it('falls back invisibly before the first token (server error, cut before content)', async () => {
    const { registry, names, stub } = providers({ down: [{ status: 500 }], cut: [{ text: ['never'], cutAfter: 0 }], up: [OK('from ', 'up')] });
    const { events, result } = await run(`m@${names.down}->${names.cut}->${names.up}`, options(registry));
    expect(texts(events)).toEqual(['from ', 'up']);
    expect(result.provider).toBe(names.up);
    expect(result.text).toBe('from up');
    expect(stub('down').requests).toHaveLength(1); // no retry before a fallback
    expect(stub('cut').requests).toHaveLength(1);
  });

  it('falls back to another model', async () => {
    const { registry, names, stub } = providers({ a: [{ status: 404 }], b: [OK('other')] });
    const { result } = await run(`m@${names.a}->other-model@${names.b}`, options(registry));
    expect(result.text).toBe('other');
    expect(stub('b').requests[0]?.body.model).toBe('other-model');
  });

  it('a failure after the first token ends the stream with a typed error, no fallback', async () => {
    const { registry, names, stub } = providers({ a: [{ text: ['Hel', 'lo', ' world'], cutAfter: 1 }], b: [OK('never')] });
    const events: StreamEvent[] = [];
    const err = await failure(`m@${names.a}->${names.b}`, options(registry), events);
    // The cut connection surfaces as the transport's typed error (retryable, but not after content).
    expect(err).toBeInstanceOf(SwitchboardError);
    expect(err).toMatchObject({ code: 'protocol', isRetryable: true });
    expect(texts(events.flat())).toEqual(['Hel']);
    expect(stub('b').requests).toHaveLength(0);
  });

  it('a reply read whole (send, run) falls back even after a failure midway, and the turn holds only the new reply', async () => {
    const { registry, names, stub } = providers({ a: [{ text: ['Hel', 'lo', ' world'], cutAfter: 1 }], b: [OK('from b')] });
    const { result } = await run(`m@${names.a}->${names.b}`, options(registry, { collected: true }));
    expect(result.text).toBe('from b');
    expect(result.provider).toBe(names.b);
    expect(stub('b').requests).toHaveLength(1);
  });

  it('the response cache stores only the answering attempt of a reply that fell back midway', async () => {
    const { registry, names, stub } = providers({ a: [{ text: ['Hel', 'lo', ' world'], cutAfter: 1 }], b: [OK('from', ' b')] });
    const cache = resolveCache({ store: new MemoryCacheStore() }, undefined);
    const model = `m@${names.a}->${names.b}`;
    const live = await run(model, options(registry, { collected: true, cache }));
    expect(live.result.text).toBe('from b');
    // Streamed this time: the hit's deltas spell the reply, without the failed attempt's 'Hel'.
    const hit = await run(model, options(registry, { cache }));
    expect(hit.result.cached).toBe(true);
    expect(texts(hit.events)).toEqual(['from', ' b']);
    expect(stub('b').requests).toHaveLength(1);
  });

  it('a circuit breaker cools a failing deployment down, then probes it once', async () => {
    let now = 1_000_000;
    const breakers = new CircuitBreakers({ failureThreshold: 2, cooldownMs: 5_000, now: () => now });
    const { registry, names, stub } = providers({ a: [{ status: 500 }], b: [OK('b')] });
    const opts = options(registry, { breakers });
    const model = `m@${names.a}->${names.b}`;
    for (let i = 0; i < 2; i++) expect((await run(model, opts)).result.provider).toBe(names.b);
    expect(stub('a').requests).toHaveLength(2);
    expect(breakers.state(`m@${names.a}`)).toBe('open');
    expect((await run(model, opts)).result.provider).toBe(names.b);
    expect(stub('a').requests).toHaveLength(2); // skipped while cooling

    // Alone, with onUnavailable 'fail', a cooling deployment fails fast with the reason.
    const alone = await failure(`m@${names.a}`, { ...opts, onUnavailable: 'fail' });
    expect(alone).toBeInstanceOf(NoDeploymentError);
    expect((alone as NoDeploymentError).message).toContain('cooling down');
    expect(stub('a').requests).toHaveLength(2);

    now += 5_000;
    expect(breakers.state(`m@${names.a}`)).toBe('half-open');
    stub('a').behaviours.splice(0, 1, OK('a is back'));
    expect((await run(model, opts)).result.text).toBe('a is back');
    expect(breakers.state(`m@${names.a}`)).toBe('closed');
    expect(stub('a').requests).toHaveLength(3);
  });

  it('waits for a cooling deployment when asked to', async () => {
    const breakers = new CircuitBreakers({ failureThreshold: 1, cooldownMs: 30 });
    const { registry, names, stub } = providers({ a: [{ status: 500 }, OK('back')] });
    const opts = options(registry, { breakers, retry: { maxRetries: 0 } });
    expect(await failure(`m@${names.a}`, opts)).toMatchObject({ code: 'server' });
    const { result } = await run(`m@${names.a}`, { ...opts, onUnavailable: 'wait' });
    expect(result.text).toBe('back');
    expect(stub('a').requests).toHaveLength(2);
  });

  it('abort stops a backoff sleep at once', async () => {
    const { registry, names, stub } = providers({ a: [{ status: 429, headers: { 'retry-after': '600' } }] });
    const controller = new AbortController();
    const pending = failure(`m@${names.a}`, options(registry, { signal: controller.signal, retry: { maxRetryAfterMs: 3_600_000 } }));
    while (stub('a').requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    expect(await pending).toBeInstanceOf(AbortError);
    expect(stub('a').requests).toHaveLength(1);
  });

  it('a wait that would pass the deadline is not started', async () => {
    const { registry, names } = providers({ a: [{ status: 429, headers: { 'retry-after': '600' } }] });
    const err = await failure(`m@${names.a}`, options(registry, { deadlineMs: 50, retry: { maxRetryAfterMs: 3_600_000 } }));
    expect(err).toMatchObject({ code: 'rate_limit' }); // the wait would pass the deadline: the last error
  });

  it('the deadline stops an attempt that hangs, and a per-attempt timeout moves on to the fallback', async () => {
    const { registry, names, stub } = providers({ a: [{ hang: true }], b: [OK('b')] });
    const err = await failure(`m@${names.a}`, options(registry, { deadlineMs: 50 }));
    expect(err).toMatchObject({ code: 'timeout' });
    expect((err as Error).message).toContain('deadline');
    const { result } = await run(`m@${names.a}->${names.b}`, options(registry, { attemptTimeoutMs: 50 }));
    expect(result.provider).toBe(names.b);
    expect(stub('a').requests).toHaveLength(2);
  });

  it('a mode picks among candidates by price and honours provider lists', async () => {
    const { registry, names, stub } = providers({ cheap: [OK('cheap')], dear: [OK('dear')] });
    const candidates: CandidateSource = {
      providersFor: (model) =>
        model === 'm'
          ? [
              { provider: names.dear as string, providerModel: 'm-dear', inputPrice: 1, outputPrice: 4 },
              { provider: names.cheap as string, providerModel: 'm-cheap', inputPrice: 0.1, outputPrice: 0.4 },
            ]
          : [],
    };
    const opts = options(registry, { candidates });
    expect((await run('m@lowest-cost', opts)).result.provider).toBe(names.cheap);
    expect(stub('cheap').requests[0]?.body.model).toBe('m-cheap');
    expect((await run(`m@c|skip_providers:${names.cheap}`, opts)).result.provider).toBe(names.dear);
    const none = await failure(`m@c|ic<0.01`, opts);
    expect(none).toBeInstanceOf(NoDeploymentError);
    expect((none as NoDeploymentError).candidates.map((c) => c.reason)).toEqual(['input-cost 1 fails input-cost<0.01', 'input-cost 0.1 fails input-cost<0.01']);
  });

  it('an unknown model in a mode goes through OpenRouter provider routing', async () => {
    const { registry, stub } = providers({ openrouter: [{ text: ['hi'], upstream: 'Groq' }] });
    const { result } = await run('meta-llama/llama-3.3-70b-instruct@tps|tps>=50|ttft<800|oc<=1|skip_providers:deepinfra', options(registry));
    expect(stub('openrouter').requests[0]?.body.provider).toEqual({
      sort: 'throughput',
      preferred_min_throughput: 50,
      preferred_max_latency: 0.8,
      max_price: { completion: 1 },
      ignore: ['deepinfra'],
    });
    expect(result.provider).toBe('openrouter/Groq');
  });

  it('Call passes routing options through and falls back', async () => {
    const { registry, names } = providers({ a: [{ status: 502 }], b: [OK('via ', 'b')] });
    const metrics = new MemoryMetricsStore();
    const call = new Call(`m@${names.a}->${names.b}`, { registry, env: {}, routing: { metrics, breakers: new CircuitBreakers() } });
    expect(await call.run('hi')).toBe('via b');
    expect(metrics.snapshot(`m@${names.a}`)?.errorsByCode).toEqual({ server: 1 });
    expect(metrics.snapshot(`m@${names.b}`)?.successes).toBe(1);
  });

  it('checkModelString validates providers and the grammar', () => {
    const { registry, names } = providers({ a: [OK('x')] });
    expect(() => checkModelString(`m@${names.a}->nope`, { registry, env: {} })).toThrow(/Unknown provider or mode "nope"/);
    expect(() => checkModelString('m@tps|tps>', { registry, env: {} })).toThrow(/expected a number/);
    expect(() => checkModelString(`m@${names.a}->other@${names.a}`, { registry, env: {} })).not.toThrow();
  });
});
