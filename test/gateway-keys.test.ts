/**
 * Virtual keys through the gateway, as users meet them: the official OpenAI and Anthropic
 * clients with a virtual key against a gateway on an ephemeral port backed by the simulator,
 * the admin API over HTTP, and the ledger underneath.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../src/gateway/config.js';
import { openVirtualKeyStack, type VirtualKeyStack } from '../src/gateway/virtual-key-stack.js';
import { FEMTO_PER_MICRO } from '../src/store/ledger.js';
import { MASTER_KEY, startGateway, waitFor, type RunningGateway } from './helpers/gateway.js';
import { worstFemto } from './helpers/keys.js';
import { startStandIn } from './helpers/openai-standin.js';

const MODEL = 'sim/llama@sim-fast';
let open: { gw: RunningGateway; stack: VirtualKeyStack; dir: string }[] = [];

afterEach(async () => {
  for (const o of open) {
    await o.gw.close();
    await o.stack.close();
  }
  open = [];
});

async function keyedGateway(extra = '', moreEnv: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sb-gw-keys-'));
  const yaml = `master_key: ${MASTER_KEY}\nvirtual_keys:\n  ledger: ${join(dir, 'ledger.db')}\n${extra}`;
  const env = { SWITCHBOARD_KEY_PEPPER: 'gateway-test-pepper', SWITCHBOARD_HOME: dir, ...moreEnv };
  const stack = await openVirtualKeyStack(parseGatewayConfig(yaml, 'test.yaml', { ...process.env, ...env }), { log: () => {} });
  const gw = await startGateway(yaml, { env, authenticator: stack.keys, admission: stack.admission, admin: stack.admin, readiness: stack.readiness });
  open.push({ gw, stack, dir });
  const admin = async (method: string, path: string, body?: unknown, key = MASTER_KEY) => {
    const res = await fetch(`${gw.url}${path}`, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const client = (key: string) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
  return { gw, stack, dir, admin, client };
}

const ask = (client: OpenAI, maxTokens = 50, model = MODEL) =>
  client.chat.completions.create({ model, max_tokens: maxTokens, messages: [{ role: 'user', content: 'How many requests fit in this budget?' }] }).withResponse();

describe('virtual keys through the gateway', () => {
  it('a keyed request gets rate-limit and budget headers, and its exact cost lands in the ledger', async () => {
    const g = await keyedGateway();
    const made = await g.admin('POST', '/admin/keys', { name: 'app', budget: 5, period: 'month', rpm: 100, tpm: 100000 });
    expect(made.status).toBe(201);
    const key = made.body.key as string;
    const { data, response } = await ask(g.client(key));
    expect(data.choices[0]?.message.content).toBeTruthy();
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('100');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toBe('99');
    expect(response.headers.get('x-ratelimit-limit-tokens')).toBe('100000');
    expect(response.headers.get('x-ratelimit-reset-requests')).toBe('600ms');
    expect(response.headers.get('x-switchboard-budget-remaining')).toMatch(/^4\.99\d{4}$/);
    const shownCost = Number(response.headers.get('x-switchboard-cost'));
    expect(shownCost).toBeGreaterThan(0);

    // A malformed percent-escape in an admin path is a 404 that says so (it once escaped as a 500).
    for (const path of ['/admin/keys/%zz', '/admin/%E0%A4%A']) {
      const bad = await g.admin('GET', path);
      expect({ path, status: bad.status }).toEqual({ path, status: 404 });
      expect((bad.body.error as { message: string }).message).toMatch(/malformed percent-escape/);
    }

    // A body field of the wrong type or an unknown one is a 400 naming it: "admin": "false" must
    // not make an admin key, a misspelt budget not a key without one, and [{}] not a 500.
    for (const [body, message] of [
      [{ name: 'x', admin: 'false' }, /admin takes true or false; got "false"/],
      [{ name: 'x', buget: 5 }, /Unknown field "buget"/],
      [JSON.parse('{"name":"x","constructor":1}') as Record<string, unknown>, /Unknown field "constructor"/],
      [{ name: 'x', models: [{}] }, /models takes a list of patterns/],
      [{ name: 5 }, /name takes a string; got 5/],
      [{ name: 'x', metadata: { k: 1 } }, /metadata takes an object of strings/],
      // Names, ids and labels are shown in `keys list`, logs and the console: bounded, and no terminal escapes.
      [{ name: 'n'.repeat(129) }, /name is 129 characters long; the most it takes is 128/],
      [{ name: 'ops\u001b[2J' }, /name must not hold control characters/],
      [{ name: 'x', team: 'a\nb' }, /team must not hold control characters/],
      [{ name: 'x', metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }, /metadata holds 33 entries; the most it takes is 32/],
      [{ name: 'x', metadata: { k: 'v'.repeat(513) } }, /metadata "k" is 513 characters long/],
      [{ name: 'x', models: ['p'.repeat(257)] }, /a models pattern is 257 characters long/],
    ] as const) {
      const bad = await g.admin('POST', '/admin/keys', body);
      expect({ body, status: bad.status }).toEqual({ body, status: 400 });
      expect((bad.body.error as { message: string }).message).toMatch(message);
    }
    expect(((await g.admin('GET', '/admin/keys')).body.data as unknown[]).length).toBe(1);
    const renamed = await g.admin('PATCH', `/admin/keys/${made.body.id as string}`, { name: '  ' });
    expect(renamed.status).toBe(400);
    expect((renamed.body.error as { message: string }).message).toMatch(/name must not be empty/);
    const team = await g.admin('POST', '/admin/teams', { id: 'x'.repeat(65) });
    expect(team.status).toBe(400);
    expect((team.body.error as { message: string }).message).toMatch(/team is 65 characters long; the most it takes is 64/);

    // The ticket settles just after the response is written.
    const id = made.body.id as string;
    let shown: Record<string, unknown> = {};
    for (let i = 0; i < 50 && (shown.spend as { total_spend?: string } | undefined)?.total_spend !== shownCost.toFixed(6); i++) {
      shown = (await g.admin('GET', `/admin/keys/${id}`)).body;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((shown.spend as { total_spend: string }).total_spend).toBe(shownCost.toFixed(6));
    const usage = await g.admin('GET', '/admin/usage?by=key');
    expect(usage.body.data).toEqual([expect.objectContaining({ key: id, requests: 1, prompt_tokens: data.usage?.prompt_tokens, completion_tokens: data.usage?.completion_tokens })]);
    expect(Number((usage.body.data as { cost_femto: string }[])[0]?.cost_femto) / 1e15).toBeCloseTo(shownCost, 15);
  });

  it('200 concurrent requests over HTTP against a budget of exactly 25 worst cases never spend more', async () => {
    const g = await keyedGateway();
    const worst = worstFemto('sim-fast', 'How many requests fit in this budget?', 50);
    const worstMicros = Number((worst + FEMTO_PER_MICRO - 1n) / FEMTO_PER_MICRO);
    const budgetMicros = worstMicros * 25;
    const made = await g.admin('POST', '/admin/keys', { name: 'race', budget: (budgetMicros / 1e6).toFixed(6), period: 'total' });
    const client = g.client(made.body.key as string);
    const results = await Promise.allSettled(Array.from({ length: 200 }, () => ask(client)));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as InstanceType<typeof OpenAI.APIError>);
    expect(ok.length).toBeGreaterThanOrEqual(25);
    expect(ok.length + refused.length).toBe(200);
    expect(refused.every((e) => e.status === 429)).toBe(true);
    expect(refused.some((e) => e.code === 'insufficient_quota')).toBe(true);
    const shown = ok.reduce((sum, r) => sum + Number((r as PromiseFulfilledResult<Awaited<ReturnType<typeof ask>>>).value.response.headers.get('x-switchboard-cost')), 0);
    let spent = 0n;
    await waitFor(() => g.gw.gateway.inFlight === 0);
    for (let i = 0; i < 100; i++) {
      spent = await g.stack.ledger.spentFemto(`key:${made.body.id as string}`, 0);
      const rows = await g.stack.ledger.usage({ by: 'key' });
      if (rows[0]?.requests === ok.length) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(spent).toBeLessThanOrEqual(BigInt(budgetMicros) * FEMTO_PER_MICRO);
    expect(Number(spent) / 1e15).toBeCloseTo(shown, 12);
    console.log(`race over HTTP: 200 concurrent requests, budget $${(budgetMicros / 1e6).toFixed(6)}: ${ok.length} admitted, spent $${(Number(spent) / 1e15).toFixed(6)}`);
  });

  it('a spent budget is a 429 in each caller\'s shape, naming the scope and when it resets', async () => {
    const g = await keyedGateway();
    const made = await g.admin('POST', '/admin/keys', { name: 'tiny', budget: '0.000010', period: 'day' });
    const err = (await ask(g.client(made.body.key as string)).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err.code).toBe('insufficient_quota');
    expect(err.type).toBe('insufficient_quota');
    expect(err.message).toMatch(/more than key "tiny"'s whole budget of \$0\.000010 a day/);

    // Room for two worst cases: both pass, and the third finds the budget spent.
    await g.admin('PATCH', `/admin/keys/${made.body.id as string}`, { budget: '0.000300' });
    const client = g.client(made.body.key as string);
    await ask(client);
    await ask(client);
    await waitFor(() => g.gw.gateway.inFlight === 0);
    let spent = (await ask(client).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    for (let i = 0; i < 50 && spent.message?.includes('in flight'); i++) {
      await new Promise((r) => setTimeout(r, 10));
      spent = (await ask(client).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    }
    expect(spent.status).toBe(429);
    expect(spent.message).toMatch(/^429 Key "tiny"'s budget of \$0\.000300 a day is spent: \$0\.0000\d\d left, .* It resets at \d{4}-\d\d-\d\dT00:00:00\.000Z\.$/);
    expect(Number(spent.headers?.get('retry-after'))).toBeGreaterThan(0);

    const anthropic = new Anthropic({ baseURL: g.gw.url, apiKey: made.body.key as string, maxRetries: 0 });
    const aerr = (await anthropic.messages.create({ model: MODEL, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
    expect(aerr).toBeInstanceOf(Anthropic.RateLimitError);
    expect((aerr.error as { error: { type: string } }).error.type).toBe('rate_limit_error');
  });

  it('10 rpm: 10 pass in a burst, then 429 with Retry-After and x-ratelimit-* headers', async () => {
    const g = await keyedGateway();
    const made = await g.admin('POST', '/admin/keys', { name: 'rpm', rpm: 10 });
    const client = g.client(made.body.key as string);
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => ask(client, 5)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    const err = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(429);
    expect(err.code).toBe('rate_limit_exceeded');
    expect(Number(err.headers?.get('retry-after'))).toBeGreaterThanOrEqual(5);
    expect(err.headers?.get('x-ratelimit-limit-requests')).toBe('10');
    expect(err.headers?.get('x-ratelimit-remaining-requests')).toBe('0');
  });

  it('a model outside the key\'s patterns is a 403 naming the allowed ones', async () => {
    const g = await keyedGateway();
    const made = await g.admin('POST', '/admin/keys', { name: 'm', models: ['sim/mini*'] });
    const err = (await ask(g.client(made.body.key as string)).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(err.message).toMatch(/may not use the model "sim\/llama@sim-fast"\. Allowed models: sim\/mini\*\./);
    expect((await ask(g.client(made.body.key as string), 5, 'sim/mini')).data.object).toBe('chat.completion');
  });

  it('revocation and rotation through the admin API take effect on the next request', async () => {
    const g = await keyedGateway();
    const made = await g.admin('POST', '/admin/keys', { name: 'r' });
    const old = made.body.key as string;
    await ask(g.client(old), 5);
    const rotated = await g.admin('POST', `/admin/keys/${made.body.id as string}/rotate`, { grace_seconds: 0 });
    expect(rotated.status).toBe(200);
    await expect(ask(g.client(old), 5)).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await ask(g.client(rotated.body.key as string), 5);
    expect((await g.admin('POST', `/admin/keys/${made.body.id as string}/revoke`)).status).toBe(200);
    await expect(ask(g.client(rotated.body.key as string), 5)).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('the admin API takes the master key or an admin key, and says what was wrong', async () => {
    const g = await keyedGateway();
    const plain = await g.admin('POST', '/admin/keys', { name: 'plain' });
    expect((await g.admin('GET', '/admin/keys', undefined, plain.body.key as string)).status).toBe(403);
    const boss = await g.admin('POST', '/admin/keys', { name: 'boss', admin: true });
    expect((await g.admin('GET', '/admin/keys', undefined, boss.body.key as string)).body.data).toHaveLength(2);
    expect((await g.admin('GET', '/admin/keys', undefined, 'sk-sb-nope')).status).toBe(401);
    expect(await g.admin('POST', '/admin/keys', { name: 'plain' })).toMatchObject({ status: 409, body: { error: { message: 'A key named "plain" already exists.' } } });
    expect(await g.admin('POST', '/admin/keys', { name: 'x', budget: 'lots' })).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/^budget takes an amount in dollars/) } } });
    expect(await g.admin('POST', '/admin/keys', { name: 'x', team: 'nope' })).toMatchObject({ status: 404 });
    expect((await g.admin('POST', '/admin/teams', { id: 'eng', budget: 100, period: 'month', rpm: 600 })).body).toMatchObject({ id: 'eng', budget: { amount: '100.000000', period: 'month' }, rpm: 600 });
    expect((await g.admin('PATCH', '/admin/teams/eng', { rpm: null })).body).toMatchObject({ id: 'eng', rpm: null });
    expect((await g.admin('PATCH', `/admin/keys/${plain.body.id as string}`, { team: 'eng', expires_at: '2030-01-01' })).body).toMatchObject({ team: 'eng', expires_at: '2030-01-01T00:00:00.000Z' });
    expect((await g.admin('GET', '/admin/nothing')).status).toBe(404);
    const ready = await fetch(`${g.gw.url}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready', stores: { ledger: 'ok', onStoreError: 'closed' } });
  });

  it('a stream cut midway is recorded with what it used, not as nothing', async () => {
    const upstream = await startStandIn();
    try {
      const g = await keyedGateway('providers:\n  - name: local\n    protocol: openai\n    base_url: ${UPSTREAM_URL}/v1\n', { UPSTREAM_URL: upstream.url });
      const made = await g.admin('POST', '/admin/keys', { name: 'cut', rpm: 100 });
      const stream = await g.client(made.body.key as string).chat.completions.create({ model: 'cut-model@local', stream: true, messages: [{ role: 'user', content: 'Hello there friend' }] });
      let deltas = 0;
      await expect(
        (async () => {
          for await (const chunk of stream) if (chunk.choices[0]?.delta?.content) deltas++;
        })(),
      ).rejects.toThrow();
      let rows: Awaited<ReturnType<VirtualKeyStack['ledger']['usage']>> = [];
      for (let i = 0; i < 100 && rows.length === 0; i++) {
        rows = await g.stack.ledger.usage({ by: 'model' });
        if (rows.length === 0) await new Promise((r) => setTimeout(r, 10));
      }
      expect(deltas).toBeGreaterThan(0);
      expect(rows).toEqual([expect.objectContaining({ key: 'cut-model@local', requests: 1, completionTokens: deltas, unpriced: 1 })]);
      expect(rows[0]?.promptTokens).toBeGreaterThan(0);
    } finally {
      await upstream.close();
    }
  });

  it('no plaintext key in the ledger file, the access log, the request log or the metrics', async () => {
    const g = await keyedGateway();
    const made = await g.admin('POST', '/admin/keys', { name: 'secret', budget: 1, rpm: 100 });
    const key = made.body.key as string;
    await ask(g.client(key), 5);
    await ask(g.client(key), 5, 'anthropic/none').catch(() => undefined);
    await fetch(`${g.gw.url}/v1/chat/completions?key=${key}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"sim/llama","messages":[]}' });
    const metrics = await (await fetch(`${g.gw.url}/metrics`)).text();
    await waitFor(() => g.gw.gateway.inFlight === 0);
    await g.gw.close();
    await g.stack.close();
    open = open.filter((o) => o.gw !== g.gw);
    const files = [g.dir, g.gw.home].flatMap((d) => readdirSync(d).filter((f) => !f.endsWith('.pepper')).map((f) => readFileSync(join(d, f)).toString('latin1')));
    const haystack = [...files, JSON.stringify(g.gw.accessLog), g.gw.warnings.join('\n'), metrics].join('\n');
    expect(haystack).toContain(made.body.id as string);
    expect(haystack).not.toContain(key);
    expect(haystack).not.toContain(key.slice(key.indexOf('_') + 1));
  });
});
