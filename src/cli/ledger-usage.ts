/**
 * `switchboard usage --ledger` (implied by `--by key` and `--by team`): the gateway's spend
 * ledger, grouped by key, team, model, provider or day, with sums exact to the femto-dollar.
 */
import type { CliIO } from './io.js';
import { CLIError } from './io.js';
import { withLedger } from './keys.js';

export interface LedgerUsageFlags {
  by: string;
  sinceMs?: number;
  json?: boolean;
  csv?: boolean;
  config?: string;
}

/** `25.000000` as `$25.000000`, `-0.000100` as `-$0.000100`. */
const money = (formatted: string): string => (formatted.startsWith('-') ? `-$${formatted.slice(1)}` : `$${formatted}`);

const csvCell = (v: unknown): string => {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};

export async function printLedgerUsage(flags: LedgerUsageFlags, io: CliIO): Promise<void> {
  const { USAGE_GROUPS } = await import('../store/ledger.js');
  if (!(USAGE_GROUPS as readonly string[]).includes(flags.by)) throw new CLIError(`--by takes ${USAGE_GROUPS.join(', ')} for the ledger; got "${flags.by}".`);
  await withLedger(flags, io, async ({ ledger, input, timeZone }) => {
    const rows = await ledger.usage({ by: flags.by as (typeof USAGE_GROUPS)[number], timeZone, ...(flags.sinceMs === undefined ? {} : { sinceMs: flags.sinceMs }) });
    const views = rows.map((r) => input.usageView(flags.by, r));
    if (flags.json) return void io.stdout.write(views.map((v) => `${JSON.stringify(v)}\n`).join(''));
    if (flags.csv) {
      const header = Object.keys(views[0] ?? input.usageView(flags.by, { key: '', requests: 0, promptTokens: 0, completionTokens: 0, costFemto: 0n, unpriced: 0, savedFemto: 0n }));
      return void io.stdout.write([header, ...views.map((v) => Object.values(v))].map((r) => r.map(csvCell).join(',')).join('\n') + '\n');
    }
    if (rows.length === 0) return void io.stderr.write('The ledger has no requests yet.\n');
    const total = rows.reduce(
      (a, r) => ({ requests: a.requests + r.requests, prompt: a.prompt + r.promptTokens, completion: a.completion + r.completionTokens, cost: a.cost + r.costFemto, saved: a.saved + r.savedFemto }),
      { requests: 0, prompt: 0, completion: 0, cost: 0n, saved: 0n },
    );
    // A SAVED column (response-cache hits and prompt-cache discounts) only when caching saved or cost something.
    const saved = rows.some((r) => r.savedFemto !== 0n);
    const savedCell = (femto: bigint): string[] => (saved ? [money(input.formatFemto(femto))] : []);
    const table = [[flags.by.toUpperCase(), 'REQUESTS', 'PROMPT', 'COMPLETION', 'COST', ...(saved ? ['SAVED'] : [])]];
    for (const r of rows) table.push([r.key, String(r.requests), String(r.promptTokens), String(r.completionTokens), `${money(input.formatFemto(r.costFemto))}${r.unpriced > 0 ? ` (+${r.unpriced} unpriced)` : ''}`, ...savedCell(r.savedFemto)]);
    table.push(['total', String(total.requests), String(total.prompt), String(total.completion), money(input.formatFemto(total.cost)), ...savedCell(total.saved)]);
    const widths = (table[0] as string[]).map((_, c) => Math.max(...table.map((r) => (r[c] ?? '').length)));
    io.stdout.write(`${table.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')).join('\n')}\n`);
  });
}
