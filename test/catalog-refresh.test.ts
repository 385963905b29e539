import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { setDefaultCatalog } from '../src/catalog/catalog.js';
import { priceFor } from '../src/catalog/cost.js';
import { listModels, perTokenToPerMillion } from '../src/catalog/refresh.js';

/** OpenRouter's GET /api/v1/models, in its documented shape: prices are strings, dollars per token. */
const OPENROUTER_BODY = {
  data: [
    {
      id: 'openai/gpt-4o-mini',
      name: 'OpenAI: GPT-4o-mini',
      context_length: 128000,
      pricing: { prompt: '0.00000015', completion: '0.0000006', request: '0', image: '0.000217', input_cache_read: '0.000000075', web_search: '0' },
      architecture: { input_modalities: ['text', 'image', 'file'], output_modalities: ['text'] },
      supported_parameters: ['max_tokens', 'temperature', 'tools', 'tool_choice', 'response_format', 'structured_outputs'],
      top_provider: { context_length: 128000, max_completion_tokens: 16384, is_moderated: true },
    },
    {
      id: 'newvendor/brand-new-model',
      name: 'New Vendor: Brand New',
      context_length: 65536,
      pricing: { prompt: '0.0000002', completion: '0.0000008', input_cache_read: '0.00000005', input_cache_write: '0.00000025' },
      architecture: { input_modalities: ['text'], output_modalities: ['text'] },
      supported_parameters: ['reasoning', 'include_reasoning'],
      top_provider: { context_length: 65536, max_completion_tokens: 8192 },
    },
    {
      id: 'openrouter/auto',
      name: 'Auto Router',
      context_length: 2000000,
      pricing: { prompt: '-1', completion: '-1' },
      architecture: { input_modalities: ['text'], output_modalities: ['text'] },
      supported_parameters: [],
      top_provider: { context_length: null, max_completion_tokens: null },
    },
  ],
};

let status = 200;
let requests: string[] = [];
let server: Server;
let baseURL = '';
let home = '';

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
    if (status !== 200) {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'Internal Server Error', code: status } }));
      return;
    }
    if (req.url === '/api/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(OPENROUTER_BODY));
    } else if (req.url === '/local/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model' }, { id: 'my-finetune', object: 'model' }] }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(async () => {
  status = 200;
  requests = [];
  home = await mkdtemp(join(tmpdir(), 'switchboard-refresh-'));
});
afterEach(async () => {
  setDefaultCatalog(undefined);
  await rm(home, { recursive: true, force: true });
});

function env(url = `${baseURL}/api/v1`): Record<string, string> {
  return { SWITCHBOARD_HOME: home, OPENROUTER_BASE_URL: url, OPENROUTER_API_KEY: 'sk-or-test-key-123456' };
}

/** A port nothing listens on: bind one, note it, close it. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('perTokenToPerMillion', () => {
  it('moves the decimal point in the text', () => {
    expect(perTokenToPerMillion('0.00000015')).toBe(0.15);
    expect(perTokenToPerMillion('0.0000006')).toBe(0.6);
    expect(perTokenToPerMillion('0.000003')).toBe(3);
    expect(perTokenToPerMillion('0.0000000375')).toBe(0.0375);
    expect(perTokenToPerMillion('1.5e-7')).toBe(0.15);
    expect(perTokenToPerMillion('0')).toBe(0);
  });
  it('rejects negative, empty and non-finite prices', () => {
    expect(perTokenToPerMillion('-1')).toBeUndefined();
    expect(perTokenToPerMillion('')).toBeUndefined();
    expect(perTokenToPerMillion('NaN')).toBeUndefined();
    expect(perTokenToPerMillion('Infinity')).toBeUndefined();
    expect(perTokenToPerMillion(undefined)).toBeUndefined();
  });
});

describe('listModels against a stand-in for OpenRouter', () => {
  it('fetches, converts per-token prices, merges, caches, and installs the catalog', async () => {
    const result = await listModels({
      refresh: true,
      env: env(),
      providers: [{ provider: 'local', baseURL: `${baseURL}/local/v1` }],
    });
    expect(result.source).toBe('live');
    expect(result.warning).toBeUndefined();
    expect(requests).toContain('GET /api/v1/models Bearer sk-or-test-key-123456');
    expect(requests).toContain('GET /local/v1/models ');

    const mini = result.catalog.get('openai/gpt-4o-mini');
    expect(mini?.providers.find((p) => p.provider === 'openrouter')).toBeDefined();
    expect(result.catalog.priceFor('openai/gpt-4o-mini', 'openrouter')).toMatchObject({ input: 0.15, output: 0.6, cacheRead: 0.075, image: 0.000217 });
    expect(mini?.capabilities).toMatchObject({ tools: true, structuredOutput: true });

    const fresh = result.catalog.get('newvendor/brand-new-model');
    expect(fresh).toMatchObject({
      contextLength: 65536,
      maxOutput: 8192,
      pricing: { input: 0.2, output: 0.8, cacheRead: 0.05, cacheWrite: 0.25 },
      capabilities: { tools: false, structuredOutput: false, reasoning: true },
    });
    // "-1" marks a variable price: dropped, the model kept.
    const auto = result.catalog.get('openrouter/auto');
    expect(auto).toBeDefined();
    expect(auto?.pricing).toBeUndefined();

    // The local server's ids: a known model gains that provider (price unknown there); a new one is added.
    expect(result.catalog.atProvider('local', 'gpt-4o-mini')?.model.id).toBe('openai/gpt-4o-mini');
    expect(result.catalog.priceFor('gpt-4o-mini', 'local')).toEqual({});
    expect(result.catalog.get('local/my-finetune')?.providers).toEqual([{ provider: 'local', model: 'my-finetune' }]);

    // Installed as the default catalog for prices.
    expect(priceFor('newvendor/brand-new-model')?.input).toBe(0.2);

    const cached = JSON.parse(await readFile(join(home, 'cache', 'models.json'), 'utf8')) as { fetchedAt: string; openrouter: unknown[] };
    expect(cached.openrouter).toHaveLength(3);
    expect(cached.fetchedAt).toBe(result.fetchedAt);
  });

  it('a 500 falls back to the cache, and says so', async () => {
    await listModels({ refresh: true, env: env() });
    status = 500;
    const result = await listModels({ refresh: true, env: env() });
    expect(result.source).toBe('cache');
    expect(result.warning).toContain('answered 500');
    expect(result.warning).toContain('using the cached list');
    expect(result.catalog.get('newvendor/brand-new-model')?.pricing?.input).toBe(0.2);
  });

  it('a 500 with no cache falls back to the snapshot, and says so', async () => {
    status = 500;
    const result = await listModels({ refresh: true, env: env() });
    expect(result.source).toBe('snapshot');
    expect(result.warning).toContain('answered 500');
    expect(result.warning).toContain('built-in snapshot');
    expect(result.catalog.get('newvendor/brand-new-model')).toBeUndefined();
    expect(result.catalog.priceFor('gpt-4o-mini')).toMatchObject({ input: 0.15, output: 0.6 });
  });

  it('connection refused falls back to the cache, then to the snapshot', async () => {
    await listModels({ refresh: true, env: env() });
    const refused = `http://127.0.0.1:${await closedPort()}/api/v1`;
    const fromCache = await listModels({ refresh: true, env: env(refused) });
    expect(fromCache.source).toBe('cache');
    expect(fromCache.warning).toMatch(/refreshing the model list failed .*ECONNREFUSED/);

    await rm(join(home, 'cache'), { recursive: true, force: true });
    const fromSnapshot = await listModels({ refresh: true, env: env(refused) });
    expect(fromSnapshot.source).toBe('snapshot');
    expect(fromSnapshot.warning).toContain('built-in snapshot');
  });

  it("'auto' uses a fresh cache without the network and refetches after 24 hours", async () => {
    const t0 = Date.parse('2026-03-01T00:00:00Z');
    await listModels({ refresh: true, env: env(), now: () => t0 });
    requests = [];
    const soon = await listModels({ refresh: 'auto', env: env(), now: () => t0 + 23 * 3_600_000 });
    expect(soon.source).toBe('cache');
    expect(requests).toHaveLength(0);
    const later = await listModels({ refresh: 'auto', env: env(), now: () => t0 + 25 * 3_600_000 });
    expect(later.source).toBe('live');
    expect(requests).toHaveLength(1);
  });

  it('without refresh it never touches the network: stale cache is used with a note', async () => {
    const t0 = Date.parse('2026-03-01T00:00:00Z');
    await listModels({ refresh: true, env: env(), now: () => t0 });
    requests = [];
    const old = await listModels({ env: env(), now: () => t0 + 48 * 3_600_000 });
    expect(requests).toHaveLength(0);
    expect(old.source).toBe('cache');
    expect(old.warning).toContain('48 h old');
  });
});
