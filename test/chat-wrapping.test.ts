/**
 * Wrapping in the chat, read off a real pseudo-terminal (tmux) at 70, 120 and 200 columns:
 * streamed text breaks between words, never inside one; several models stream side by side,
 * each in its own pane; piped output is not wrapped at all.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { baseEnv, runPiped, stopTerminals, tempHome, Terminal } from './helpers/terminal.js';

afterAll(stopTerminals);

const QUESTION = 'Tell me about the simulator and how wrapping works while text streams in a narrow terminal window';

/** The replies the log holds for the conversation's first turn, by model. */
async function replies(home: string): Promise<Record<string, string>> {
  const env = baseEnv(home);
  const list = await runPiped(['logs', '--json'], '', env);
  const id = (JSON.parse(list.stdout.trim().split('\n')[0] as string) as { id: string }).id;
  const shown = JSON.parse((await runPiped(['logs', 'show', id, '--json'], '', env)).stdout) as { turns: { model: string; reply: string }[] };
  return Object.fromEntries(shown.turns.map((t) => [t.model, t.reply]));
}

const words = (text: string): string[] => text.split(/\s+/).filter(Boolean);

describe('word-aware wrapping', () => {
  it('at 70 columns a streamed reply breaks between words: the rows hold exactly the reply\'s words', async () => {
    const home = tempHome();
    const term = await Terminal.start(['chat', '-m', 'sim/llama'], baseEnv(home, { NO_COLOR: '1' }), { width: 70, height: 60 });
    try {
      await term.waitFor(/^> $/m);
      await term.type(QUESTION);
      await term.waitFor(/\n> $/m);
      await term.type('quit');
      await term.waitFor('[exited 0]');
      const rows = await term.rows();
      const reply = (await replies(home))['sim/llama'] as string;
      const start = rows.findIndex((r) => r.startsWith(words(reply)[0] as string));
      const end = rows.findIndex((r, i) => i > start && r.startsWith('> '));
      const shown = rows.slice(start, end);
      expect(shown.length).toBeGreaterThan(2);
      for (const r of shown) expect(r.length).toBeLessThan(70);
      // A word cut at the margin would show up here as two words.
      expect(words(shown.join('\n'))).toEqual(words(reply));
      // The greeting wraps between words too.
      expect(rows.slice(0, 2).join(' ')).toContain('to exit;');
    } finally {
      await term.kill();
    }
  });

  it.each([120, 200])('at %i columns two models stream side by side, each pane showing its reply as it arrives', async (width) => {
    const home = tempHome();
    const term = await Terminal.start(['chat', '-m', 'sim/llama', '-m', 'sim/mini'], baseEnv(home, { NO_COLOR: '1', SWITCHBOARD_SIM_TIME_SCALE: '3' }), { width, height: 50 });
    const column = Math.floor((width - 3) / 2);
    const split = (row: string): [string, string] => [row.slice(0, column).trimEnd(), row.slice(column + 3).trimEnd()];
    try {
      await term.waitFor(/^> $/m);
      await term.type(QUESTION);
      // While streaming: both panes are titled with a spinner and both show text already.
      const live = await term.waitFor((screen) => {
        if (screen.includes('compare:')) return false;
        const lines = screen.split('\n');
        const title = lines.findIndex((l) => l.includes('── sim/llama ── ') && l.includes('── sim/mini ── '));
        const body = lines[title + 1];
        return title >= 0 && body !== undefined && split(body).every((cell) => cell.length > 0);
      }, 20_000);
      expect(live).not.toContain('compare:');
      await term.waitFor('compare:', 20_000);
      await term.waitFor(/\n> $/m);
      await term.type('quit');
      await term.waitFor('[exited 0]');
      const rows = await term.rows();
      const title = rows.findIndex((r) => r.startsWith('── sim/llama ──'));
      expect(rows[title]?.slice(column + 3)).toMatch(/^── sim\/mini ──/);
      const end = rows.findIndex((r, i) => i > title && r.startsWith('compare:'));
      const body = rows.slice(title + 1, end).map(split);
      const got = await replies(home);
      for (const r of rows) expect(r.length).toBeLessThanOrEqual(width);
      expect(words(body.map((b) => b[0]).join('\n'))).toEqual(words(got['sim/llama'] as string));
      expect(words(body.map((b) => b[1]).join('\n'))).toEqual(words(got['sim/mini'] as string));
      // The compare line breaks between words, never inside one.
      const compare = rows.slice(end, rows.findIndex((r, i) => i > end && r.startsWith('> ')));
      expect(compare.join(' ')).toMatch(/compare: sim\/llama \d+\+\d+ tok · \$0\.\d{6} · ttft \d+ ms · \d+ tok\/s │ sim\/mini \d+\+\d+ tok · \$0\.\d{6} · ttft \d+ ms · \d+ tok\/s/);
    } finally {
      await term.kill();
    }
  });

  it('Ctrl-C while two models stream says "(stopped)" once', async () => {
    const home = tempHome();
    const term = await Terminal.start(['chat', '-m', 'sim/llama', '-m', 'sim/mini'], baseEnv(home, { NO_COLOR: '1', SWITCHBOARD_SIM_TIME_SCALE: '5' }), { width: 120, height: 50 });
    try {
      await term.waitFor(/^> $/m);
      await term.type(QUESTION);
      await term.waitFor('── sim/llama ── ');
      await term.keys('C-c');
      const screen = await term.waitFor(/\n> $/m);
      expect(Terminal.count(screen, '(stopped)')).toBe(1);
    } finally {
      await term.kill();
    }
  });

  it('piped output is not wrapped: long lines stay whole, no trailing spaces', async () => {
    const res = await runPiped(['chat', '-m', 'sim/llama'], `${QUESTION}\n`, baseEnv(tempHome(), { COLUMNS: '40' }));
    expect(res.status).toBe(0);
    const lines = res.stdout.split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeGreaterThan(120);
    for (const l of lines) expect(l).not.toMatch(/ $/);
  });
});
