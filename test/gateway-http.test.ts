/**
 * The gateway's HTTP edge: credentials in every form the SDKs send them, bad input answered
 * in the caller's own error shape and never sent upstream, the in-flight limit, operations
 * endpoints, the access log and the request log that `switchboard logs` and `usage` read.
 */
import { connect } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SQLiteConversationLog } from '../src/store/conversation-log.js';
import { runCLI } from './helpers/cli.js';
import { MASTER_KEY, startGateway, waitFor, type RunningGateway } from './helpers/gateway.js';
import { startStandIn, type StandIn } from './helpers/openai-standin.js';

let upstream: StandIn;
let gw: RunningGateway;

beforeAll(async () => {
  upstream = await startStandIn({ costPerToken: 0.000001 });
  gw = await startGateway(
    [
      'providers:',
      '  - name: local',
      '    protocol: openai',
      '    base_url: ${UPSTREAM_URL}/v1',
      '    api_key: ${UPSTREAM_KEY}',
      'aliases:',
      '  house: echo-model@local',
      'limits:',
      '  max_body_bytes: 4096',
      '  max_in_flight: 3',
      '  body_timeout_ms: 400',
    ].join('\n'),
    { env: { UPSTREAM_URL: upstream.url, UPSTREAM_KEY: 'sk-upstream-secret-777777', OPENROUTER_API_KEY: '', OPENAI_API_KEY: '' } },
  );
});
afterAll(async () => {
  await gw.close();
  await upstream.close();
});

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const chat = (model: string, content: unknown = 'Hello') => ({ model, messages: [{ role: 'user', content }] });

describe('credentials', () => {
  it('accepts the master key as Bearer, x-api-key, x-goog-api-key and ?key=', async () => {
    const body = JSON.stringify(chat('house'));
    const forms: RequestInit['headers'][] = [{ authorization: `Bearer ${MASTER_KEY}` }, { 'x-api-key': MASTER_KEY }, { 'x-goog-api-key': MASTER_KEY }];
    for (const headers of forms) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      expect(res.status).toBe(200);
    }
    const res = await fetch(`${gw.url}/v1beta/models/house:generateContent?key=${MASTER_KEY}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] }),
    });
    expect(res.status).toBe(200);
  });

  it('refuses a wrong or missing key in each SDK\'s own error type, before reading anything', async () => {
    const before = upstream.requests.length;
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-wrong-key-000000', maxRetries: 0 });
    await expect(openai.chat.completions.create(chat('house') as OpenAI.ChatCompletionCreateParamsNonStreaming)).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'sk-wrong-key-000000', maxRetries: 0 });
    await expect(anthropic.messages.create({ model: 'house', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] })).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    const google = new GoogleGenAI({ apiKey: 'wrong-key-000000', httpOptions: { baseUrl: gw.url } });
    const gerr = (await google.models.generateContent({ model: 'house', contents: 'Hi' }).catch((e: unknown) => e)) as { status?: number };
    expect(gerr.status).toBe(401);
    const none = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat('house')) });
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { message: string } }).error.message).toMatch(/Authorization: Bearer/);
    expect(upstream.requests.length).toBe(before);
  });

  it('never forwards the caller\'s Authorization upstream; the upstream gets the configured key', async () => {
    await post('/v1/chat/completions', chat('house'));
    const last = upstream.requests[upstream.requests.length - 1];
    expect(last?.headers.authorization).toBe('Bearer sk-upstream-secret-777777');
    expect(JSON.stringify(last?.headers)).not.toContain(MASTER_KEY);
  });
});

describe('bad input', () => {
  it('gets a 4xx in the caller\'s protocol shape and never reaches the upstream', async () => {
    const before = upstream.requests.length;
    const cases: { path: string; body: unknown; headers?: Record<string, string>; status: number; match: RegExp }[] = [
      { path: '/v1/chat/completions', body: '{"model": "house", "messages": [', status: 400, match: /not valid JSON/ },
      { path: '/v1/chat/completions', body: { model: 'house', messages: 'hello' }, status: 400, match: /messages/ },
      { path: '/v1/chat/completions', body: { ...chat('house'), stream: 'yes' }, status: 400, match: /Invalid type for 'stream': expected a boolean, but got a string/ },
      { path: '/v1/responses', body: { model: 'house', input: 'Hi', stream: 1 }, status: 400, match: /expected a boolean, but got a number/ },
      { path: '/v1/chat/completions', body: { ...chat('house'), response_format: 'json' }, status: 400, match: /Invalid type for 'response_format': expected an object, but got a string/ },
      { path: '/v1/chat/completions', body: { ...chat('house'), stream: true, stream_options: [] }, status: 400, match: /'stream_options': expected an object, but got an array/ },
      { path: '/v1/messages', body: { model: 'house', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }], stream: 'yes' }, status: 400, match: /stream: Input should be a valid boolean/ },
      { path: '/v1/chat/completions', body: chat('house', 'x'.repeat(5000)), status: 413, match: /4096/ },
      { path: '/v1/chat/completions', body: chat('sim/nope'), status: 400, match: /no model "nope"/ },
      { path: '/v1/chat/completions', body: chat('echo@local||'), status: 400, match: /\^/ },
      { path: '/v1/chat/completions', body: chat('house'), headers: { 'content-type': 'text/plain' }, status: 415, match: /application\/json/ },
      { path: '/v1/chat/completions', body: '\u001f\u008b', headers: { 'content-encoding': 'gzip' }, status: 415, match: /Content-Encoding gzip is not supported; send the JSON body uncompressed/ },
      { path: '/v1/chat/completions', body: chat('house', [{ type: 'image_url', image_url: { url: 'file:///etc/passwd' } }]), status: 400, match: /never reads local files/ },
      { path: '/v1/chat/completions', body: chat('house', [{ type: 'image_url', image_url: { url: '/etc/passwd' } }]), status: 400, match: /never reads local files/ },
      { path: '/v1/nothing-here', body: {}, status: 404, match: /not an endpoint/ },
    ];
    for (const c of cases) {
      const res = await post(c.path, c.body, c.headers);
      const body = (await res.json()) as { error: { message: string; type: string } };
      expect({ status: res.status, path: c.path }).toEqual({ status: c.status, path: c.path });
      expect(body.error.message).toMatch(c.match);
      expect(typeof body.error.type).toBe('string');
    }
    expect(upstream.requests.length).toBe(before);
  });

  it('refuses a body nested past 256 levels in each protocol\'s shape, and serves one nested 256 deep', async () => {
    const nested = (levels: number): unknown => (levels === 0 ? 1 : [nested(levels - 1)]);
    // The body, tools, a tool, its function, parameters, properties and x are 7 levels; the default adds the rest.
    const withTool = (arrays: number) => ({ ...chat('house'), tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { x: { type: 'array', default: nested(arrays) } } } } }] });
    const before = upstream.requests.length;
    const refused = [
      await post('/v1/chat/completions', withTool(250)),
      await post('/v1/messages', { model: 'house', max_tokens: 10, messages: nested(300) }, { 'anthropic-version': '2023-06-01' }),
      await post('/v1beta/models/house:generateContent', { contents: nested(300) }),
    ];
    expect(refused.map((r) => r.status)).toEqual([400, 400, 400]);
    const [openai, anthropic, gemini] = (await Promise.all(refused.map((r) => r.json()))) as [{ error: { type: string; message: string } }, { type: string; error: { type: string; message: string } }, { error: { status: string; message: string } }];
    expect(openai.error).toMatchObject({ type: 'invalid_request_error', message: expect.stringMatching(/more than 256 levels deep/) });
    expect(anthropic).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringMatching(/more than 256 levels deep/) } });
    expect(gemini.error).toMatchObject({ status: 'INVALID_ARGUMENT', message: expect.stringMatching(/more than 256 levels deep/) });
    expect(upstream.requests.length).toBe(before);
    const served = await post('/v1/chat/completions', withTool(249));
    expect(served.status).toBe(200);
    expect(upstream.requests.length).toBe(before + 1);
  });

  it('answers a body that never ends with a 408 in the caller\'s shape after limits.body_timeout_ms, and closes the connection', async () => {
    const before = upstream.requests.length;
    const { port } = new URL(gw.url);
    /** Headers and one chunk of a chunked body that never ends; what comes back, and whether the gateway closed the socket. */
    const trickle = (path: string, headers: string): Promise<{ text: string; closed: boolean; ms: number }> =>
      new Promise((resolve, reject) => {
        const started = performance.now();
        const socket = connect(Number(port), '127.0.0.1', () => {
          socket.write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer ${MASTER_KEY}\r\n${headers}transfer-encoding: chunked\r\n\r\n5\r\n{"mod\r\n`);
        });
        let text = '';
        socket.setEncoding('utf8').on('data', (d: string) => (text += d));
        socket.on('end', () => resolve({ text, closed: true, ms: performance.now() - started }));
        socket.on('error', reject);
        setTimeout(() => {
          socket.destroy();
          resolve({ text, closed: false, ms: performance.now() - started });
        }, 5000);
      });
    const [openai, anthropic, admin] = await Promise.all([
      trickle('/v1/chat/completions', ''),
      trickle('/v1/messages', 'anthropic-version: 2023-06-01\r\n'),
      trickle('/admin/keys', ''),
    ]);
    for (const r of [openai, anthropic, admin]) {
      expect(r.text).toMatch(/^HTTP\/1\.1 408 /);
      expect(r.text).toMatch(/did not arrive within 400 ms of its headers \(limits\.body_timeout_ms\)/);
      expect(r.closed).toBe(true);
      expect(r.ms).toBeLessThan(4000);
    }
    expect(openai.text).toMatch(/"type":"invalid_request_error"/);
    expect(anthropic.text).toMatch(/\{"type":"error","error":\{"type":"[a-z_]+","message":"The request body did not arrive/);
    expect(upstream.requests.length).toBe(before);
  });

  it('answers 503 naming the variable when the gateway has no key for a model\'s provider', async () => {
    const res = await post('/v1/chat/completions', chat('openai/gpt-4o-mini'));
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/OPENROUTER_API_KEY/);
  });

  it('answers the Anthropic and Gemini endpoints in their own shapes', async () => {
    const a = await post('/v1/messages', '{not json', { 'anthropic-version': '2023-06-01' });
    const ab = (await a.json()) as { type: string; error: { type: string } };
    expect(a.status).toBe(400);
    expect(ab.type).toBe('error');
    expect(ab.error.type).toBe('invalid_request_error');
    // A malformed percent-escape in the model's path names no endpoint (it once escaped as a 500).
    const bad = await post('/v1beta/models/%zz:generateContent', { contents: [{ parts: [{ text: 'Hi' }] }] });
    expect(bad.status).toBe(404);
    expect(((await bad.json()) as { error: { status: string; message: string } }).error).toMatchObject({ status: 'NOT_FOUND', message: expect.stringMatching(/not an endpoint/) });
    const g = await post('/v1beta/models/house:generateContent', { contents: 'nope' });
    const gb = (await g.json()) as { error: { code: number; status: string } };
    expect(g.status).toBe(400);
    expect(gb.error.code).toBe(400);
    expect(gb.error.status).toBe('INVALID_ARGUMENT');
  });
});

describe('backpressure', () => {
  it('answers 503 with Retry-After past the in-flight limit, in the caller\'s shape', async () => {
    const held = await Promise.all([1, 2, 3].map(async () => {
      const res = await post('/v1/chat/completions', { ...chat('hang-model@local'), stream: true });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await reader.read();
      return reader;
    }));
    await waitFor(() => gw.gateway.inFlight === 3);
    const openai = await post('/v1/chat/completions', chat('house'));
    expect(openai.status).toBe(503);
    expect(openai.headers.get('retry-after')).toBe('1');
    expect(((await openai.json()) as { error: { message: string } }).error.message).toMatch(/limit of 3/);
    // Anthropic's API says "overloaded" with 529 and an overloaded_error; its SDK retries both.
    const res = await post('/v1/messages', { model: 'house', max_tokens: 10, messages: [{ role: 'user', content: 'Hi' }] }, { 'anthropic-version': '2023-06-01' });
    expect(res.status).toBe(529);
    expect(res.headers.get('retry-after')).toBe('1');
    const body = (await res.json()) as { type: string; error: { type: string } };
    expect(body).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } });
    // Let the held requests go: the clients cancel, which aborts their upstream requests.
    await Promise.all(held.map((reader) => reader.cancel()));
    await waitFor(() => gw.gateway.inFlight === 0);
    expect((await post('/v1/chat/completions', chat('house'))).status).toBe(200);
  });
});

describe('operations', () => {
  it('serves /healthz, /readyz and Prometheus /metrics with the GenAI names', async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { status: string }).status).toBe('ready');
    await post('/v1/chat/completions', { ...chat('house'), stream: true });
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text).toMatch(/^gen_ai_server_request_duration_seconds_count\{gen_ai_operation_name="chat",gen_ai_request_model="house",gen_ai_provider_name="local",error_type=""\} \d+/m);
    expect(text).toMatch(/^gen_ai_server_time_to_first_token_seconds_bucket\{.*le="\+Inf"\} \d+/m);
    expect(text).toMatch(/^gen_ai_client_token_usage_sum\{.*gen_ai_token_type="output"\} \d+/m);
    expect(text).toMatch(/^switchboard_cost_usd_total\{gen_ai_request_model="house",gen_ai_provider_name="local"\} [\d.e-]+/m);
    expect(text).toMatch(/^switchboard_requests_total\{protocol="openai",status="401"\} \d+/m);
    expect(text).toMatch(/^switchboard_errors_total\{/m);
    expect(text).toMatch(/^switchboard_gateway_overhead_seconds_count\{protocol="openai"\} \d+/m);
    expect(text).toMatch(/^switchboard_in_flight_requests 0$/m);
  });

  it('reports how late the event loop ran since the last scrape: a stall shows once, then a new window starts', async () => {
    const lag = async (): Promise<{ max: number; p99: number }> => {
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      const read = (name: string): number => Number(new RegExp(`^nodejs_eventloop_lag_${name}_seconds ([\\d.e-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
      return { max: read('max'), p99: read('p99') };
    };
    await lag();
    await new Promise((r) => setTimeout(r, 30));
    // The gateway runs in this process: a synchronous 150 ms stall is its event loop's.
    const until = performance.now() + 150;
    while (performance.now() < until) {
      // busy
    }
    await new Promise((r) => setTimeout(r, 30));
    const stalled = await lag();
    expect(stalled.max).toBeGreaterThanOrEqual(0.12);
    expect(stalled.p99).toBeLessThanOrEqual(stalled.max);
    await new Promise((r) => setTimeout(r, 50));
    const after = await lag();
    expect(after.max).toBeLessThan(stalled.max);
  });

  it('writes one JSON log line per request with no content and no key', async () => {
    await post('/v1/chat/completions', chat('house', 'my secret diary entry'), { 'x-request-id': 'log-line-1' });
    await waitFor(() => gw.accessLog.some((l) => l.request_id === 'log-line-1'));
    const line = gw.accessLog.find((l) => l.request_id === 'log-line-1');
    expect(line).toMatchObject({ status: 200, model: 'house', provider: 'local', key_id: 'master', stream: false });
    expect(typeof line?.overhead_ms).toBe('number');
    const all = JSON.stringify(gw.accessLog);
    expect(all).not.toContain('secret diary');
    expect(all).not.toContain(MASTER_KEY);
    expect(all).not.toContain('sk-upstream-secret');
    expect(all).not.toContain('sk-wrong-key');
  });
});

describe('the request log', () => {
  it('holds every request, and `switchboard logs` and `usage` show them', async () => {
    await post('/v1/chat/completions', chat('house', 'counted request'), { 'x-request-id': 'req-log-1' });
    await new Promise((r) => setTimeout(r, 400));
    const log = new SQLiteConversationLog({ env: { SWITCHBOARD_HOME: gw.home } });
    const rows = log.usage({ by: 'model' });
    log.close();
    const house = rows.find((r) => r.key === 'house');
    expect(house?.turns).toBeGreaterThan(3);
    expect(house?.cost).toBeGreaterThan(0);
    const usage = await runCLI(['usage', '--by', 'provider', '--json'], { env: { SWITCHBOARD_HOME: gw.home } });
    expect(usage.status).toBe(0);
    const local = usage.stdout.trim().split('\n').map((l) => JSON.parse(l) as { provider: string; turns: number }).find((r) => r.provider === 'local');
    expect(local?.turns).toBeGreaterThan(3);
    const logs = await runCLI(['logs', '--json', '-n', '200'], { env: { SWITCHBOARD_HOME: gw.home } });
    const listed = logs.stdout.trim().split('\n').map((l) => JSON.parse(l) as { models: string[]; firstMessage: string });
    expect(listed.some((c) => c.models.includes('house'))).toBe(true);
    // Refused requests are there too, with their status and reason.
    const db = new SQLiteConversationLog({ env: { SWITCHBOARD_HOME: gw.home } });
    const refused = db.usage({ by: 'model' }).find((r) => r.key === 'sim/nope');
    db.close();
    expect(refused?.turns).toBe(1);
    // Content stays out unless logging.content is on; keys never go in.
    expect(logs.stdout).not.toContain('counted request');
    expect(logs.stdout).not.toContain(MASTER_KEY);
  });
});
