/**
 * Real Redis and Postgres servers for tests: each started on a free loopback port with a
 * throwaway data directory, stopped (and the directory removed) by `stop()`. Missing servers
 * fail the test run with the command that installs them; nothing is skipped.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createRedisClient, type RedisClient } from '../../src/store/redis-scripts.js';

const PG_BIN = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'].find((d) => existsSync(join(d, 'initdb')));
const INSTALL = 'Install them with: apt-get update && apt-get install -y redis-server postgresql (CI does this in .ci/run).';

function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what} did not start within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
}

export interface RedisServer {
  url: string;
  port: number;
  /** Stop the server (SIGTERM, or SIGKILL to crash it); its data directory stays for a restart. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same port and data (append-only file), as after an outage. */
  start(): Promise<void>;
  /** Stop it and remove its data. */
  destroy(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  if (!which('redis-server')) throw new Error(`redis-server is not installed. ${INSTALL}`);
  const dir = mkdtempSync(join(tmpdir(), 'sb-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const ping = (): boolean => {
    try {
      return execFileSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() === 'PONG';
    } catch {
      return false;
    }
  };
  const start = async (): Promise<void> => {
    if (child) return;
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--protected-mode', 'no'], { stdio: 'ignore' });
    await waitFor(ping, 'redis-server');
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (!child) return;
    const c = child;
    child = undefined;
    c.kill(signal);
    await exitOf(c);
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A real redis-server and one connected client for a whole test file: started before its
 * tests, closed and removed after. Read the fields inside tests (they are set by then).
 */
export function useRedisClient(): { readonly server: RedisServer; readonly client: RedisClient } {
  let server: RedisServer | undefined;
  let client: RedisClient | undefined;
  beforeAll(async () => {
    server = await startRedis();
    client = createRedisClient(server.url);
    await client.connect();
  }, 30_000);
  afterAll(async () => {
    await client?.close();
    await server?.destroy();
  });
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`useRedisClient: the ${what} is only there inside a test`);
    return value;
  };
  return {
    get server() {
      return ready(server, 'server');
    },
    get client() {
      return ready(client, 'client');
    },
  };
}

export interface PostgresServer {
  url: string;
  port: number;
  /** A fresh empty database on this server, for one test. */
  createDatabase(name: string): string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Postgres refuses to run as root: run its binaries as the `postgres` user the Debian package
 * makes (setpriv execs in place, so signals reach the server itself).
 */
function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', cmd, ...args]] : [cmd, args];
}

export async function startPostgres(): Promise<PostgresServer> {
  if (!PG_BIN) throw new Error(`Postgres is not installed (no initdb under /usr/lib/postgresql/*/bin). ${INSTALL}`);
  const dir = mkdtempSync(join(tmpdir(), 'sb-pg-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  const port = await freePort();
  const [initCmd, initArgs] = asPostgres(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  execFileSync(initCmd, initArgs, { stdio: 'ignore' });
  let child: ChildProcess | undefined;
  const psql = (sql: string, db = 'postgres'): string => execFileSync('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', db, '-tAc', sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const ready = (): boolean => {
    try {
      return psql('SELECT 1').trim() === '1';
    } catch {
      return false;
    }
  };
  const start = async (): Promise<void> => {
    if (child) return;
    const [cmd, args] = asPostgres(join(PG_BIN, 'postgres'), ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'fsync=off', '-c', 'max_connections=200']);
    child = spawn(cmd, args, { stdio: 'ignore' });
    await waitFor(ready, 'postgres');
  };
  const stop = async (): Promise<void> => {
    if (!child) return;
    const c = child;
    child = undefined;
    // Fast shutdown (SIGINT): connections are cut, as in an outage.
    c.kill('SIGINT');
    await exitOf(c);
    await waitFor(() => !ready(), 'postgres shutdown');
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    createDatabase: (name) => {
      psql(`CREATE DATABASE ${name}`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop,
    start,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
