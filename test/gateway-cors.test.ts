/**
 * CORS at the HTTP level: preflights for allowed, refused and wildcard origins (answered
 * without a key, outside the request log and the request metrics), the allow and expose
 * headers on JSON, streamed and error answers in each protocol's shape, nothing at all when
 * the config has no `cors`, and a reload that changes the rules. Gateways on ephemeral ports,
 * backed by the simulator (and a local stand-in for an upstream's 429).
 */
import { mkdtempSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../src/gateway/config.js';
import { Gateway } from '../src/gateway/gateway.js';
import { openVirtualKeyStack } from '../src/gateway/virtual-key-stack.js';
import { SQLiteConversationLog } from '../src/store/conversation-log.js';
import { MASTER_KEY, startGateway, waitFor, type RunningGateway } from './helpers/gateway.js';
import { startStandIn, type StandIn } from './helpers/openai-standin.js';

const APP = 'https://app.example.com';
const MODEL = 'sim/llama@sim-fast';
const CORS_YAML = [
  'cors:',
  `  origins: [${APP}, "http://localhost:*", "https://*.preview.example.com"]`,
  '  max_age_seconds: 600',
  '  expose_headers: [X-Trace-Id]',
].join('\n');

let upstream: StandIn;
let gw: RunningGateway;
let off: RunningGateway;

beforeAll(async () => {
  upstream = await startStandIn();
  // No retries: the stand-in's 429 (Retry-After: 7) comes straight back.
  const providers = ['providers:', '  - name: local', '    protocol: openai', '    base_url: ${UPSTREAM_URL}/v1', 'routing: { max_retries: 0 }'].join('\n');
  const env = { UPSTREAM_URL: upstream.url, OPENAI_API_KEY: '', OPENROUTER_API_KEY: '' };
  gw = await startGateway(`${CORS_YAML}\n${providers}\n`, { env });
  off = await startGateway(`${providers}\n`, { env });
});
afterAll(async () => {
  await gw.close();
  await off.close();
  await upstream.close();
});

const preflight = (url: string, origin: string, path = '/v1/chat/completions', extra: Record<string, string> = {}): Promise<Response> =>
  fetch(`${url}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', ...extra } });

const chat = (url: string, origin: string | undefined, body: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}`, ...(origin === undefined ? {} : { origin }), ...headers },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hello from a browser' }], ...body }),
  });

/** Every access-control-* header of a response, by name. */
function corsHeaders(res: Response): Record<string, string> {
  const found: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (name.startsWith('access-control-')) found[name] = value;
  });
  return found;
}

/** What an allowed origin's actual answer carries: its origin echoed, the gateway's headers exposed. */
function expectAllowed(res: Response, origin = APP): void {
  expect(res.headers.get('access-control-allow-origin')).toBe(origin);
  const exposed = (res.headers.get('access-control-expose-headers') ?? '').split(', ');
  for (const h of ['x-request-id', 'x-switchboard-model', 'x-switchboard-provider', 'x-switchboard-cost', 'x-switchboard-overhead-ms', 'x-switchboard-cache', 'x-switchboard-budget-remaining', 'x-ratelimit-remaining-requests', 'x-ratelimit-reset-tokens', 'retry-after', 'x-trace-id']) {
    expect(exposed).toContain(h);
  }
  expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  expect(res.headers.get('vary')).toBe('Origin');
}

describe('preflight', () => {
  it('answers an allowed origin with 204 and the allow headers, with no key, echoing the SDKs\' headers', async () => {
    const requested = 'anthropic-dangerous-direct-browser-access, anthropic-version, authorization, content-type, x-stainless-os, x-stainless-retry-count';
    const res = await preflight(gw.url, APP, '/v1/chat/completions', { 'access-control-request-headers': requested });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');
    expect(corsHeaders(res)).toEqual({
      'access-control-allow-origin': APP,
      'access-control-allow-methods': 'POST',
      'access-control-allow-headers': requested,
      'access-control-max-age': '600',
    });
    expect(res.headers.get('vary')).toBe('Origin, Access-Control-Request-Headers');
  });

  it('names each endpoint\'s own method, for every protocol\'s paths', async () => {
    const paths: [string, string][] = [
      ['/v1/models', 'GET'],
      ['/v1beta/models', 'GET'],
      ['/v1/messages', 'POST'],
      ['/v1/messages/count_tokens', 'POST'],
      ['/v1/responses', 'POST'],
      ['/v1beta/models/sim%2Fllama:streamGenerateContent', 'POST'],
      ['/v1/models/sim%2Fllama:generateContent', 'POST'],
    ];
    for (const [path, method] of paths) {
      const res = await preflight(gw.url, APP, path, { 'access-control-request-method': method });
      expect([path, res.status, res.headers.get('access-control-allow-methods')]).toEqual([path, 204, method]);
    }
  });

  it('without requested headers (or with unreadable ones) allows the SDKs\' usual set', async () => {
    const asked: Record<string, string>[] = [{}, { 'access-control-request-headers': 'authorization, x bad' }];
    for (const extra of asked) {
      const allowed = (await preflight(gw.url, APP, '/v1/messages', extra)).headers.get('access-control-allow-headers') ?? '';
      for (const h of ['authorization', 'content-type', 'x-api-key', 'x-goog-api-key', 'x-goog-api-client', 'anthropic-version', 'anthropic-beta', 'anthropic-dangerous-direct-browser-access', 'x-request-id']) {
        expect(allowed.split(', ')).toContain(h);
      }
    }
  });

  it('matches port and subdomain wildcards, and nothing that merely looks alike', async () => {
    const allowed = ['http://localhost:5173', 'http://localhost', 'https://pr-12.preview.example.com', 'https://a.b.preview.example.com'];
    const refused = ['https://localhost:5173', 'http://localhost.evil.com', 'https://preview.example.com', 'https://evilpreview.example.com', 'https://app.example.com.evil.com', 'https://app.example.com:8443', 'http://app.example.com', 'https://APP.example.com', 'null'];
    for (const origin of allowed) {
      const res = await preflight(gw.url, origin);
      expect([origin, res.status, res.headers.get('access-control-allow-origin')]).toEqual([origin, 204, origin]);
    }
    for (const origin of refused) {
      const res = await preflight(gw.url, origin);
      expect([origin, res.status, corsHeaders(res)]).toEqual([origin, 403, {}]);
    }
  });

  it('refuses another origin with 403 and no allow header, and says so in the access log', async () => {
    const res = await preflight(gw.url, 'https://evil.example.net', '/v1/chat/completions', { 'x-request-id': 'refused-preflight-1' });
    expect(res.status).toBe(403);
    expect(corsHeaders(res)).toEqual({});
    expect(res.headers.get('vary')).toBe('Origin');
    expect(((await res.json()) as { error: { type: string; message: string } }).error).toEqual({
      type: 'cors_origin_not_allowed',
      message: 'The origin https://evil.example.net may not call this gateway from a browser (cors.origins).',
    });
    await waitFor(() => gw.accessLog.some((l) => l.request_id === 'refused-preflight-1'));
    expect(gw.accessLog.find((l) => l.request_id === 'refused-preflight-1')).toMatchObject({ method: 'OPTIONS', status: 403, error_type: 'cors_origin_not_allowed', origin: 'https://evil.example.net' });
  });

  it('allows the private-network hop Chromium asks about for an allowed origin only', async () => {
    const ask = { 'access-control-request-private-network': 'true' };
    expect((await preflight(gw.url, APP, '/v1/chat/completions', ask)).headers.get('access-control-allow-private-network')).toBe('true');
    expect((await preflight(gw.url, 'https://evil.example.net', '/v1/chat/completions', ask)).headers.get('access-control-allow-private-network')).toBeNull();
  });

  it('is not a preflight without Access-Control-Request-Method, nor on a path that is no endpoint: answered as before', async () => {
    const bare = await fetch(`${gw.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: APP } });
    expect(bare.status).toBe(405);
    expect(bare.headers.get('access-control-allow-origin')).toBe(APP);
    const elsewhere = await preflight(gw.url, APP, '/v1/nothing-here');
    expect(elsewhere.status).toBe(405);
    expect(elsewhere.headers.get('access-control-allow-methods')).toBeNull();
  });

  it('needs no key, is not a model request and stays out of the request log and the access log', async () => {
    const g = await startGateway(`${CORS_YAML}\n`);
    try {
      for (let i = 0; i < 5; i++) expect((await preflight(g.url, APP, '/v1/chat/completions', { 'x-request-id': `preflight-${i}` })).status).toBe(204);
      const real = await chat(g.url, APP, {}, { 'x-request-id': 'the-real-one' });
      expect(real.status).toBe(200);
      await real.text();
      await waitFor(() => g.accessLog.some((l) => l.request_id === 'the-real-one'));
      const metrics = await (await fetch(`${g.url}/metrics`)).text();
      expect(metrics).toMatch(/^switchboard_requests_total\{protocol="openai",status="200"\} 1$/m);
      expect(metrics).toMatch(/^switchboard_cors_preflights_total\{result="allowed"\} 5$/m);
      expect(metrics).not.toMatch(/status="204"/);
      expect(g.accessLog.filter((l) => String(l.request_id).startsWith('preflight-'))).toEqual([]);
    } finally {
      await g.close();
    }
    const log = new SQLiteConversationLog({ env: { SWITCHBOARD_HOME: g.home } });
    const turns = log.usage({ by: 'model' }).reduce((n, r) => n + r.turns, 0);
    log.close();
    expect(turns).toBe(1);
  });
});

describe('actual responses', () => {
  it('a JSON reply to an allowed origin lets the page read the gateway\'s headers', async () => {
    const res = await chat(gw.url, APP);
    expect(res.status).toBe(200);
    expectAllowed(res);
    expect(Number(res.headers.get('x-switchboard-cost'))).toBeGreaterThan(0);
    await res.json();
  });

  it('a stream carries them on its first bytes', async () => {
    const res = await chat(gw.url, 'http://localhost:5173', { stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    expectAllowed(res, 'http://localhost:5173');
    expect(await res.text()).toMatch(/data: \[DONE\]/);
  });

  it('another origin is refused before any model runs (a CORS error alone would come after the spend); no Origin is served', async () => {
    const refused = await chat(gw.url, 'https://evil.example.net');
    expect(refused.status).toBe(403);
    expect(corsHeaders(refused)).toEqual({});
    expect(refused.headers.get('vary')).toBe('Origin');
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/Requests from web pages at https:\/\/evil\.example\.net are refused: add the origin to cors\.origins/);
    const served = await chat(gw.url, undefined);
    expect(served.status).toBe(200);
    expect(corsHeaders(served)).toEqual({});
    await served.json();
  });

  it('401s in the OpenAI, Anthropic and Gemini shapes carry the allow headers', async () => {
    const openai = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { origin: APP, 'content-type': 'application/json' }, body: '{}' });
    const anthropic = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { origin: APP, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: '{}' });
    const gemini = await fetch(`${gw.url}/v1beta/models/sim%2Fllama:generateContent`, { method: 'POST', headers: { origin: APP, 'content-type': 'application/json' }, body: '{}' });
    expect([openai.status, anthropic.status, gemini.status]).toEqual([401, 401, 401]);
    for (const res of [openai, anthropic, gemini]) expectAllowed(res);
    expect(((await openai.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    expect(((await anthropic.json()) as { type: string; error: { type: string } }).error.type).toBe('authentication_error');
    expect(((await gemini.json()) as { error: { status: string } }).error.status).toBe('UNAUTHENTICATED');
  });

  it('an upstream 429 (with Retry-After), a 503 for a model without a key and a 404 carry them too', async () => {
    const limited = await chat(gw.url, APP, { model: 'fail-429@local' });
    expect(limited.status).toBe(429);
    expectAllowed(limited);
    expect(limited.headers.get('retry-after')).toBe('7');
    const noKey = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { origin: APP, 'content-type': 'application/json', 'x-api-key': MASTER_KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'openai/gpt-4o-mini', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }),
    });
    // Anthropic's shape for "not available now" is 529 overloaded_error.
    expect(noKey.status).toBe(529);
    expectAllowed(noKey);
    const missing = await fetch(`${gw.url}/v1/nothing-here`, { method: 'POST', headers: { origin: APP } });
    expect(missing.status).toBe(404);
    expectAllowed(missing);
  });

  it('a key\'s rate-limit refusal (429, x-ratelimit-*) carries them, so the page can read when to retry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-cors-keys-'));
    const yaml = `master_key: ${MASTER_KEY}\n${CORS_YAML}\nvirtual_keys:\n  ledger: ${join(dir, 'ledger.db')}\n`;
    const env = { SWITCHBOARD_KEY_PEPPER: 'cors-test-pepper', SWITCHBOARD_HOME: dir };
    const stack = await openVirtualKeyStack(parseGatewayConfig(yaml, 'test.yaml', { ...process.env, ...env }), { log: () => {} });
    const g = await startGateway(yaml, { env, authenticator: stack.keys, admission: stack.admission, admin: stack.admin });
    try {
      const made = await fetch(`${g.url}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'browser', rpm: 1 }) });
      const key = ((await made.json()) as { key: string }).key;
      const first = await chat(g.url, APP, {}, { authorization: `Bearer ${key}` });
      expect(first.status).toBe(200);
      expectAllowed(first);
      expect(first.headers.get('x-ratelimit-remaining-requests')).toBe('0');
      await first.json();
      const second = await chat(g.url, APP, {}, { authorization: `Bearer ${key}` });
      expect(second.status).toBe(429);
      expectAllowed(second);
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await g.close();
      await stack.close();
    }
  });
});

describe('when the config has no cors section', () => {
  it('OPTIONS is answered as before: 405 in the OpenAI shape, no CORS header', async () => {
    const res = await preflight(off.url, APP, '/v1/chat/completions', { 'access-control-request-headers': 'authorization' });
    expect(res.status).toBe(405);
    expect(corsHeaders(res)).toEqual({});
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/^OPTIONS \/v1\/chat\/completions is not an endpoint of this gateway/);
  });

  it('replies carry no CORS header and no Vary', async () => {
    for (const res of [await chat(off.url, APP), await chat(off.url, APP, { stream: true }), await fetch(`${off.url}/v1/chat/completions`, { method: 'POST', headers: { origin: APP } })]) {
      expect(corsHeaders(res)).toEqual({});
      expect(res.headers.get('vary')).toBeNull();
      await res.text();
    }
  });
});

describe("origins: '*'", () => {
  it('allows any origin with *, and needs no Vary: Origin', async () => {
    const g = await startGateway("cors: { origins: '*' }\n");
    try {
      for (const origin of ['https://anywhere.example', 'null']) {
        const pre = await preflight(g.url, origin, '/v1/chat/completions', { 'access-control-request-headers': 'authorization, content-type' });
        expect(pre.status).toBe(204);
        expect(corsHeaders(pre)).toMatchObject({ 'access-control-allow-origin': '*', 'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '7200' });
        expect(pre.headers.get('vary')).toBe('Access-Control-Request-Headers');
      }
      const res = await chat(g.url, 'https://anywhere.example');
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-expose-headers')).toMatch(/x-switchboard-cost/);
      expect(res.headers.get('vary')).toBeNull();
      await res.json();
    } finally {
      await g.close();
    }
  });

  it('warns when there is no master key: any page could use the models', () => {
    const warnings: string[] = [];
    const config = parseGatewayConfig("cors: { origins: '*' }\n", 'test.yaml', {});
    const g = new Gateway({ config, warn: (m) => warnings.push(m), console: false });
    expect(warnings).toContain("cors.origins is '*' and there is no master key: any web page a visitor opens can use this gateway's models");
    g.reload(parseGatewayConfig(`master_key: ${MASTER_KEY}\ncors: { origins: '*' }\n`, 'test.yaml', {}));
    expect(warnings).toHaveLength(1);
  });
});

describe('reload', () => {
  it('the next request follows the new rules: another origin, then none at all', async () => {
    const g = await startGateway(`${CORS_YAML}\n`);
    try {
      expect((await preflight(g.url, APP)).status).toBe(204);
      g.gateway.reload(parseGatewayConfig(`master_key: ${MASTER_KEY}\ncors: { origins: [https://other.example.com], max_age_seconds: 60 }\n`, 'test.yaml', {}));
      expect((await preflight(g.url, APP)).status).toBe(403);
      const other = await preflight(g.url, 'https://other.example.com');
      expect([other.status, other.headers.get('access-control-max-age')]).toEqual([204, '60']);
      g.gateway.reload(parseGatewayConfig(`master_key: ${MASTER_KEY}\n`, 'test.yaml', {}));
      expect((await preflight(g.url, 'https://other.example.com')).status).toBe(405);
      const res = await chat(g.url, 'https://other.example.com');
      expect(corsHeaders(res)).toEqual({});
      await res.json();
    } finally {
      await g.close();
    }
  });
});

describe('pages at other origins, on a gateway without a master key', () => {
  /** A POST as a browser sends it for a page: its Origin, and the Host it reached (a DNS-rebinding page names its own host). */
  // node:http, not fetch: fetch sends the Host of the URL whatever the headers say.
  const post = (url: string, headers: Record<string, string>, path = '/v1/chat/completions', body: unknown = { model: MODEL, messages: [{ role: 'user', content: 'hi' }] }): Promise<{ status: number; json: () => unknown }> =>
    new Promise((resolve, reject) => {
      const { hostname, port } = new URL(url);
      const req = httpRequest({ host: hostname, port, path, method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: () => JSON.parse(text) as unknown }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });

  it('refuses a page from another origin and a rebinding page, in the caller\'s shape, and serves its own console and non-browser clients', async () => {
    const open = await startGateway('', { open: true });
    try {
      const host = new URL(open.url).host;
      const foreign = await post(open.url, { origin: 'https://evil.example.net' });
      expect(foreign.status).toBe(403);
      expect((foreign.json() as { error: { type: string; message: string } }).error).toMatchObject({ type: 'permission_error', message: expect.stringMatching(/add the origin to cors\.origins/) });
      const anthropic = await post(open.url, { origin: 'https://evil.example.net', 'anthropic-version': '2023-06-01' }, '/v1/messages', { model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] });
      expect(anthropic.status).toBe(403);
      expect(anthropic.json()).toMatchObject({ type: 'error', error: { type: 'permission_error' } });
      // evil.example rebound to 127.0.0.1: same-origin by its headers, refused by its host name.
      const rebound = await post(open.url, { origin: `http://evil.example:${new URL(open.url).port}`, host: `evil.example:${new URL(open.url).port}` });
      expect(rebound.status).toBe(403);
      // The gateway's own pages (by address or localhost), and clients that send no Origin, are served.
      for (const headers of <Record<string, string>[]>[{ origin: `http://${host}` }, { origin: `http://localhost:${new URL(open.url).port}`, host: `localhost:${new URL(open.url).port}` }, {}]) {
        const res = await post(open.url, headers);
        expect({ headers, status: res.status }).toEqual({ headers, status: 200 });
      }
      // The access log is written in batches (every 100 ms).
      await expect.poll(() => open.accessLog.filter((l) => l.error_type === 'cors_origin_not_allowed').map((l) => l.origin)).toEqual(['https://evil.example.net', 'https://evil.example.net', `http://evil.example:${new URL(open.url).port}`]);
    } finally {
      await open.close();
    }
  });

  it('with a master key, a same-origin page under any host name goes on to the key check', async () => {
    const port = new URL(gw.url).port;
    const named = await post(gw.url, { origin: `http://gateway.internal:${port}`, host: `gateway.internal:${port}`, authorization: `Bearer ${MASTER_KEY}` });
    expect(named.status).toBe(200);
  });
});
