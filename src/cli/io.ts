/**
 * What a command reads and writes, injectable so commands are tested by calling them.
 * `process.exit` appears only in bin.ts.
 */
import type { Env } from '../providers/resolve.js';

export interface OutStream {
  write(chunk: string): unknown;
  isTTY?: boolean | undefined;
  columns?: number | undefined;
}

export interface CliIO {
  stdout: OutStream;
  stderr: OutStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean | undefined };
  env: Env;
  cwd: string;
}

/** A user's mistake: printed as one line with a hint, no stack trace. Bugs keep their stack. */
export class CLIError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = 'CLIError';
    this.exitCode = exitCode;
  }
}

export function processIO(): CliIO {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() };
}

/** Colours only for a terminal, and never when NO_COLOR is set. */
export function useColor(stream: OutStream, env: Env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  return stream.isTTY === true;
}

/**
 * The environment and providers a command works with: the given environment with `.env`
 * from the working directory read in (set variables win), and the built-in providers plus
 * those of the configuration file.
 */
export async function commandContext(io: CliIO): Promise<{ env: Env; registry: import('../providers/registry.js').ProviderRegistry }> {
  const { loadEnv } = await import('../providers/env.js');
  const { createRegistry } = await import('../providers/config.js');
  loadEnv(io.cwd, io.env);
  return { env: io.env, registry: createRegistry(io.cwd, io.env) };
}

/**
 * The gateway configuration a command works with: `--config`, else $SWITCHBOARD_GATEWAY_CONFIG,
 * else the built-in default, with `.env` read in first; `load` reads it again (for reloads).
 */
export async function gatewayConfigFor(flagPath: string | undefined, io: CliIO) {
  const { loadEnv } = await import('../providers/env.js');
  loadEnv(io.cwd, io.env);
  const { defaultGatewayConfig, loadGatewayConfig } = await import('../gateway/config.js');
  const { resolve } = await import('node:path');
  const configPath = flagPath ?? (io.env.SWITCHBOARD_GATEWAY_CONFIG || undefined);
  const path = configPath === undefined ? undefined : resolve(io.cwd, configPath);
  const load = () => (path === undefined ? Promise.resolve(defaultGatewayConfig(io.env)) : loadGatewayConfig(path, io.env));
  return { path, load, config: await load() };
}
