/**
 * Several processes on one conversation log: a fresh file whose schema they all race to
 * create, then turns written as fast as each can. Nothing may be lost. And a chat whose log
 * fails for a while writes the missed turns once it works again.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Chat } from '../src/index.js';
import { ChatSession } from '../src/cli/chat/session.js';
import { createStyle } from '../src/cli/chat/style.js';
import { defaultRegistry } from '../src/providers/registry.js';
import { SQLiteConversationLog } from '../src/store/conversation-log.js';

const LOG_MODULE = new URL('../dist/store/conversation-log.js', import.meta.url).href;

/** A process that opens the log at `startAt` (all at once) and records `turns` turns. */
function writer(path: string, name: string, turns: number, startAt: number): Promise<{ status: number | null; stderr: string }> {
  const script = `
    const { SQLiteConversationLog } = await import(${JSON.stringify(LOG_MODULE)});
    while (Date.now() < ${startAt}) {}
    const log = new SQLiteConversationLog({ path: ${JSON.stringify(path)} });
    const id = log.create(['sim/llama'], undefined);
    for (let i = 0; i < ${turns}; i++) {
      const result = { model: 'sim/llama', provider: 'sim-fast', resolvedModel: 'llama', text: 'reply ' + i, usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2, cost: 0 }, ttftMs: 1, latencyMs: 2, tokensPerSecond: null, startedAt: new Date().toISOString() };
      log.recordTurn(id, { user: ${JSON.stringify(name)} + ' ' + i, results: [result], errors: [], state: { n: i }, models: ['sim/llama'] });
    }
    log.close();
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script]);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stderr })));
}

describe('one conversation log, several processes', () => {
  it('four processes creating the schema at once and writing 40 turns each lose nothing', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sb-log-race-')), 'logs.db');
    const startAt = Date.now() + 700;
    const runs = await Promise.all(['a', 'b', 'c', 'd'].map((name) => writer(path, name, 40, startAt)));
    for (const run of runs) expect(run).toEqual({ status: 0, stderr: '' });
    const log = new SQLiteConversationLog({ path, readonly: true });
    const conversations = log.list({ limit: 10 });
    expect(conversations).toHaveLength(4);
    for (const c of conversations) {
      const shown = log.show(c.id);
      expect(shown?.turns.map((t) => t.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    }
    log.close();
  });
  it('opening a new file waits while another process holds its first write, as it waits for any write', async () => {
    // The moment another process is switching the same new file to WAL: its write lock is
    // held, and the switch here (a read upgraded to a write) is refused without SQLite's wait.
    const path = join(mkdtempSync(join(tmpdir(), 'sb-log-convert-')), 'logs.db');
    const holder = spawn(process.execPath, ['-e', `
      const db = new (require('better-sqlite3'))(${JSON.stringify(path)});
      db.exec('BEGIN IMMEDIATE');
      process.stdout.write('held');
      setTimeout(() => { db.exec('COMMIT'); db.close(); }, 300);
    `], { cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => holder.stdout.once('data', resolve));
    const log = new SQLiteConversationLog({ path });
    const id = log.create(['sim/llama'], undefined);
    expect(log.list().map((c) => c.id)).toEqual([id]);
    log.close();
    await new Promise((resolve) => holder.on('close', resolve));
  });
});

describe('a chat whose log fails for a while', () => {
  it('says so once, carries on, and writes the missed turns on the next turn that can', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sb-log-recover-')), 'logs.db');
    const log = new SQLiteConversationLog({ path, busyTimeoutMs: 20 });
    const stderr: string[] = [];
    const io = { stdout: { write: () => true }, stderr: { write: (s: string) => stderr.push(s) }, stdin: new PassThrough(), env: {}, cwd: process.cwd() };
    const session = new ChatSession(new Chat('sim/llama'), { io, env: {}, registry: defaultRegistry, style: createStyle(false), live: false, showCost: false, showProvider: false });
    session.useLog(Promise.resolve(log));

    await session.send('say: one');
    // Another program holds the write lock through the next two turns.
    const holder = new Database(path);
    holder.exec('BEGIN IMMEDIATE; INSERT INTO schema_version (version) SELECT version FROM schema_version WHERE 0;');
    await session.send('say: two');
    await session.send('say: three');
    expect(stderr.join('')).toMatch(/the conversation log failed \(database is locked\); this turn will be written with the next one/);
    expect(stderr.filter((l) => l.includes('failed'))).toHaveLength(1);
    holder.exec('ROLLBACK');
    holder.close();
    await session.send('say: four');
    expect(stderr.join('')).toMatch(/works again/);
    await session.leave('ended');

    const reader = new SQLiteConversationLog({ path, readonly: true });
    const [conversation] = reader.list();
    const turns = reader.show(conversation!.id)!.turns;
    expect(turns.map((t) => [t.seq, t.user, t.reply])).toEqual([
      [1, 'say: one', 'one'],
      [2, 'say: two', 'two'],
      [3, 'say: three', 'three'],
      [4, 'say: four', 'four'],
    ]);
    reader.close();
  });
});
