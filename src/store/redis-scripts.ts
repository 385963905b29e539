/**
 * Lua scripts on Redis, sent by their SHA-1 (EVALSHA) so that two switchboard versions in a
 * rolling deploy each run their own text; a Redis that restarted and forgot a script is sent
 * its text again (one extra round trip, once). Every Redis store of switchboard runs its
 * scripts through here, and the client options a down Redis must fail fast with.
 */
import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import { instrumentRedisClient } from './redis-trace.js';

export type RedisClient = ReturnType<typeof createClient>;

export class Script {
  readonly sha: string;
  constructor(readonly text: string) {
    this.sha = createHash('sha1').update(text).digest('hex');
  }
}

/** Run `script` atomically on Redis: one round trip (two when Redis has to be taught it again). */
export async function runScript(client: RedisClient, script: Script, keys: readonly string[], args: readonly string[]): Promise<unknown> {
  try {
    return await client.sendCommand(['EVALSHA', script.sha, String(keys.length), ...keys, ...args]);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return client.sendCommand(['EVAL', script.text, String(keys.length), ...keys, ...args]);
  }
}

/**
 * A client that fails a command at once while disconnected instead of queueing it (callers
 * decide what a down store means), reconnects by itself, and waits at most `timeoutMs` for a reply.
 * Its commands are counted per request (redis-trace.ts).
 */
export function createRedisClient(url: string, timeoutMs = 1000): RedisClient {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: Math.min(timeoutMs, 1000), reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000) },
    commandOptions: { timeout: timeoutMs },
  } as Parameters<typeof createClient>[0]);
  // Errors surface on each command; the client reconnects by itself.
  client.on('error', () => {});
  return instrumentRedisClient(client);
}
