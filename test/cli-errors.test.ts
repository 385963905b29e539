/**
 * One error discipline for the command line: a user's mistake is one line saying what to do
 * and exit 2; a runtime failure is one line and exit 1; only bugs print a stack. Run as a
 * user runs it: the built program in a child process with a clean environment.
 */
import { createServer, type Server } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCLI, type CLIResult } from './helpers/cli.js';
import { startStandIn, type StandIn } from './helpers/openai-standin.js';
import { baseEnv, runPiped, tempHome } from './helpers/terminal.js';

let up: StandIn;
beforeAll(async () => {
  up = await startStandIn({ costPerToken: 0.000002 });
});
afterAll(() => up.close());

/** One line on stderr, nothing on stdout, no stack trace. */
function oneLine(res: CLIResult): string {
  expect(res.stdout).toBe('');
  const lines = res.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(res.stderr).not.toMatch(/^\s+at /m);
  return lines[0] as string;
}

describe('exit codes', () => {
  it('bare switchboard prints the help (with the environment variables) and exits 0', async () => {
    const res = await runCLI([]);
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('Usage: switchboard');
    expect(res.stdout).toContain('SWITCHBOARD_MODEL');
  });

  it('an unknown command or option: one line, a suggestion by edit distance, exit 2', async () => {
    const command = await runCLI(['chta']);
    expect(command.status).toBe(2);
    expect(oneLine(command)).toBe("switchboard: unknown command 'chta'; did you mean chat? (see: switchboard --help)");
    const option = await runCLI(['ask', '--modle', 'sim/llama', 'hi']);
    expect(option.status).toBe(2);
    expect(oneLine(option)).toBe("switchboard: unknown option '--modle'; did you mean --model? (see: switchboard ask --help)");
    const missing = await runCLI(['logs', 'show']);
    expect(missing.status).toBe(2);
    expect(oneLine(missing)).toContain('(see: switchboard logs show --help)');
  });

  it.each([
    ['fastest', 'highest-tks-per-sec'],
    ['highest-tps', 'highest-tks-per-sec'],
    ['cheapest', 'lowest-cost'],
    ['lowest-cots', 'lowest-cost'],
    ['sim-fats', 'sim-fast'],
  ])('a mistyped mode or provider (@%s) lists the modes and suggests "%s", exit 2', async (word, meant) => {
    const res = await runCLI(['ask', '-m', `sim/llama@${word}`, 'hi']);
    expect(res.status).toBe(2);
    const line = oneLine(res);
    expect(line).toContain(`Unknown provider or mode "${word}"; did you mean "${meant}"`);
    expect(line).toContain('Modes: lowest-cost, lowest-input-cost, lowest-output-cost, highest-tks-per-sec');
    expect(line).toContain('sim-fast');
  });

  it('the same mistake outside the simulator gets the same answer', async () => {
    const res = await runCLI(['ask', '-m', 'openai/gpt-4o-mini@cheapest', 'hi']);
    expect(res.status).toBe(2);
    expect(oneLine(res)).toContain('did you mean "lowest-cost"?');
  });

  it.each([
    [['sim', '--fail-rate', '2'], '--fail-rate takes a number from 0 to 1; got "2".'],
    [['sim', '--time-scale', '-1'], '--time-scale takes a number of 0 or more; got "-1".'],
    [['sim', '--port', '70000'], '--port takes a whole number from 0 to 65535; got "70000".'],
    [['logs', '-n', '0'], '-n/--limit takes a whole number of 1 or more; got "0".'],
    [['ask', '-m', 'sim/llama', '--temperature', '5', 'hi'], '--temperature takes a number from 0 to 2; got "5".'],
    [['ask', '-m', 'sim/llama', '--max-tokens', '1.5', 'hi'], '--max-tokens takes a whole number of 1 or more; got "1.5".'],
    [['ask', '-m', 'sim/llama', '--timeout', '0', 'hi'], '--timeout takes a number above 0; got "0".'],
    [['usage', '--by', 'week'], '--by takes model, provider, day; got "week".'],
  ])('numeric and choice options are range-checked: %j', async (args, message) => {
    const res = await runCLI(args);
    expect(res.status).toBe(2);
    expect(oneLine(res)).toBe(`switchboard: ${message}`);
  });

  it('sim --port on a busy port: one line saying what to do, exit 1, no stack trace', async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const res = await runCLI(['sim', '--port', String(port)]);
      expect(res.status).toBe(1);
      expect(oneLine(res)).toBe(`switchboard: port ${port} on 127.0.0.1 is in use; pick another with --port, or leave --port out for a free one.`);
    } finally {
      busy.close();
    }
  });

  it('a missing key: said before anything is sent, naming only the variable, nothing on stdout, exit 2', async () => {
    const ask = await runCLI(['ask', '-m', 'openai/gpt-4o-mini', 'hi']);
    expect(ask.status).toBe(2);
    expect(oneLine(ask)).toBe('switchboard: No API key for openrouter: set OPENROUTER_API_KEY in the environment or in .env.');
    // The chat refuses at start, not at the first message.
    const chat = await runCLI(['chat', '-m', 'openai/gpt-4o-mini'], { input: 'hello\n' });
    expect(chat.status).toBe(2);
    expect(oneLine(chat)).toContain('set OPENROUTER_API_KEY');
  });

  it('a failed request is a runtime failure: exit 1, and no empty line on stdout first', async () => {
    const res = await runCLI(['ask', '-m', 'a/fail-500', 'hi'], { env: { OPENROUTER_API_KEY: 'sk-or-test-1234567890', OPENROUTER_BASE_URL: `${up.url}/api/v1` } });
    expect(res.status).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('models --provider with an unknown provider: a suggestion and exit 2', async () => {
    const res = await runCLI(['models', '--provider', 'groqq']);
    expect(res.status).toBe(2);
    expect(oneLine(res)).toMatch(/^switchboard: unknown provider "groqq"; did you mean "groq"\?/);
  });

  it('logs show with an ambiguous prefix says so; an unknown id says how to list them', async () => {
    const home = tempHome();
    const env = baseEnv(home);
    await runPiped(['chat', '-m', 'sim/mini'], 'one\n', env);
    await runPiped(['chat', '-m', 'sim/mini'], 'two\n', env);
    const ambiguous = await runPiped(['logs', 'show', ''], '', env);
    expect(ambiguous.status).toBe(2);
    expect(ambiguous.stderr).toMatch(/^switchboard: "" starts 2 conversation ids \(\S+, \S+\); give more of the id\.\n$/);
    const unknown = await runPiped(['logs', 'show', 'zzz'], '', env);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toBe('switchboard: no conversation "zzz" in the log; "switchboard logs" lists them.\n');
  });

  it('/save to a folder that does not exist: one line, and the chat goes on', async () => {
    const home = tempHome();
    const target = join(mkdtempSync(join(tmpdir(), 'sb-save-')), 'missing', 'chat.json');
    const res = await runPiped(['chat', '-m', 'sim/mini'], `/save ${target}\nsay: still here\n`, baseEnv(home));
    expect(res.status).toBe(0);
    expect(res.stderr).toContain(`switchboard: cannot save to ${target}: the folder ${join(target, '..')} does not exist. Nothing was saved.`);
    expect(res.stderr).not.toContain('ENOENT');
    expect(res.stdout).toContain('still here');
  });
});

describe('pipes', () => {
  it('output piped into a reader that leaves early (| head -1) ends quietly, with no stack trace', async () => {
    const { execFile } = await import('node:child_process');
    const { BIN } = await import('./helpers/cli.js');
    const script = `"${process.execPath}" "${BIN}" ask -m sim/llama -m sim/mini "Compare yourselves" | head -1`;
    const result = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
      execFile('sh', ['-c', script], { env: { PATH: process.env.PATH ?? '', SWITCHBOARD_HOME: tempHome(), SWITCHBOARD_SIM_TIME_SCALE: '0', NO_COLOR: '1' } }, (_err, stdout, stderr) => resolve({ stdout, stderr }));
    });
    expect(result.stdout).toMatch(/^── sim\/llama \(sim-fast · \$0\.\d{6}\) ──\n$/);
    expect(result.stderr).not.toContain('EPIPE');
  });
});

describe('several models', () => {
  it('ask prints replies in -m order, each with its provider and cost, whatever finishes first', async () => {
    const env = { OPENROUTER_API_KEY: 'sk-or-test-1234567890', OPENROUTER_BASE_URL: `${up.url}/api/v1` };
    const res = await runCLI(['ask', '-m', 'a/slow', '-m', 'a/one', 'hi'], { env });
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^── a\/slow \(openrouter · \$0\.\d{6}\) ──\n[^]*\n── a\/one \(openrouter · \$0\.\d{6}\) ──\n/);
    const json = await runCLI(['ask', '-m', 'a/slow', '-m', 'a/one', '--json', 'hi'], { env });
    expect(json.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { model: string }).model)).toEqual(['a/slow', 'a/one']);
  });
});
