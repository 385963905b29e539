/** The short lines printed after a turn: comparison, cost, provider, usage. */
import type { TurnResult, Usage } from '../../types.js';
import { addDollars } from '../../usage.js';

/** `$0.000204`; null is "price unknown". */
export function formatCost(cost: number | null): string {
  if (cost === null) return 'price unknown';
  if (cost === 0) return '$0';
  return cost >= 0.01 ? `$${cost.toFixed(4)}` : `$${cost.toFixed(6)}`;
}

/** Sum of costs; null when any is unknown. */
export function sumCost(costs: (number | null)[]): number | null {
  let total = 0;
  for (const c of costs) {
    if (c === null) return null;
    total += c;
  }
  return total;
}

function ms(n: number | null): string {
  return n === null ? '-' : `${Math.round(n)} ms`;
}

/** One model's figures: `sim/llama 12+85 tok · $0.000204 · ttft 120 ms · 220 tok/s`. */
export function compareEntry(r: TurnResult): string {
  const tps = r.tokensPerSecond === null ? '- tok/s' : `${Math.round(r.tokensPerSecond)} tok/s`;
  return `${r.model} ${r.usage.promptTokens}+${r.usage.completionTokens} tok · ${formatCost(r.usage.cost)} · ttft ${ms(r.ttftMs)} · ${tps}`;
}

/** The comparison line of a multi-model turn, models in the chat's order. */
export function compareLine(models: string[], results: Map<string, TurnResult>, failed: Map<string, string>): string {
  const parts = models.map((m) => {
    const r = results.get(m);
    if (r) return compareEntry(r);
    return `${m} ${failed.has(m) ? 'failed' : 'stopped'}`;
  });
  return `compare: ${parts.join(' │ ')}`;
}

/**
 * `(cost: $0.000204 this turn, $0.001020 this session)`, then what caching saved this session
 * when it is not zero (`, $0.000310 saved by caching`; a session that has only written the
 * provider's cache so far paid extra: `, caching $0.000040 extra so far`).
 */
export function costLine(turn: number | null, session: number | null, saved = 0): string {
  const caching = saved > 0 ? `, ${formatCost(saved)} saved by caching` : saved < 0 ? `, caching ${formatCost(-saved)} extra so far` : '';
  return `(cost: ${formatCost(turn)} this turn, ${formatCost(session)} this session${caching})`;
}

/** What caching saved over a chat's models (see Usage.savedCost). */
export function sumSaved(usages: Usage[]): number {
  return usages.reduce((total, u) => (u.savedCost === undefined ? total : addDollars(total, u.savedCost)), 0);
}

/** `(provider: sim-fast)`, or per model when several answered. */
export function providerLine(results: TurnResult[]): string {
  if (results.length === 1) return `(provider: ${(results[0] as TurnResult).provider})`;
  return `(providers: ${results.map((r) => `${r.model} → ${r.provider}`).join(', ')})`;
}

/** `/usage` rows: per model, tokens and cost so far. */
export function usageLines(usage: Record<string, Usage>): string[] {
  const rows = Object.entries(usage).map(([m, u]) => [m, String(u.promptTokens), String(u.completionTokens), String(u.totalTokens), formatCost(u.cost)]);
  const total = sumCost(Object.values(usage).map((u) => u.cost));
  const tokens = Object.values(usage).reduce((n, u) => n + u.totalTokens, 0);
  rows.unshift(['MODEL', 'PROMPT', 'COMPLETION', 'TOTAL', 'COST']);
  if (rows.length > 2) rows.push(['all models', '', '', String(tokens), formatCost(total)]);
  const widths = (rows[0] as string[]).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  '));
}
