/** `switchboard usage`: tokens and cost from the conversation log, by model, provider or day. */
import type { Command } from 'commander';
import { femtoToDollars } from '../money.js';
import { formatCost } from './chat/format.js';
import type { UsageRow } from '../store/conversation-log.js';
import { openLogForCommand } from './logs.js';
import { CLIError, type CliIO } from './io.js';

const BY = ['model', 'provider', 'day'] as const;

export function registerUsage(program: Command, io: CliIO): void {
  program
    .command('usage')
    .description('Total tokens and cost of logged chats, by model, provider or day.')
    .option('--by <key>', `group by ${BY.join(', ')}`, 'model')
    .option('--since <date>', 'only turns from this date on (YYYY-MM-DD or an ISO time)')
    .option('--json', 'one JSON object per line')
    .action(async (flags: { by: string; since?: string; json?: boolean }) => {
      if (!(BY as readonly string[]).includes(flags.by)) throw new CLIError(`--by takes ${BY.join(', ')}; got "${flags.by}".`);
      let since: string | undefined;
      if (flags.since !== undefined) {
        const at = new Date(flags.since);
        if (Number.isNaN(at.getTime())) throw new CLIError(`--since takes a date like 2025-01-31; got "${flags.since}".`);
        since = at.toISOString();
      }
      const log = await openLogForCommand(io);
      try {
        const rows = log.usage({ by: flags.by as (typeof BY)[number], ...(since === undefined ? {} : { since }) });
        if (flags.json) {
          io.stdout.write(rows.map((r) => `${JSON.stringify({ [flags.by]: r.key, turns: r.turns, promptTokens: r.promptTokens, completionTokens: r.completionTokens, totalTokens: r.totalTokens, cost: r.cost })}\n`).join(''));
          return;
        }
        if (rows.length === 0) {
          io.stderr.write(since === undefined ? 'Nothing logged yet.\n' : `Nothing logged since ${since}${Date.parse(since) > Date.now() ? ' (that is in the future)' : ''}.\n`);
          return;
        }
        const table = [[flags.by.toUpperCase(), 'TURNS', 'PROMPT', 'COMPLETION', 'TOTAL', 'COST']];
        for (const r of rows) table.push([r.key, String(r.turns), String(r.promptTokens), String(r.completionTokens), String(r.totalTokens), formatCost(r.cost)]);
        table.push(['total', String(rows.reduce((n, r) => n + r.turns, 0)), String(rows.reduce((n, r) => n + r.promptTokens, 0)), String(rows.reduce((n, r) => n + r.completionTokens, 0)), String(rows.reduce((n, r) => n + r.totalTokens, 0)), formatCost(totalCost(rows))]);
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
