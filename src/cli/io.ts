/**
 * What a command reads and writes, injectable so commands are tested by calling them.
 * `process.exit` appears only in bin.ts.
 */
import type { Env } from '../providers/resolve.js';

export interface OutStream {
  write(chunk: string): unknown;
  isTTY?: boolean | undefined;
  columns?: number | undefined;
  rows?: number | undefined;
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

export interface NumberRange {
  min?: number;
  max?: number;
  /** Whole numbers only. */
  integer?: boolean;
  /** The minimum itself is refused (`--timeout 0`). */
  aboveMin?: boolean;
}

/** A numeric option's value, checked against its range; a mistake is one line saying what the option takes. */
export function parseNumber(value: string | undefined, flag: string, range: NumberRange = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = value.trim() === '' ? Number.NaN : Number(value);
  const { min, max, integer, aboveMin } = range;
  const ok =
    Number.isFinite(n) && (!integer || Number.isInteger(n)) && (min === undefined || (aboveMin ? n > min : n >= min)) && (max === undefined || n <= max);
  if (ok) return n;
  const kind = integer ? 'a whole number' : 'a number';
  let bounds = '';
  if (min !== undefined && max !== undefined) bounds = ` from ${min} to ${max}`;
  else if (min !== undefined) bounds = aboveMin ? ` above ${min}` : ` of ${min} or more`;
  else if (max !== undefined) bounds = ` up to ${max}`;
  throw new CLIError(`${flag} takes ${kind}${bounds}; got "${value}".`);
}

/** Library error codes that mean the user must change something (a model string, a key, an input): exit 2. */
const USER_MISTAKES = new Set(['model_string', 'unknown_provider', 'missing_key', 'config', 'invalid_input', 'invalid_history']);

/**
 * The exit code for an error: 2 for a user's mistake (what to do is in the message), 1 for a
 * runtime failure (the provider, the network, the log). Anything else is a bug and keeps its stack.
 */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CLIError) return err.exitCode;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && USER_MISTAKES.has(code) ? 2 : 1;
}

/** An error's message as the command line says it: the CLI has no `apiKey` option, so a missing key names only the variable. */
export function cliMessage(err: Error): string {
  const missing = err as Error & { envVar?: unknown; provider?: unknown; code?: unknown };
  if (missing.code === 'missing_key' && typeof missing.envVar === 'string') {
    return `No API key for ${String(missing.provider)}: set ${missing.envVar} in the environment or in .env.`;
  }
  return err.message;
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
