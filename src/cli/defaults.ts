/** Which model the CLI uses when the user names none. */
import type { Env } from '../providers/resolve.js';
import type { CliIO } from './io.js';

export const SIM_DEFAULT_MODEL = 'sim/llama';
export const OPENROUTER_DEFAULT_MODEL = 'openai/gpt-4o-mini';

/**
 * The models named with -m; else SWITCHBOARD_MODEL; else a small OpenRouter model when an
 * OpenRouter key is set; else the simulator, said in one line on stderr.
 */
export function chooseModels(named: string[], io: CliIO): string[] {
  if (named.length > 0) return named;
  const env: Env = io.env;
  if (env.SWITCHBOARD_MODEL) return env.SWITCHBOARD_MODEL.split(',').map((m) => m.trim()).filter(Boolean);
  if (env.OPENROUTER_API_KEY) return [OPENROUTER_DEFAULT_MODEL];
  io.stderr.write(`switchboard: no model given and no API key set; using the built-in simulator (${SIM_DEFAULT_MODEL}). Set OPENROUTER_API_KEY or pass -m MODEL for a real model.\n`);
  return [SIM_DEFAULT_MODEL];
}

/** commander's collector for repeatable options (`-m a -m b`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
