/** Which model the CLI uses when the user names none, and the checks made before a model is used. */
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Env, ResolveContext } from '../providers/resolve.js';
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
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The help of `-m`: what is used when it is left out. */
export const MODEL_DEFAULT_HELP = 'default: $SWITCHBOARD_MODEL (comma-separated), else openai/gpt-4o-mini with an OpenRouter key, else sim/llama';

/**
 * Refuse, before anything is sent or a chat starts, a model none of whose endpoints has the
 * key it needs: `chat -m openai/gpt-4o-mini` without OPENROUTER_API_KEY says so at once, not at
 * the first message. A routing mode (the router chooses among providers) or a fallback that
 * has its key is enough.
 */
export async function requireKeys(models: string[], ctx: ResolveContext): Promise<void> {
  if (ctx.baseURL !== undefined || ctx.apiKey !== undefined) return;
  const { parseModelString } = await import('../routing/grammar.js');
  const { hasKey, resolveModel } = await import('../providers/resolve.js');
  const { MissingKeyError } = await import('../errors.js');
  for (const model of models) {
    let missing: InstanceType<typeof MissingKeyError> | undefined;
    let usable = false;
    let name = '';
    for (const e of parseModelString(model).endpoints) {
      name = e.model ?? name;
      if (e.target?.kind === 'mode') {
        usable = true;
        continue;
      }
      const deployment = resolveModel(e.target ? `${name}@${e.target.name}` : name, ctx);
      const config = ctx.registry.get(deployment.provider);
      if (config.keyEnv.length === 0 || config.keyOptional || hasKey(config, ctx.env)) usable = true;
      else missing ??= new MissingKeyError(config.name, config.keyEnv[0] as string);
    }
    if (!usable && missing) throw missing;
  }
}

/**
 * How to run switchboard again from a shell, for hints like "Continue with: ...":
 * `switchboard` when it is on the PATH (after `npm link` or a global install), else
 * `npx switchboard`, which works inside the clone.
 */
export function selfCommand(env: Env): string {
  const dirs = (env.PATH ?? '').split(delimiter).filter(Boolean);
  return dirs.some((dir) => existsSync(join(dir, process.platform === 'win32' ? 'switchboard.cmd' : 'switchboard'))) ? 'switchboard' : 'npx switchboard';
}
