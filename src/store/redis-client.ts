/**
 * A Redis client that fails fast: a command fails at once while disconnected (no offline
 * queue) and after `timeoutMs` when Redis does not answer, so each caller decides what a down
 * store means; the client reconnects by itself, backing off up to a second.
 */
import { createClient } from 'redis';

export type RedisClient = ReturnType<typeof createClient>;

export function failFastRedisClient(url: string, timeoutMs: number): RedisClient {
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: timeoutMs, reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 1000) },
    commandOptions: { timeout: timeoutMs },
  } as Parameters<typeof createClient>[0]);
  // Errors surface on each command; the client reconnects by itself.
  client.on('error', () => {});
  return client;
}
