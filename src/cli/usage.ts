/** `switchboard usage`: tokens and cost from the conversation log by model, provider or day, or from the gateway's ledger (ledger-usage.ts). */
import type { Command } from 'commander';
import { femtoToDollars } from '../money.js';
import { formatCost } from './chat/format.js';
import type { UsageRow } from '../store/conversation-log.js';
import { openLogForCommand } from './logs.js';
import { CLIError, type CliIO } from './io.js';

const BY = ['model', 'provider', 'day'] as const;
/** Groupings only the gateway's ledger has. */
const LEDGER_ONLY = ['key', 'team'];

export function registerUsage(program: Command, io: CliIO): void {
  program
    .command('usage')
    .description('Total tokens and cost of logged chats by model, provider or day; of gateway requests (--ledger) also by key or team.')
    .option('--by <key>', `group by ${BY.join(', ')}; for the ledger also key, team`, 'model')
    .option('--since <date>', 'only turns from this date on (YYYY-MM-DD or an ISO time)')
    .option('--json', 'one JSON object per line')
    .option('--ledger', "the gateway's spend ledger instead of the chat log (implied by --by key and --by team)")
    .option('--csv', 'comma-separated values (ledger)')
    .option('-c, --config <file>', 'gateway config whose ledger to read (default: $SWITCHBOARD_GATEWAY_CONFIG)')
    .action(async (flags: { by: string; since?: string; json?: boolean; ledger?: boolean; csv?: boolean; config?: string }) => {
      let since: string | undefined;
      if (flags.since !== undefined) {
        const at = new Date(flags.since);
        if (Number.isNaN(at.getTime())) throw new CLIError(`--since takes a date like 2025-01-31; got "${flags.since}".`);
        since = at.toISOString();
      }
      if (flags.ledger || flags.csv || LEDGER_ONLY.includes(flags.by)) {
        const { printLedgerUsage } = await import('./ledger-usage.js');
        await printLedgerUsage({ ...flags, ...(since === undefined ? {} : { sinceMs: Date.parse(since) }) }, io);
        return;
      }
      if (!(BY as readonly string[]).includes(flags.by)) throw new CLIError(`--by takes ${BY.join(', ')}; got "${flags.by}".`);
      const log = await openLogForCommand(io);
      try {
        const rows = log.usage({ by: flags.by as (typeof BY)[number], ...(since === undefined ? {} : { since }) });
        if (flags.json) {
          io.stdout.write(rows.map((r) => `${JSON.stringify({ [flags.by]: r.key, turns: r.turns, promptTokens: r.promptTokens, completionTokens: r.completionTokens, totalTokens: r.totalTokens, cost: r.cost, savedCost: femtoToDollars(r.savedFemto ?? 0n) })}\n`).join(''));
          return;
        }
        if (rows.length === 0) {
          io.stderr.write(since === undefined ? 'Nothing logged yet.\n' : `Nothing logged since ${since}${Date.parse(since) > Date.now() ? ' (that is in the future)' : ''}.\n`);
          return;
        }
        // A SAVED column (what caching saved) only when caching saved or cost something.
        const saved = rows.some((r) => (r.savedFemto ?? 0n) !== 0n);
        const savedCell = (femto: bigint): string[] => (saved ? [formatCost(femtoToDollars(femto))] : []);
        const table = [[flags.by.toUpperCase(), 'TURNS', 'PROMPT', 'COMPLETION', 'TOTAL', 'COST', ...(saved ? ['SAVED'] : [])]];
        for (const r of rows) table.push([r.key, String(r.turns), String(r.promptTokens), String(r.completionTokens), String(r.totalTokens), formatCost(r.cost), ...savedCell(r.savedFemto ?? 0n)]);
        table.push(['total', String(rows.reduce((n, r) => n + r.turns, 0)), String(rows.reduce((n, r) => n + r.promptTokens, 0)), String(rows.reduce((n, r) => n + r.completionTokens, 0)), String(rows.reduce((n, r) => n + r.totalTokens, 0)), formatCost(totalCost(rows)), ...savedCell(rows.reduce((n, r) => n + (r.savedFemto ?? 0n), 0n))]);
        const widths = (table[0] as string[]).map((_, c) => Math.max(...table.map((r) => (r[c] ?? '').length)));
        io.stdout.write(`${table.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')).join('\n')}\n`);
      } finally {
        log.close();
      }
    });
}

/** The exact total of the rows' costs; null when no row has a known price. */
function totalCost(rows: UsageRow[]): number | null {
  if (rows.every((r) => r.costFemto === null)) return null;
  return femtoToDollars(rows.reduce((n, r) => n + (r.costFemto ?? 0n), 0n));
}
