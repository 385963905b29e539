/** Where switchboard keeps its files: `$SWITCHBOARD_HOME`, else `~/.switchboard`. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function switchboardHome(env: Record<string, string | undefined> = process.env): string {
  const fromEnv = env.SWITCHBOARD_HOME;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.switchboard');
}
