import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../src/index.js';
import { runCLI } from './helpers/cli.js';
import { startStandIn, type StandIn } from './helpers/openai-standin.js';

let up: StandIn;
beforeAll(async () => {
  up = await startStandIn({ costPerToken: 0.000002, providerName: 'Groq' });
});
afterAll(() => up.close());

function run(args: string[], input: string, env: Record<string, string> = {}) {
  return runCLI(args, { input, env });
}

describe('switchboard CLI', () => {
  it('prints its version, kept in step with package.json', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
    expect((await run(['--version'], '')).stdout.trim()).toBe(pkg.version);
    expect((await run(['--help'], '')).stdout).toContain('ask');
  });

  it('ask --json reads the prompt from stdin and prints text, usage, cost and provider', async () => {
    const env = { OPENROUTER_API_KEY: 'sk-or-v1-clitestkey999', OPENROUTER_BASE_URL: `${up.url}/api/v1` };
    const res = await run(['ask', '-m', 'moonshotai/kimi-k2:free', '--json'], 'Who created you?\n', env);
    expect(res.status).toBe(0);
    const line = JSON.parse(res.stdout.trim()) as Record<string, any>;
    expect(line.model).toBe('moonshotai/kimi-k2:free');
    expect(line.provider).toBe('openrouter/Groq');
    expect(line.text).toBe('moonshotai/kimi-k2:free heard: Who created you?');
    expect(line.usage.promptTokens).toBe(3);
    expect(line.usage.completionTokens).toBe(5);
    expect(line.usage.totalTokens).toBe(8);
    expect(line.cost).toBeCloseTo(8 * 0.000002, 12);
    expect(line.ttftMs).toBeGreaterThanOrEqual(0);
    expect(line.latencyMs).toBeGreaterThanOrEqual(0);
    expect(res.stdout + res.stderr).not.toContain('clitestkey');
  });

  it('ask streams one model to stdout and labels several', async () => {
    const env = { OPENROUTER_API_KEY: 'sk-or-v1-clitestkey999', OPENROUTER_BASE_URL: `${up.url}/api/v1` };
    const one = await run(['ask', '-m', 'a/one', 'hello', 'world'], '', env);
    expect(one.stdout).toBe('a/one heard: hello world\n');
    const two = await run(['ask', '-m', 'a/one', '-m', 'a/two', '--json', 'hi'], '', env);
    const lines = two.stdout.trim().split('\n').map((l) => JSON.parse(l) as { model: string; text: string });
    expect(lines.map((l) => l.model).sort()).toEqual(['a/one', 'a/two']);
  });

  it('a failing model gets an error line, a non-zero exit, and no key in the output', async () => {
    const env = { OPENROUTER_API_KEY: 'sk-or-v1-verysecretkey1234', OPENROUTER_BASE_URL: `${up.url}/api/v1` };
    const res = await run(['ask', '-m', 'a/fail-401', '-m', 'a/one', '--json', 'hi'], '', env);
    expect(res.status).toBe(1);
    const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as { model: string; error?: string });
    const failed = lines.find((l) => l.model === 'a/fail-401');
    expect(failed?.error).toMatch(/rejected the API key/);
    expect(res.stdout + res.stderr).not.toContain('verysecretkey');
  });

  it('a missing key names the variable; a bad model string points at the problem', async () => {
    const res = await run(['ask', '-m', 'openai/gpt-4o-mini', 'hi'], '');
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('OPENROUTER_API_KEY');
    const bad = await run(['ask', '-m', 'gpt 4o', 'hi'], '');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('Invalid model string "gpt 4o"');
  });
});
