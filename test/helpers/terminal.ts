/**
 * Drive the real `switchboard` program the way a person does: in a pseudo-terminal (tmux),
 * typing keys and reading the screen, or with piped standard input. Polls with a deadline;
 * never sleeps as an assertion.
 */
import { execFile } from 'node:child_process';
import { BIN, runCLI, type CLIResult } from './cli.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
// One tmux server per test file: files run in threads of one process, and each stops its own server.
const SOCKET = `sb-chat-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
let counter = 0;

export function tempHome(): string {
  return mkdtempSync(join(tmpdir(), 'sb-chat-'));
}

export function baseEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    SWITCHBOARD_HOME: home,
    SWITCHBOARD_METRICS: 'memory',
    SWITCHBOARD_SIM_TIME_SCALE: '0.05',
    TERM: 'xterm-256color',
    ...extra,
  };
}

const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

export class Terminal {
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /** Start `switchboard ARGS` in a fresh tmux session; the pane stays after it exits and says "[exited N]". */
  static async start(args: string[], env: Record<string, string>, size = { width: 160, height: 50 }): Promise<Terminal> {
    const name = `chat-${++counter}-${Date.now().toString(36)}`;
    const vars = Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`).join(' ');
    const command = `env -i ${vars} ${quote(process.execPath)} ${quote(BIN)} ${args.map(quote).join(' ')}; echo "[exited $?]"; sleep 120`;
    // exit-empty off: the server outlives its last session, so a session started right after
    // another one closed never meets a server that is shutting down ("server exited unexpectedly").
    await run('tmux', ['-L', SOCKET, 'new-session', '-d', '-x', String(size.width), '-y', String(size.height), '-s', name, command, ';', 'set-option', '-g', 'exit-empty', 'off']);
    return new Terminal(name);
  }

  async screen(): Promise<string> {
    const { stdout } = await run('tmux', ['-L', SOCKET, 'capture-pane', '-p', '-J', '-S', '-2000', '-t', this.name]);
    return stdout;
  }

  /** The screen row by row as the terminal shows it: rows the terminal wrapped itself are not joined back (no -J). */
  async rows(): Promise<string[]> {
    const { stdout } = await run('tmux', ['-L', SOCKET, 'capture-pane', '-p', '-S', '-2000', '-t', this.name]);
    return stdout.split('\n');
  }

  /** Type text and press Enter. */
  async type(line: string): Promise<void> {
    await run('tmux', ['-L', SOCKET, 'send-keys', '-t', this.name, '-l', line]);
    await run('tmux', ['-L', SOCKET, 'send-keys', '-t', this.name, 'Enter']);
  }

  async keys(...keys: string[]): Promise<void> {
    await run('tmux', ['-L', SOCKET, 'send-keys', '-t', this.name, ...keys]);
  }

  /** Wait until the screen satisfies `test` (text, pattern or predicate); returns the screen. */
  async waitFor(test: string | RegExp | ((screen: string) => boolean), timeoutMs = 15_000): Promise<string> {
    const ok = typeof test === 'string' ? (s: string) => s.includes(test) : test instanceof RegExp ? (s: string) => test.test(s) : test;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      last = await this.screen();
      if (ok(last)) return last;
      await new Promise((r) => setTimeout(r, 40));
    }
    throw new Error(`timed out waiting for ${String(test)}; the screen was:\n${last}`);
  }

  /** Count occurrences of `text` on the screen. */
  static count(screen: string, text: string): number {
    return screen.split(text).length - 1;
  }

  async kill(): Promise<void> {
    await run('tmux', ['-L', SOCKET, 'kill-session', '-t', this.name]).catch(() => undefined);
  }
}

/** Stop the tmux server these tests started. */
export async function stopTerminals(): Promise<void> {
  await run('tmux', ['-L', SOCKET, 'kill-server']).catch(() => undefined);
}

/** Run the program with piped stdin (async spawn); resolves when it exits. `env` is the whole environment. */
export function runPiped(args: string[], input: string, env: Record<string, string>): Promise<CLIResult> {
  return runCLI(args, { input, env, bare: true });
}
