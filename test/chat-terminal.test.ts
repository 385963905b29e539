/** `switchboard chat` in a pseudo-terminal (tmux), against the simulator. */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { baseEnv, runPiped, stopTerminals, tempHome, Terminal } from './helpers/terminal.js';

afterAll(stopTerminals);

interface ShownTurn {
  model: string;
  provider: string;
  promptTokens: number;
  completionTokens: number;
  cost: number | null;
  reply: string;
  user: string;
  replaced: boolean;
}

async function logged(home: string): Promise<{ summary: { id: string; status: string; turns: number }; turns: ShownTurn[] }> {
  const env = baseEnv(home);
  const list = await runPiped(['logs', '--json'], '', env);
  const first = JSON.parse(list.stdout.trim().split('\n')[0] as string) as { id: string };
  const shown = await runPiped(['logs', 'show', first.id, '--json'], '', env);
  return JSON.parse(shown.stdout) as { summary: { id: string; status: string; turns: number }; turns: ShownTurn[] };
}

describe('switchboard chat in a terminal', () => {
  it('streams a reply, keeps the history across /model, and prints cost and provider lines', async () => {
    const home = tempHome();
    const term = await Terminal.start(['chat', '-m', 'sim/llama@sim-gemini', '--show-cost', '--show-provider'], baseEnv(home));
    try {
      await term.waitFor("Let's have a chat with sim/llama@sim-gemini");
      await term.waitFor(/^> $/m);
      await term.type('My name is Ada Lovelace.');
      await term.waitFor('(provider: sim-gemini)');
      const first = await term.waitFor(/\(cost: \$0\.\d{6} this turn, \$0\.\d{6} this session\)/);
      await term.type('/model sim/mini@sim-fast');
      await term.waitFor('Now talking to sim/mini@sim-fast');
      await term.type('What is my name?');
      const screen = await term.waitFor('Your name is Ada Lovelace.');
      await term.waitFor('(provider: sim-fast)');
      // The cost lines are the real ones: this turn's price and the running total.
      const final = await term.waitFor((s) => Terminal.count(s, 'this session)') === 2);
      const costs = [...final.matchAll(/\(cost: \$(\d\.\d+) this turn, \$(\d\.\d+) this session\)/g)].map((m) => [Number(m[1]), Number(m[2])]);
      expect(costs).toHaveLength(2);
      const log = await logged(home);
      const [t1, t2] = log.turns;
      expect(t1?.provider).toBe('sim-gemini');
      expect(t2?.provider).toBe('sim-fast');
      expect(t2?.reply).toBe('Your name is Ada Lovelace.');
      // sim-gemini charges 0.3 / 2.5 $ per million tokens; sim-fast 0.6 / 2.4.
      expect(t1?.cost).toBeCloseTo((t1!.promptTokens * 0.3 + t1!.completionTokens * 2.5) / 1e6, 12);
      expect(t2?.cost).toBeCloseTo((t2!.promptTokens * 0.6 + t2!.completionTokens * 2.4) / 1e6, 12);
      expect(costs[0]?.[0]).toBeCloseTo(t1!.cost!, 6);
      expect(costs[1]?.[0]).toBeCloseTo(t2!.cost!, 6);
      expect(costs[1]?.[1]).toBeCloseTo(t1!.cost! + t2!.cost!, 6);
      expect(first).toContain('My name is Ada Lovelace.');
      expect(screen).not.toContain('Invalid');
    } finally {
      await term.kill();
    }
  });

  it('compares two models side by side with a comparison line', async () => {
    const home = tempHome();
    const term = await Terminal.start(['chat', '-m', 'sim/llama', '-m', 'sim/mini'], baseEnv(home));
    try {
      await term.waitFor(/^> $/m);
      await term.type('Who are you?');
      const screen = await term.waitFor(/compare: sim\/llama [^]*\n> $/m);
      expect(screen).toMatch(/── sim\/llama ──\s+── sim\/mini ──/);
      // Each model's own reply, in its own column.
      expect(screen).toMatch(/I am llama, a model of .*I am mini, a model of/);
      // The compare line wraps between words when it is wider than the terminal.
      const line = (/compare: ([^]*?)\n> /.exec(screen)?.[1] ?? '').replace(/\n/g, ' ');
      expect(line).toMatch(/sim\/llama \d+\+\d+ tok · \$0\.\d+ · ttft \d+ ms · \d+ tok\/s │ sim\/mini \d+\+\d+ tok · \$0\.\d+ · ttft \d+ ms · \d+ tok\/s/);
      const log = await logged(home);
      expect(log.turns.map((t) => t.model).sort()).toEqual(['sim/llama', 'sim/mini']);
    } finally {
      await term.kill();
    }
  });

  it('Ctrl-C stops a long reply, keeps the chat usable, and Ctrl-C at the prompt leaves', async () => {
    const home = tempHome();
    const term = await Terminal.start(['chat', '-m', 'sim/llama@sim-fast'], baseEnv(home, { SWITCHBOARD_SIM_TIME_SCALE: '1' }));
    try {
      await term.waitFor(/^> $/m);
      await term.type('Write 2000 tokens about cats');
      await term.waitFor('The quick brown fox jumps');
      await term.keys('C-c');
      await term.waitFor('(the stopped reply was not added to the conversation)');
      await term.type('/usage');
      const usage = await term.waitFor(/sim\/llama@sim-fast\s+-\s+0\s+0\s+0\s+0\s+\$0/);
      expect(usage).toContain('(stopped)');
      await term.type('say: still here');
      await term.waitFor(/^still here$/m);
      await term.keys('C-c');
      await term.waitFor('[exited 0]');
      const log = await logged(home);
      expect(log.turns).toHaveLength(1);
      expect(log.turns[0]?.reply).toBe('still here');
    } finally {
      await term.kill();
    }
  });

  it('pauses and resumes a conversation, welcoming the user back', async () => {
    const home = tempHome();
    const env = baseEnv(home);
    const one = await Terminal.start(['chat', '-m', 'sim/llama'], env);
    let id: string;
    try {
      await one.waitFor(/^> $/m);
      await one.type('My name is Grace Hopper.');
      // The reply is done when the next prompt shows.
      await one.waitFor((s) => (s.match(/^> /gm) ?? []).length >= 2);
      await one.type('pause');
      const paused = await one.waitFor(/Continue with: (?:npx )?switchboard chat --resume (\S+)/);
      id = /--resume (\S+)/.exec(paused)?.[1] as string;
      await one.waitFor('[exited 0]');
    } finally {
      await one.kill();
    }
    const two = await Terminal.start(['chat', '--resume'], env);
    try {
      await two.waitFor(`Welcome back! Continuing conversation ${id} with sim/llama (1 turn so far)`);
      await two.type('What is my name?');
      await two.waitFor('Your name is Grace Hopper.');
      await two.type('/quit');
      await two.waitFor('[exited 0]');
    } finally {
      await two.kill();
    }
    const log = await logged(home);
    expect(log.summary.id).toBe(id);
    expect(log.summary.status).toBe('ended');
    expect(log.turns.map((t) => t.user)).toEqual(['My name is Grace Hopper.', 'What is my name?']);
  });

  it('hints at unknown commands, refuses unknown models, and keeps the current one', async () => {
    const home = tempHome();
    const term = await Terminal.start(['chat', '-m', 'sim/mini'], baseEnv(home));
    try {
      await term.waitFor(/^> $/m);
      await term.type('/frobnicate now');
      await term.waitFor('unknown command /frobnicate; type /help for the commands (nothing was sent).');
      await term.type('/model sim/nothing');
      await term.waitFor('the simulator has no model "nothing"');
      await term.waitFor('(still talking to sim/mini)');
      await term.type('/help');
      await term.waitFor('/retry');
      await term.type('Who are you?');
      await term.waitFor('I am mini, a model of the switchboard simulator');
      await term.type('/quit');
      await term.waitFor('[exited 0]');
      const log = await logged(home);
      expect(log.turns.map((t) => t.user)).toEqual(['Who are you?']);
    } finally {
      await term.kill();
    }
  });

  it('chats unlogged, with one line saying why, when the log is locked', async () => {
    const home = tempHome();
    const holder = new Database(join(home, 'logs.db'));
    holder.exec('CREATE TABLE x (y); BEGIN EXCLUSIVE; INSERT INTO x VALUES (1);');
    const term = await Terminal.start(['chat', '-m', 'sim/llama'], baseEnv(home));
    try {
      await term.waitFor('is locked by another program; this chat is not logged.');
      await term.type('say: works anyway');
      await term.waitFor(/^works anyway$/m);
    } finally {
      await term.kill();
      holder.exec('ROLLBACK');
      holder.close();
    }
  });
});
