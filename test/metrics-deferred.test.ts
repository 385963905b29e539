import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MemoryMetricsStore } from '../src/routing/metrics.js';
import { DeferredMetricsStore } from '../src/store/sqlite-metrics.js';
import { runCLI } from './helpers/cli.js';

describe('metrics opened on demand', () => {
  it('records before opening, opens on the first read, and hands over what it queued in order', () => {
    let opened = 0;
    const store = new DeferredMetricsStore(() => {
      opened++;
      return new MemoryMetricsStore();
    });
    store.record('m@a', { at: 1, ok: true, tokensPerSecond: 100 });
    store.record('m@a', { at: 2, ok: true, tokensPerSecond: 300 });
    expect(opened).toBe(0);
    const stats = store.snapshot('m@a', 3);
    expect(opened).toBe(1);
    expect(stats?.attempts).toBe(2);
    expect(stats?.latest.tokensPerSecond).toBe(300);
    store.record('m@a', { at: 4, ok: false, errorCode: 'server' });
    expect(store.snapshot('m@a', 5)?.attempts).toBe(3);
    expect(opened).toBe(1);
  });

  it('a CLI run that never reads statistics still writes its sample to the database before it exits', async () => {
    const home = mkdtempSync(join(tmpdir(), 'sb-metrics-'));
    const res = await runCLI(['ask', '-m', 'sim/llama@sim-cheap', 'hi'], { env: { SWITCHBOARD_HOME: home } });
    expect(res.status).toBe(0);
    const db = new Database(join(home, 'metrics.db'), { readonly: true });
    const rows = db.prepare('SELECT deployment, ok FROM samples').all() as { deployment: string; ok: number }[];
    db.close();
    expect(rows).toEqual([{ deployment: 'sim/llama@sim-cheap', ok: 1 }]);
  });
});
