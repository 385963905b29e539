/** `switchboard chat` scripted through a pipe, and the `logs` and `usage` commands over what it logged. */
import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sumCosts } from '../src/money.js';
import { baseEnv, runPiped, tempHome } from './helpers/terminal.js';

describe('switchboard chat with piped input', () => {
  it("reproduces the README's example conversation word for word", async () => {
    const home = tempHome();
    const input = ['My name is José Mourinho.', '/model sim/mini', 'What is my name?'].join('\n');
    const res = await runPiped(['chat', '-m', 'sim/llama@highest-tks-per-sec', '--show-cost', '--show-provider'], `${input}\n`, baseEnv(home));
    expect(res.status).toBe(0);
    // The lines README.md and docs/chat.md show (the reply's first words, then each line in full).
    expect(res.stdout).toMatch(/^Understood\. When it comes to José, the details matter more than the headline\. /m);
    expect(res.stdout).toContain('(provider: sim-fast)\n(cost: $0.000241 this turn, $0.000241 this session)\n');
    expect(res.stdout).toContain('Now talking to sim/mini; the conversation so far goes with it.');
    expect(res.stdout).toMatch(/^Your name is José Mourinho\.$/m);
  });

  it('reads one message per line, prints plain replies, and runs commands', async () => {
    const home = tempHome();
    const input = ['My name is Alan Turing.', '/model sim/mini', 'What is my name?', '/retry', '/usage', '/nope', `/save ${join(home, 'chat.json')}`, 'quit', 'never sent'].join('\n');
    const res = await runPiped(['chat', '-m', 'sim/llama', '--show-provider'], `${input}\n`, baseEnv(home));
    expect(res.status).toBe(0);
    expect(res.stdout).not.toContain("\u001b");
    expect(res.stdout).toContain('Now talking to sim/mini; the conversation so far goes with it.');
    expect(res.stdout.match(/^Your name is Alan Turing\.$/gm)).toHaveLength(2);
    expect(res.stdout.match(/^\(provider: sim-fast\)$/gm)).toHaveLength(3);
    // /usage after /model: the first turn stays with sim/llama, the later ones are sim/mini's;
    // the reply /retry replaced was paid for and is shown apart.
    expect(res.stdout).toMatch(/^MODEL\s+PROVIDER\s+TURNS\s+PROMPT\s+COMPLETION\s+TOTAL\s+COST$/m);
    expect(res.stdout).toMatch(/^sim\/llama\s+sim-fast\s+1\s+\d+\s+\d+\s+\d+\s+\$0\.\d{6}$/m);
    expect(res.stdout).toMatch(/^sim\/mini\s+sim-fast\s+1\s+\d+\s+\d+\s+\d+\s+\$0\.\d{6}$/m);
    expect(res.stdout).toMatch(/^sim\/mini\s+\(replaced\)\s+0\s+\d+\s+\d+\s+\d+\s+\$0\.\d{6}$/m);
    expect(res.stdout).toMatch(/^all models\s+2\s+\d+\s+\$0\.\d{6}$/m);
    expect(res.stderr).toContain('unknown command /nope; type /help for the commands (nothing was sent).');
    expect(res.stdout + res.stderr).not.toContain('never sent');
    // /retry replaced the last turn: the saved chat has two exchanges, not three.
    const saved = JSON.parse(readFileSync(join(home, 'chat.json'), 'utf8')) as { models: string[]; history: Record<string, { role: string; content: string }[]>; turns: Record<string, unknown[]> };
    expect(saved.models).toEqual(['sim/mini']);
    expect(saved.history['sim/mini']?.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(saved.turns['sim/mini']).toHaveLength(2);

    // The log: the conversation, its turns (the retried one marked replaced), search and usage.
    const env = baseEnv(home);
    const list = await runPiped(['logs', '--json'], '', env);
    const [conv] = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; models: string[]; turns: number; tokens: number; cost: number; firstMessage: string; status: string; byModel: { model: string; provider: string; turns: number }[] });
    // Every model that answered, in order: the cost below includes sim/llama's turn.
    expect(conv?.models).toEqual(['sim/llama', 'sim/mini']);
    expect(conv?.turns).toBe(2);
    expect(conv?.firstMessage).toBe('My name is Alan Turing.');
    expect(conv?.status).toBe('ended');
    const shown = JSON.parse((await runPiped(['logs', 'show', conv!.id, '--json'], '', env)).stdout) as { turns: { model: string; provider: string; replaced: boolean; totalTokens: number; cost: number; reply: string }[] };
    expect(shown.turns.map((t) => [t.model, t.replaced])).toEqual([['sim/llama', false], ['sim/mini', true], ['sim/mini', false]]);
    expect(conv?.tokens).toBe(shown.turns.reduce((n, t) => n + t.totalTokens, 0));
    // Exact, not close: the log sums integer femto-dollars.
    expect(conv?.cost).toBe(sumCosts(shown.turns.map((t) => t.cost)));
    expect(conv?.byModel.map((m) => [m.model, m.provider, m.turns])).toEqual([['sim/llama', 'sim-fast', 1], ['sim/mini', 'sim-fast', 2]]);

    const text = await runPiped(['logs', 'show', conv!.id.slice(0, 9)], '', env);
    expect(text.stdout).toContain('> What is my name?');
    expect(text.stdout).toMatch(/^Conversation \S+ · started \S+ · ended · sim\/llama, sim\/mini$/m);
    expect(text.stdout).toMatch(/^ {2}sim\/llama \(sim-fast\): 1 turn · \d+ tokens · \$0\.\d{6}$/m);
    expect(text.stdout).toMatch(/── sim\/mini \(sim-fast · \d+\+\d+ tok · \$0\.\d{6} · ttft \d+ ms\) ──\nYour name is Alan Turing\./);

    const found = await runPiped(['logs', '--search', 'Alan Turing'], '', env);
    expect(found.stdout).toContain(conv!.id);
    const none = await runPiped(['logs', '--search', 'zebra crossing'], '', env);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('No conversation mentions "zebra crossing".');

    const usage = (await runPiped(['usage', '--by', 'model', '--json'], '', env)).stdout.trim().split('\n').map((l) => JSON.parse(l) as { model: string; turns: number; totalTokens: number; cost: number });
    const byModel = Object.fromEntries(usage.map((u) => [u.model, u]));
    expect(byModel['sim/mini']?.turns).toBe(2);
    expect(byModel['sim/llama']?.turns).toBe(1);
    expect(byModel['sim/mini']!.totalTokens + byModel['sim/llama']!.totalTokens).toBe(conv?.tokens);
    expect(sumCosts(usage.map((u) => u.cost))).toBe(conv?.cost);
    const byProvider = (await runPiped(['usage', '--by', 'provider'], '', env)).stdout;
    expect(byProvider).toMatch(/^sim-fast\s+3\s+/m);
    const future = await runPiped(['usage', '--since', '2999-01-01'], '', env);
    expect(future.stderr).toContain('Nothing logged since 2999-01-01T00:00:00.000Z (that is in the future).');
  });

  it('a log from another schema version: one line, and the chat still works', async () => {
    const home = tempHome();
    const db = new Database(join(home, 'logs.db'));
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (99);');
    db.close();
    const res = await runPiped(['chat', '-m', 'sim/llama'], 'say: hello there\n', baseEnv(home));
    expect(res.status).toBe(0);
    expect(res.stdout).toBe('hello there\n');
    expect(res.stderr).toContain('is from a newer switchboard (schema version 99, this one reads 3); this chat is not logged.');
    const logs = await runPiped(['logs'], '', baseEnv(home));
    expect(logs.status).toBe(1);
    expect(logs.stderr).toContain('is from a newer switchboard');
  });

  it('a log of schema version 1 (costs as REAL only) is upgraded in place and its costs kept', async () => {
    const home = tempHome();
    const path = join(home, 'logs.db');
    const db = new Database(path);
    db.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);
      CREATE TABLE conversations (id TEXT PRIMARY KEY, started_at TEXT NOT NULL, updated_at TEXT NOT NULL, status TEXT NOT NULL, models TEXT NOT NULL, system TEXT, state TEXT);
      CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, user_text TEXT NOT NULL,
        model TEXT NOT NULL, provider TEXT, resolved_model TEXT, reply TEXT, prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
        total_tokens INTEGER NOT NULL DEFAULT 0, cost REAL, ttft_ms REAL, latency_ms REAL, tps REAL, error TEXT, replaced INTEGER NOT NULL DEFAULT 0);
      INSERT INTO conversations VALUES ('old1', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'ended', '["sim/llama"]', NULL, NULL);
      INSERT INTO turns (conversation_id, seq, at, user_text, model, provider, total_tokens, cost) VALUES
        ('old1', 1, '2026-01-01T00:00:00.000Z', 'a', 'sim/llama', 'sim-fast', 10, 0.0004107), ('old1', 2, '2026-01-01T00:00:01.000Z', 'b', 'sim/llama', 'sim-fast', 10, 0.0004107);`);
    db.close();
    const res = await runPiped(['usage', '--json'], '', baseEnv(home));
    expect(res.stderr).toBe('');
    expect(JSON.parse(res.stdout)).toMatchObject({ model: 'sim/llama', turns: 2, cost: 0.0008214 });
  });

  it('resumes a given conversation by id and refuses an unknown one', async () => {
    const home = tempHome();
    const env = baseEnv(home);
    const first = await runPiped(['chat', '-m', 'sim/mini'], 'My name is Edsger Dijkstra.\n/pause\n', env);
    const id = /--resume (\S+)/.exec(first.stdout)?.[1] as string;
    expect(id).toBeTruthy();
    const again = await runPiped(['chat', '--resume', id, '--show-cost'], 'What is my name?\n', env);
    expect(again.stderr).toContain(`Welcome back! Continuing conversation ${id} with sim/mini (1 turn so far)`);
    expect(again.stdout).toContain('Your name is Edsger Dijkstra.');
    // "This session" is what this run paid; the resumed conversation's total is named apart.
    const line = /\(cost: (\$0\.\d{6}) this turn, (\$0\.\d{6}) this session, (\$0\.\d{6}) the whole conversation\)/.exec(again.stdout);
    expect(line?.[1]).toBe(line?.[2]);
    expect(Number((line?.[3] ?? '').slice(1))).toBeGreaterThan(Number((line?.[2] ?? '').slice(1)));
    const missing = await runPiped(['chat', '--resume', 'nosuchid'], '', env);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('no conversation "nosuchid" in the log; "switchboard logs" lists them.');
  });
});
