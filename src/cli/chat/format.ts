/** The short lines printed after a turn: comparison, cost, provider, usage. */
import type { ChatJSON } from '../../chat.js';
import type { UsageRow } from '../../store/conversation-log.js';
import { dollarsToFemto, femtoToDollars, formatDollars } from '../../money.js';
import type { TurnResult, Usage } from '../../types.js';

/** `$0.000204` (rounded half up, see money.ts); null is "price unknown". */
export function formatCost(cost: number | null): string {
  return cost === null ? 'price unknown' : formatDollars(dollarsToFemto(cost));
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
 * `(cost: $0.000204 this turn, $0.001020 this session)`; a resumed chat adds what the whole
 * conversation cost, since "this session" counts only the turns paid for since it started.
 * Then what caching saved over the conversation when it is not zero (`, $0.000310 saved by
 * caching`; one that has only written the provider's cache so far paid extra:
 * `, caching $0.000040 extra so far`).
 */
export function costLine(turn: number | null, session: number | null, conversation?: number | null, saved = 0): string {
  const whole = conversation === undefined || conversation === session ? '' : `, ${formatCost(conversation)} the whole conversation`;
  const caching = saved > 0 ? `, ${formatCost(saved)} saved by caching` : saved < 0 ? `, caching ${formatCost(-saved)} extra so far` : '';
  return `(cost: ${formatCost(turn)} this turn, ${formatCost(session)} this session${whole}${caching})`;
}

/** What caching saved over a chat's models (see Usage.savedCost), summed exactly. */
export function sumSaved(usages: Usage[]): number {
  return femtoToDollars(usages.reduce((total, u) => (u.savedCost === undefined ? total : total + dollarsToFemto(u.savedCost)), 0n));
}

/** `(provider: sim-fast)`, or per model when several answered. */
export function providerLine(results: TurnResult[]): string {
  if (results.length === 1) return `(provider: ${(results[0] as TurnResult).provider})`;
  return `(providers: ${results.map((r) => `${r.model} → ${r.provider}`).join(', ')})`;
}

/** Tokens and cost of the turns one model answered at one provider: the figures of a `usage` row. */
export interface Attribution extends Omit<UsageRow, 'key'> {
  model: string;
  provider: string;
}

/**
 * A chat's usage attributed to whoever answered each turn: one row per model and provider,
 * in order of first answer. After `/model`, the earlier turns stay under the earlier model.
 * Usage the turns do not account for (restored without its turns, or a reply replaced by
 * `/retry`, which was paid for) goes to the model that holds it, provider "(replaced)".
 */
export function attributeUsage(json: ChatJSON): Attribution[] {
  const rows = new Map<string, Attribution>();
  const add = (model: string, provider: string, turns: number, u: Usage): void => {
    const key = `${model}\u0000${provider}`;
    const row = rows.get(key) ?? { model, provider, turns: 0, promptTokens: 0, completionTokens: 0, totalTokens: 0, cost: null, costFemto: null };
    row.turns += turns;
    row.promptTokens += u.promptTokens;
    row.completionTokens += u.completionTokens;
    row.totalTokens += u.totalTokens;
    if (u.cost !== null) row.costFemto = (row.costFemto ?? 0n) + dollarsToFemto(u.cost);
    rows.set(key, row);
  };
  for (const held of json.models) {
    const turns = json.turns[held] ?? [];
    for (const t of turns) add(t.model, t.provider, 1, t.usage);
    const total = json.usage[held];
    if (!total) continue;
    const counted = turns.reduce((n, t) => n + t.usage.totalTokens, 0);
    if (total.totalTokens > counted) {
      const countedFemto = turns.reduce((n, t) => n + (t.usage.cost === null ? 0n : dollarsToFemto(t.usage.cost)), 0n);
      const restFemto = (total.cost === null ? 0n : dollarsToFemto(total.cost)) - countedFemto;
      const sum = (k: 'promptTokens' | 'completionTokens'): number => Math.max(0, total[k] - turns.reduce((n, t) => n + t.usage[k], 0));
      add(held, '(replaced)', 0, { promptTokens: sum('promptTokens'), completionTokens: sum('completionTokens'), totalTokens: Math.max(0, total.totalTokens - counted), cost: restFemto > 0n ? femtoToDollars(restFemto) : null });
    }
  }
  return [...rows.values()].map((row) => ({ ...row, cost: row.costFemto === null ? null : femtoToDollars(row.costFemto) }));
}

/** `/usage` rows: per model and provider that answered, tokens and cost so far, and a total. */
export function usageLines(json: ChatJSON): string[] {
  const attributed = attributeUsage(json);
  const rows = attributed.map((a) => [a.model, a.provider, String(a.turns), String(a.promptTokens), String(a.completionTokens), String(a.totalTokens), formatCost(a.cost)]);
  rows.unshift(['MODEL', 'PROVIDER', 'TURNS', 'PROMPT', 'COMPLETION', 'TOTAL', 'COST']);
  if (attributed.length > 1) {
    const tokens = attributed.reduce((n, a) => n + a.totalTokens, 0);
    rows.push(['all models', '', String(attributed.reduce((n, a) => n + a.turns, 0)), '', '', String(tokens), formatCost(attributed.every((a) => a.costFemto === null) ? null : femtoToDollars(attributed.reduce((n, a) => n + (a.costFemto ?? 0n), 0n)))]);
  }
  if (attributed.length === 0) rows.push([json.models.join(', '), '-', '0', '0', '0', '0', '$0']);
  const widths = (rows[0] as string[]).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ').trimEnd());
}
