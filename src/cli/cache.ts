/**
 * `switchboard cache stats|clear`: the response cache the command line uses (`ask --cache`),
 * an SQLite file under $SWITCHBOARD_HOME.
 */
import type { Command } from 'commander';
import { formatCost } from './chat/format.js';
import type { CliIO } from './io.js';

/** The command line's cache store; the driver loads only when a command needs it. */
export async function openCommandCache(io: CliIO): Promise<import('../cache/sqlite-store.js').SQLiteCacheStore> {
  const { SQLiteCacheStore } = await import('../cache/sqlite-store.js');
  return new SQLiteCacheStore({ env: io.env });
}

function mebibytes(bytes: number): string {
  return `${(bytes / 1048576).toFixed(bytes < 1048576 ? 3 : 1)} MiB`;
}

export function registerCache(program: Command, io: CliIO): void {
  const cache = program.command('cache').description('The response cache of `ask --cache`: what it holds and saved, or empty it.');
  cache
    .command('stats')
    .description('Entries, size, hits, misses and the cost saved.')
    .option('--json', 'one JSON object')
    .action(async (flags: { json?: boolean }) => {
      const store = await openCommandCache(io);
      try {
        const s = store.stats();
        const saved = Number(s.savedFemto) / 1e15;
        if (flags.json) {
          io.stdout.write(`${JSON.stringify({ path: store.path, entries: s.entries, bytes: s.bytes, maxBytes: s.maxBytes, hits: s.hits, misses: s.misses, savedCost: saved })}\n`);
          return;
        }
        const lookups = s.hits + s.misses;
        const rate = lookups === 0 ? '' : ` (${((100 * s.hits) / lookups).toFixed(1)}% hits)`;
        io.stdout.write(
          [
            `file     ${store.path}`,
            `entries  ${s.entries}`,
            `size     ${mebibytes(s.bytes)} of ${mebibytes(s.maxBytes)}`,
            `hits     ${s.hits}, misses ${s.misses}${rate}`,
            `saved    ${formatCost(saved)}`,
          ].join('\n') + '\n',
        );
      } finally {
        store.close();
      }
    });
  cache
    .command('clear')
    .description('Remove the cached replies (and reset the counters, unless --namespace is given).')
    .option('--namespace <name>', 'only the entries of this namespace')
    .action(async (flags: { namespace?: string }) => {
      const store = await openCommandCache(io);
      try {
        const removed = store.clear(flags.namespace);
        if (flags.namespace === undefined) store.resetCounters();
        io.stdout.write(`Removed ${removed} cached ${removed === 1 ? 'reply' : 'replies'}.\n`);
      } finally {
        store.close();
      }
    });
}
