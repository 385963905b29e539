/**
 * Routing state shared by every gateway instance on one Redis (docs/deploy.md): the
 * measurements the router ranks deployments by (`SharedMetricsStore` on a
 * `RedisMetricsBackend`) and the circuit breakers (`RedisBreakerSync`). Installed as the
 * router's process-wide defaults, so the gateway's request path is the same with or without it.
 */
import { hostname } from 'node:os';
import { setRoutingDefaults } from '../routing/router.js';
import { RedisBreakerSync } from '../store/redis-breakers.js';
import { RedisMetricsBackend } from '../store/redis-metrics-backend.js';
import { createRedisClient } from '../store/redis-scripts.js';
import { SharedMetricsStore } from '../store/shared-metrics.js';

export interface SharedRouting {
  metrics: SharedMetricsStore;
  breakers: RedisBreakerSync;
  close(): Promise<void>;
}

export async function openSharedRouting(options: { redisUrl: string; instance?: string | undefined; warn: (message: string) => void }): Promise<SharedRouting> {
  const instance = options.instance ?? `${hostname()}-${process.pid}`;
  const client = createRedisClient(options.redisUrl);
  await client.connect();
  const metrics = new SharedMetricsStore({ backend: new RedisMetricsBackend({ client }), instance, warn: options.warn });
  const breakers = await RedisBreakerSync.open({ client, instance, warn: options.warn });
  setRoutingDefaults({ metrics, breakers: breakers.breakers });
  return {
    metrics,
    breakers,
    close: async () => {
      metrics.close();
      await metrics.sync().catch(() => {});
      await breakers.close();
      if (client.isOpen) await client.close();
    },
  };
}
