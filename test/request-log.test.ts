/**
 * The gateway's request-log writer: batches go to a worker thread that writes them on its own
 * connection, close() leaves every record in the file, and a writer thread that cannot run
 * hands its batches to the main thread, so nothing queued is lost.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RequestLogWriter } from '../src/gateway/request-log.js';
import { SQLiteConversationLog, requestBatchId, type ConversationLog, type RequestRecord } from '../src/store/conversation-log.js';

function record(i: number, model: string): RequestRecord {
  return {
    requestId: `req-${i}`,
    at: new Date(Date.UTC(2026, 11, 2, 12, 0, i % 60)).toISOString(),
    keyId: 'master',
    protocol: 'openai',
    model,
    provider: 'local',
    resolvedModel: 'echo-model',
    user: '',
    reply: null,
    promptTokens: 10,
    completionTokens: 5,
    totalTokens: 15,
    cost: 0.000015,
    costFemto: '15000000000',
    ttftMs: 1,
    latencyMs: 2,
    tokensPerSecond: null,
    overheadMs: 0.1,
    status: 200,
    error: null,
  };
}

function turnsOf(path: string, model: string): number {
  const log = new SQLiteConversationLog({ path });
  try {
    return log.usage({ by: 'model' }).find((r) => r.key === model)?.turns ?? 0;
  } finally {
    log.close();
  }
}

describe('the request-log writer', () => {
  it('writes its batches in a worker thread, and close() leaves every record in the file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sb-reqlog-')), 'logs.db');
    const warnings: string[] = [];
    const writer = new RequestLogWriter(new SQLiteConversationLog({ path }), (m) => warnings.push(m));
    // 1,200 records: two batches of 500 flushed as they fill, the rest by close().
    expect(writer.thread).toBe('worker');
    for (let i = 0; i < 1200; i++) writer.add(record(i, 'worker-written'));
    await writer.close();
    expect(turnsOf(path, 'worker-written')).toBe(1200);
    expect(writer.healthy).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('writes in the main thread when its worker cannot open the log, and loses nothing', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sb-reqlog-')), 'logs.db');
    const real = new SQLiteConversationLog({ path });
    // The worker is told a path under a regular file, which it cannot create; this thread's
    // own connection still works.
    const blocker = join(mkdtempSync(join(tmpdir(), 'sb-reqlog-')), 'not-a-folder');
    writeFileSync(blocker, 'x');
    const log = { path: join(blocker, 'logs.db'), recordRequests: (r: RequestRecord[]) => real.recordRequests(r), close: () => real.close() } as unknown as ConversationLog;
    const warnings: string[] = [];
    const writer = new RequestLogWriter(log, (m) => warnings.push(m));
    for (let i = 0; i < 700; i++) writer.add(record(i, 'fell-back'));
    // The worker's failure to start arrives as an event: the writer is then this thread.
    for (let i = 0; i < 100 && writer.thread === 'worker'; i++) await new Promise((r) => setTimeout(r, 20));
    expect(writer.thread).toBe('main');
    await writer.close();
    expect(turnsOf(path, 'fell-back')).toBe(700);
    expect(warnings.some((w) => /writer thread stopped.*writing in the main thread/.test(w))).toBe(true);
  });

  it('writes a batch sent again under the same id once (a writer that died before answering)', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'sb-reqlog-')), 'logs.db');
    const log = new SQLiteConversationLog({ path });
    const batch = Array.from({ length: 20 }, (_, i) => record(i, 'sent-twice'));
    const id = requestBatchId();
    log.recordRequests(batch, id);
    log.recordRequests(batch, id);
    // Another batch with the same records but its own id is other requests, and is written.
    log.recordRequests(batch, requestBatchId());
    log.close();
    expect(turnsOf(path, 'sent-twice')).toBe(40);
  });
});
