/**
 * Everything virtual keys need, opened from the gateway's config: the ledger, the shared
 * state, the authenticator, the admission, the admin API and the readiness check. The
 * embedded stores are SQLite and memory; with a Redis URL the shared state is Redis (and, in
 * open mode, falls back to this instance's own limits while Redis is down), with a database
 * URL the ledger is Postgres, its spend queued on Redis when there is one (docs/deploy.md).
 */
import { FailoverSharedState } from '../store/failover-shared-state.js';
import { ledgerPath, SQLiteLedger, type Ledger } from '../store/ledger.js';
import { PostgresLedger } from '../store/postgres-ledger.js';
import { RedisSharedState } from '../store/redis-shared-state.js';
import { MemorySharedState, systemClock, type Clock, type SharedState } from '../store/shared-state.js';
import { createAdminApi, type AdminHandler } from './admin-api.js';
import { BudgetAdmission } from './budget-admission.js';
import type { GatewayConfig } from './config.js';
import { parseDollars } from './key-input.js';
import { loadPepper, VirtualKeys } from './virtual-keys.js';

export interface VirtualKeyStack {
  ledger: Ledger;
  ledgerPath: string;
  state: SharedState;
  keys: VirtualKeys;
  admission: BudgetAdmission;
  admin: AdminHandler;
  readiness: () => { ready: boolean; detail: Record<string, unknown> };
  close(): Promise<void>;
}

export async function openVirtualKeyStack(config: GatewayConfig, options: { clock?: Clock; log?: (line: string) => void } = {}): Promise<VirtualKeyStack> {
  const vk = config.virtualKeys;
  const clock = options.clock ?? systemClock;
  const ttl = vk.reservationTtlMs === undefined ? {} : { reservationTtlMs: vk.reservationTtlMs };
  const log = options.log ?? ((line: string) => process.stderr.write(`switchboard: ${line}\n`));
  const path = vk.databaseUrl === undefined ? (vk.ledger ?? ledgerPath(config.env)) : redactUrl(vk.databaseUrl);
  const ledger: Ledger =
    vk.databaseUrl === undefined
      ? new SQLiteLedger(path, { spendWrites: 'worker' })
      : await PostgresLedger.open({ url: vk.databaseUrl, log, ...(vk.redisUrl === undefined ? {} : { queueUrl: vk.redisUrl }), ...(config.env.SWITCHBOARD_INSTANCE ? { instance: config.env.SWITCHBOARD_INSTANCE } : {}) });
  // The ledger's queue and the shared state on one Redis: a settlement is one script for both.
  const journal = ledger instanceof PostgresLedger && vk.redisUrl !== undefined ? { journal: ledger } : {};
  let state: SharedState;
  if (vk.redisUrl === undefined) state = new MemorySharedState({ clock, ...ttl });
  else {
    const redis = await RedisSharedState.open({ url: vk.redisUrl, ...ttl });
    state = vk.onStoreError === 'open' ? new FailoverSharedState(redis, log, ttl) : redis;
  }
  const keys = new VirtualKeys({ ledger, pepper: loadPepper(config.env), clock, onStoreError: vk.onStoreError, ...(config.masterKey === undefined ? {} : { masterKey: config.masterKey }) });
  const admission = await BudgetAdmission.open({
    ledger,
    state,
    clock,
    timeZone: vk.timeZone,
    onStoreError: vk.onStoreError,
    unpricedModels: vk.unpricedModels,
    ...(vk.defaultMaxTokens === undefined ? {} : { defaultMaxTokens: vk.defaultMaxTokens }),
    ...journal,
    ...(vk.totalBudget ? { totalBudget: { limitMicros: parseDollars(vk.totalBudget.amount, 'virtual_keys.total_budget.amount'), period: vk.totalBudget.period } } : {}),
    log,
  });
  return {
    ledger,
    ledgerPath: path,
    state,
    keys,
    admission,
    admin: createAdminApi({ ledger, keys, clock, timeZone: vk.timeZone }),
    readiness: () => {
      const h = admission.health();
      // Open mode serves through a store outage, so it stays ready; closed mode refuses, so it is not.
      return { ready: h.store === 'ok' || h.mode === 'open', detail: { ledger: h.store, onStoreError: h.mode, queuedWrites: h.queued } };
    },
    close: async () => {
      await state.close();
      await ledger.close();
    },
  };
}

/** A database URL without its password, for banners and /readyz. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres';
  }
}
