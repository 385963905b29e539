/**
 * `.env` loading: variables from `.env` in the working directory, with Node's own parser
 * (`util.parseEnv`, the rules of `process.loadEnvFile`). Variables already set win.
 * Values are never printed; only names are returned.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { ConfigError } from '../errors.js';
import type { Env } from './resolve.js';

/** Read `<cwd>/.env` into `env` (keys not set yet only); returns the names it set. */
export function loadEnv(cwd: string, env: Env): string[] {
  const path = join(cwd, '.env');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return [];
    throw new ConfigError(`Could not read ${path}: ${(err as Error).message}`);
  }
  const set: string[] = [];
  for (const [name, value] of Object.entries(parseEnv(text))) {
    if (value === undefined || env[name] !== undefined) continue;
    env[name] = value;
    set.push(name);
  }
  return set;
}
