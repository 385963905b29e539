/**
 * `switchboard keys`, `teams` and `usage --by key` as a user runs them, and `switchboard serve`
 * (a separate process) honouring the keys they make: the same ledger, read at each request.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, runCLI } from './helpers/cli.js';
import { waitFor } from './helpers/gateway.js';

const running: { kill: (s: NodeJS.Signals) => void }[] = [];
afterEach(() => {
  for (const c of running.splice(0)) c.kill('SIGKILL');
});

function home(): Record<string, string> {
  return { SWITCHBOARD_HOME: mkdtempSync(join(tmpdir(), 'sb-keys-cli-')), SWITCHBOARD_METRICS: 'memory' };
}

describe('switchboard keys', () => {
  it('creates, lists, shows, updates, rotates and revokes; the key is printed once and alone', async () => {
    const env = home();
    expect((await runCLI(['teams', 'create', 'eng', '--budget', '100', '--period', 'month'], { env })).status).toBe(0);
    const created = await runCLI(['keys', 'create', '--name', 'ci-bot', '--team', 'eng', '--budget', '25', '--period', 'month', '--rpm', '60', '--models', 'sim/*', '--metadata', 'owner=ana'], { env });
    expect(created.status).toBe(0);
    expect(created.stdout).toMatch(/^sk-sb-[0-9a-f]{8}_[A-Za-z0-9_-]{43}\n$/);
    expect(created.stderr).toMatch(/^Created sk-sb-[0-9a-f]{8} \(ci-bot\)\. Copy the key now/);
    const key = created.stdout.trim();

    const list = await runCLI(['keys', 'list'], { env });
    expect(list.stdout).toMatch(/^ID\s+NAME\s+TEAM\s+BUDGET\s+RPM\s+TPM\s+MODELS\s+EXPIRES\s+STATUS\nsk-sb-[0-9a-f]{8}\s+ci-bot\s+eng\s+\$25\.000000\/month\s+60\s+-\s+sim\/\*\s+-\s+active\n$/);
    expect(list.stdout).not.toContain(key.slice(15));

    const shown = JSON.parse((await runCLI(['keys', 'show', 'ci-bot', '--json'], { env })).stdout) as Record<string, unknown>;
    expect(shown).toMatchObject({ name: 'ci-bot', team: 'eng', budget: { amount: '25.000000', period: 'month' }, rpm: 60, models: ['sim/*'], metadata: { owner: 'ana' }, spend: { total_spend: '0.000000', period_spend: '0.000000', budget_remaining: '25.000000' }, team_spend: { budget_remaining: '100.000000' } });
    expect((await runCLI(['keys', 'show', 'ci-bot'], { env })).stdout).toMatch(/\nbudget_remaining: 25\.000000\n.*team_budget_remaining: 100\.000000\n/s);

    const updated = JSON.parse((await runCLI(['keys', 'update', 'ci-bot', '--rpm', 'none', '--models', 'all', '--json'], { env })).stdout) as Record<string, unknown>;
    expect(updated).toMatchObject({ rpm: null, models: null, team: 'eng', admin: false });

    const rotated = await runCLI(['keys', 'rotate', 'ci-bot', '--grace', '1h'], { env });
    expect(rotated.stdout.trim()).not.toBe(key);
    expect(rotated.stderr).toMatch(/the previous key works until \d{4}-/);
    expect((await runCLI(['keys', 'revoke', 'ci-bot'], { env })).stderr).toMatch(/^Revoked sk-sb-/);
    expect((await runCLI(['keys', 'list'], { env })).stdout).toMatch(/revoked\n$/);
  });

  it('says what was wrong with bad input', async () => {
    const env = home();
    expect(await runCLI(['keys', 'create', '--name', 'x', '--budget', '1.1234567'], { env })).toMatchObject({ status: 2, stderr: expect.stringMatching(/budget takes an amount in dollars with at most six decimals/) });
    expect(await runCLI(['keys', 'create', '--name', 'x', '--team', 'nope'], { env })).toMatchObject({ status: 2, stderr: expect.stringMatching(/No team named "nope"/) });
    expect(await runCLI(['keys', 'create', '--name', 'x', '--period', 'day'], { env })).toMatchObject({ status: 2, stderr: expect.stringMatching(/period goes with a budget/) });
    expect(await runCLI(['keys', 'rotate', 'nope'], { env })).toMatchObject({ status: 2, stderr: expect.stringMatching(/No key with id or name "nope"/) });
    expect(await runCLI(['usage', '--by', 'colour', '--ledger'], { env })).toMatchObject({ status: 2, stderr: expect.stringMatching(/--by takes key, team, model, provider, day/) });
  });

  it('serve honours keys made by the CLI, and usage reads what they spent', async () => {
    const env = { ...home(), SWITCHBOARD_MASTER_KEY: 'master-key-for-keys-cli', SWITCHBOARD_SIM_TIME_SCALE: '0' };
    const key = (await runCLI(['keys', 'create', '--name', 'app', '--budget', '1', '--rpm', '100'], { env })).stdout.trim();
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env } });
    running.push(child);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    await waitFor(() => /listening on (http:\S+)/.test(stderr), 10_000);
    expect(stderr).toMatch(/virtual keys on \(ledger: .*ledger\.db; admin API under \/admin\/\)/);
    const url = /listening on (http:\S+)/.exec(stderr)?.[1] as string;
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });
    const costs: number[] = [];
    for (const stream of [false, true]) {
      if (stream) {
        const raw = await openai.chat.completions.create({ model: 'sim/llama@sim-fast', stream: true, stream_options: { include_usage: true }, max_tokens: 30, messages: [{ role: 'user', content: 'Hi' }] }).withResponse();
        for await (const _ of raw.data) void _;
      } else {
        const raw = await openai.chat.completions.create({ model: 'sim/llama@sim-fast', max_tokens: 30, messages: [{ role: 'user', content: 'Hi' }] }).withResponse();
        expect(raw.response.headers.get('x-switchboard-budget-remaining')).toMatch(/^0\.99\d{4}$/);
        costs.push(Number(raw.response.headers.get('x-switchboard-cost')));
      }
    }
    await expect(new OpenAI({ baseURL: `${url}/v1`, apiKey: 'sk-sb-00000000_wrong', maxRetries: 0 }).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const revoked = await runCLI(['keys', 'revoke', 'app'], { env });
    expect(revoked.status).toBe(0);
    await expect(openai.chat.completions.create({ model: 'sim/llama', messages: [{ role: 'user', content: 'Hi' }] })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));

    const rows = (await runCLI(['usage', '--by', 'key', '--json'], { env })).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows).toEqual([expect.objectContaining({ key: expect.stringMatching(/^sk-sb-/), requests: 2 })]);
    expect(Number(rows[0]?.cost)).toBeGreaterThanOrEqual(costs[0] as number);
    const csv = (await runCLI(['usage', '--by', 'model', '--ledger', '--csv'], { env })).stdout;
    expect(csv).toMatch(/^model,requests,prompt_tokens,completion_tokens,cost,cost_femto,unpriced,saved_cost,saved_femto\nsim\/llama@sim-fast,2,\d+,\d+,0\.\d{6},\d+,0,0\.000000,0\n$/);
    const table = (await runCLI(['usage', '--by', 'day', '--ledger'], { env })).stdout;
    expect(table).toMatch(/^DAY\s+REQUESTS\s+PROMPT\s+COMPLETION\s+COST\n\d{4}-\d\d-\d\d\s+2\s/);
  });
});
