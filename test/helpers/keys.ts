/** Stores, keys and requests for the virtual-key tests: a real SQLite ledger in a fresh folder. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { estimateTokens } from '../../src/catalog/context.js';
import { BudgetAdmission, type BudgetAdmissionOptions } from '../../src/gateway/budget-admission.js';
import { VirtualKeys } from '../../src/gateway/virtual-keys.js';
import { SQLiteLedger } from '../../src/store/ledger.js';
import { ManualClock, MemorySharedState } from '../../src/store/shared-state.js';
import { SIM_PROVIDERS } from '../../src/sim/profiles.js';
import type { CanonicalRequest } from '../../src/types.js';

export const PEPPER = Buffer.from('test-pepper');

export function chatRequest(text: string, maxTokens?: number): CanonicalRequest {
  return { model: 'llama', messages: [{ role: 'user', content: text }], params: maxTokens === undefined ? {} : { maxTokens }, stream: false };
}

/** The worst case of `chatRequest(text, maxTokens)` on a sim provider, worked out by hand in femto-dollars. */
export function worstFemto(provider: keyof typeof SIM_PROVIDERS, text: string, maxTokens: number): bigint {
  const p = SIM_PROVIDERS[provider] as { inputPrice: number; outputPrice: number };
  const prompt = estimateTokens(chatRequest(text).messages);
  return BigInt(prompt) * BigInt(Math.round(p.inputPrice * 1e9)) + BigInt(maxTokens) * BigInt(Math.round(p.outputPrice * 1e9));
}

export interface KeyStores {
  dir: string;
  ledger: SQLiteLedger;
  state: MemorySharedState;
  clock: ManualClock;
  keys: VirtualKeys;
  admission: BudgetAdmission;
}

export async function keyStores(options: Partial<BudgetAdmissionOptions> & { dir?: string; ttlMs?: number; masterKey?: string } = {}): Promise<KeyStores> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'sb-keys-'));
  const clock = options.clock instanceof ManualClock ? options.clock : new ManualClock(Date.now());
  const ledger = new SQLiteLedger(join(dir, 'ledger.db'));
  const state = new MemorySharedState({ clock, ...(options.ttlMs === undefined ? {} : { reservationTtlMs: options.ttlMs }) });
  const keys = new VirtualKeys({ ledger, pepper: PEPPER, clock, ...(options.masterKey === undefined ? {} : { masterKey: options.masterKey }) });
  const admission = await BudgetAdmission.open({ ledger, state, clock, log: () => {}, ...options });
  return { dir, ledger, state, clock, keys, admission };
}
