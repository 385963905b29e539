/**
 * `switchboard logs`: the conversation log. Lists or searches conversations; `logs show ID`
 * prints one, turn by turn. The SQLite store loads when the command runs.
 */
import type { Command } from 'commander';
import type { ConversationLog } from '../store/conversation-log.js';
import { formatCost } from './chat/format.js';
import { CLIError, parseNumber, type CliIO } from './io.js';

/** Open the log for reading, or fail with one line. */
export async function openLogForCommand(io: CliIO): Promise<ConversationLog> {
  const { openConversationLog } = await import('../store/conversation-log.js');
  let reason = 'unavailable';
  const log = openConversationLog({ env: io.env, readonly: true, warn: (m) => (reason = m) });
  if (!log) throw new CLIError(reason, 1);
  return log;
}

/** "No such conversation" or "ambiguous prefix", said as what to do; both are the user's to fix (exit 2). */
export function notFound(log: ConversationLog, id: string): CLIError {
  const ids = log.matchingIds(id, 4);
  if (ids.length > 1) return new CLIError(`"${id}" starts ${ids.length > 3 ? 'more than 3' : ids.length} conversation ids (${ids.slice(0, 3).join(', ')}${ids.length > 3 ? ', ...' : ''}); give more of the id.`);
  return new CLIError(`no conversation "${id}" in the log; "switchboard logs" lists them.`);
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function table(rows: string[][], right: Set<number>): string {
  const widths = (rows[0] ?? []).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (right.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0))).join('  ').trimEnd()).join('\n');
}

export function registerLogs(program: Command, io: CliIO): void {
  const logs = program
    .command('logs')
    .description('List or search logged conversations (newest first); "logs show ID" prints one.')
    .option('--json', 'one JSON object per line')
    .option('-n, --limit <n>', 'how many conversations', '20')
    .option('--search <text>', 'only conversations whose messages or replies contain this')
    .action(async (flags: { json?: boolean; limit: string; search?: string }) => {
      const limit = parseNumber(flags.limit, '-n/--limit', { min: 1, integer: true }) ?? 20;
      const log = await openLogForCommand(io);
      try {
        const list = log.list({ limit, ...(flags.search === undefined ? {} : { search: flags.search }) });
        if (flags.json) {
          io.stdout.write(list.map((c) => `${JSON.stringify(c)}\n`).join(''));
          return;
        }
        if (list.length === 0) {
          io.stderr.write(flags.search ? `No conversation mentions "${flags.search}".\n` : 'No conversation logged yet.\n');
          return;
        }
        const rows = [['ID', 'STARTED', 'STATUS', 'MODELS', 'TURNS', 'TOKENS', 'COST', 'FIRST MESSAGE']];
        for (const c of list) {
          rows.push([c.id, c.startedAt.slice(0, 16).replace('T', ' '), c.status, oneLine(c.models.join(','), 40), String(c.turns), String(c.tokens), formatCost(c.cost), oneLine(c.firstMessage, 50)]);
        }
        io.stdout.write(`${table(rows, new Set([4, 5, 6]))}\n`);
      } finally {
        log.close();
      }
    });

  logs
    .command('show')
    .description('Print one conversation: each turn with its model, provider, tokens and cost.')
    .argument('<id>', 'conversation id (or a unique prefix)')
    .option('--json', 'the conversation as one JSON object')
    .action(async (id: string, flags: { json?: boolean }) => {
      const log = await openLogForCommand(io);
      try {
        const found = log.show(id);
        if (!found) throw notFound(log, id);
        if (flags.json || logs.opts<{ json?: boolean }>().json) {
          io.stdout.write(`${JSON.stringify(found)}\n`);
          return;
        }
        const { summary, turns } = found;
        let out = `Conversation ${summary.id} · started ${summary.startedAt} · ${summary.status} · ${summary.models.join(', ')}\n`;
        out += `${summary.turns} turns · ${summary.tokens} tokens · ${formatCost(summary.cost)}\n`;
        if (summary.byModel.length > 1) {
          for (const m of summary.byModel) out += `  ${m.model} (${m.provider}): ${m.turns} ${m.turns === 1 ? 'turn' : 'turns'} · ${m.tokens} tokens · ${formatCost(m.cost)}\n`;
        }
        let seq = -1;
        for (const t of turns) {
          if (t.replaced) continue;
          if (t.seq !== seq) {
            seq = t.seq;
            out += `\n> ${t.user}\n`;
          }
          const meta = t.error
            ? `failed: ${t.error}`
            : `${t.provider ?? '?'} · ${t.promptTokens}+${t.completionTokens} tok · ${formatCost(t.cost)}${t.ttftMs === null ? '' : ` · ttft ${Math.round(t.ttftMs)} ms`}`;
          out += `── ${t.model} (${meta}) ──\n${t.reply ?? ''}\n`;
        }
        io.stdout.write(out);
      } finally {
        log.close();
      }
    });
}
