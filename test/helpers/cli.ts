/** Run the built CLI as a user would: a separate process, piped input, a clean environment. */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BIN = new URL('../../dist/cli/bin.js', import.meta.url).pathname;

export interface CLIResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Asynchronous on purpose: stand-in servers live in the test's own process and must keep
 * answering while the CLI runs. The environment holds no real keys: only what `env` adds to
 * PATH, HOME, a fresh SWITCHBOARD_HOME (so no run sees another's metrics or logs), an
 * instant simulator and no colour.
 */
export function runCLI(args: string[], options: { input?: string; env?: Record<string, string>; bare?: boolean } = {}): Promise<CLIResult> {
  const base = options.bare
    ? {}
    : {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        SWITCHBOARD_HOME: mkdtempSync(join(tmpdir(), 'sb-cli-')),
        SWITCHBOARD_SIM_TIME_SCALE: '0',
        NO_COLOR: '1',
      };
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, ...options.env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(options.input ?? '');
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}
