/**
 * Everything virtual keys need, opened from the gateway's config: the ledger, the shared
 * state, the authenticator, the admission, the admin API and the readiness check. The
 * embedded stores are SQLite and memory; shared ones plug in behind the same interfaces.
 */
import { ledgerPath, SQLiteLedger, type Ledger } from '../store/ledger.js';
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
  const path = vk.ledger ?? ledgerPath(config.env);
  const ledger = new SQLiteLedger(path);
  const state = new MemorySharedState({ clock, ...(vk.reservationTtlMs === undefined ? {} : { reservationTtlMs: vk.reservationTtlMs }) });
  const keys = new VirtualKeys({ ledger, pepper: loadPepper(config.env), clock, onStoreError: vk.onStoreError, ...(config.masterKey === undefined ? {} : { masterKey: config.masterKey }) });
  const admission = await BudgetAdmission.open({
    ledger,
    state,
    clock,
    timeZone: vk.timeZone,
    onStoreError: vk.onStoreError,
    unpricedModels: vk.unpricedModels,
    ...(vk.defaultMaxTokens === undefined ? {} : { defaultMaxTokens: vk.defaultMaxTokens }),
    ...(vk.totalBudget ? { totalBudget: { limitMicros: parseDollars(vk.totalBudget.amount, 'virtual_keys.total_budget.amount'), period: vk.totalBudget.period } } : {}),
    ...(options.log ? { log: options.log } : {}),
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
