/**
 * Where switchboard keeps its files (cache, metrics, logs): one function, used by every module.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Env } from './providers/resolve.js';

/**
 * `$SWITCHBOARD_HOME` when set; else `$XDG_DATA_HOME/switchboard` when XDG_DATA_HOME is set;
 * else `~/.switchboard`.
 */
export function switchboardHome(env: Env = process.env): string {
  const explicit = env.SWITCHBOARD_HOME;
  if (explicit !== undefined && explicit !== '') return explicit;
  const xdg = env.XDG_DATA_HOME;
  if (xdg !== undefined && xdg !== '') return join(xdg, 'switchboard');
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir();
  return join(home, '.switchboard');
}

/** The cache folder: `<home>/cache`. */
export function cacheDir(env: Env): string {
  return join(switchboardHome(env), 'cache');
}
