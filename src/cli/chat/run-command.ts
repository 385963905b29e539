/** What each chat command does. Returns 'leave' for /pause and /quit. */
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { requireKeys, selfCommand } from '../defaults.js';
import type { Message } from '../../types.js';
import { cliMessage } from '../io.js';
import { helpText, type ChatCommandName } from './commands.js';
import { usageLines } from './format.js';
import { renderMarkdown } from './markdown.js';
import type { ChatSession } from './session.js';

export async function runCommand(session: ChatSession, name: ChatCommandName, arg: string): Promise<'continue' | 'leave'> {
  const { chat } = session;
  try {
    switch (name) {
      case 'help':
        session.say(helpText());
        break;
      case 'model': {
        const words = arg.split(/\s+/).filter(Boolean);
        if (words.length === 0) session.say(`Talking to ${chat.models.join(', ')}.`);
        else if (words.length === 1 && chat.models.length === 1) {
          await requireKeys([words[0] as string], session.o);
          chat.model = words[0] as string;
          session.say(`Now talking to ${chat.model}; the conversation so far goes with it.`);
        } else if (words.length === 2) {
          await requireKeys([words[1] as string], session.o);
          chat.replaceModel(words[0] as string, words[1] as string);
          session.say(`Now talking to ${chat.models.join(', ')}.`);
        } else session.warn(`this chat has ${chat.models.length} models; use /model OLD NEW, /add or /drop.`);
        break;
      }
      case 'add':
        if (!arg) return usage(session, '/add MODEL');
        await requireKeys([arg], session.o);
        chat.addModel(arg);
        session.say(`Added ${arg}; now comparing ${chat.models.join(', ')}.`);
        break;
      case 'drop':
        if (!arg) return usage(session, '/drop MODEL');
        chat.dropModel(arg);
        session.say(`Dropped ${arg}; talking to ${chat.models.join(', ')}.`);
        break;
      case 'system':
        chat.system = arg === '' ? undefined : arg;
        session.say(arg === '' ? 'System prompt removed.' : 'System prompt set.');
        break;
      case 'history':
        await showHistory(session);
        break;
      case 'usage':
        session.say(usageLines(chat.toJSON()).join('\n'));
        break;
      case 'reset':
        await session.restart();
        session.say('Started over: the conversation and its usage are cleared.');
        break;
      case 'retry':
        await session.retry();
        break;
      case 'save': {
        if (!arg) return usage(session, '/save FILE');
        const path = resolve(session.o.io.cwd, arg);
        try {
          await writeFile(path, `${JSON.stringify(chat.toJSON(), null, 2)}\n`);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          const why = code === 'ENOENT' ? `the folder ${dirname(path)} does not exist` : code === 'EACCES' ? 'no permission to write there' : code === 'EISDIR' ? 'that is a folder; give a file name' : (err as Error).message;
          session.warn(`cannot save to ${path}: ${why}. Nothing was saved.`);
          break;
        }
        session.say(`Saved to ${path}.`);
        break;
      }
      case 'models':
        await listModels(session, arg);
        break;
      case 'pause': {
        const id = await session.leave('paused');
        session.say(id ? `Paused. Continue with: ${selfCommand(session.o.env)} chat --resume ${id}` : 'Bye (nothing to keep yet).');
        return 'leave';
      }
      case 'quit':
        await session.leave('ended');
        return 'leave';
    }
  } catch (err) {
    session.warn(`${cliMessage(err as Error)}${name === 'model' || name === 'add' ? `\n(still talking to ${session.chat.models.join(', ')})` : ''}`);
  }
  return 'continue';
}

function usage(session: ChatSession, text: string): 'continue' {
  session.warn(`usage: ${text}`);
  return 'continue';
}

async function showHistory(session: ChatSession): Promise<void> {
  const { style, io } = session.o;
  const json = session.chat.toJSON();
  const width = Math.max(20, io.stdout.columns ?? 80);
  for (const model of json.models) {
    if (json.models.length > 1) session.say(style.label(`── ${model} ──`));
    const history: Message[] = json.history[model] ?? [];
    if (history.length === 0) session.say(style.dim('(empty)'));
    for (const m of history) {
      const text = typeof m.content === 'string' ? m.content : m.content === null ? '' : m.content.map((p) => (p.type === 'text' ? p.text : `[${p.type}]`)).join('');
      if (m.role === 'system') session.say(style.dim(`system: ${text}`));
      else if (m.role === 'user') session.say(style.bold(`> ${text}`));
      else session.say(await renderMarkdown(text, width, style.color));
    }
  }
}

async function listModels(session: ChatSession, query: string): Promise<void> {
  const { SIM_MODELS, SIM_PROVIDERS } = await import('../../sim/profiles.js');
  const { listModels: list } = await import('../../catalog/refresh.js');
  const { formatPrice } = await import('../models.js');
  const rows: string[][] = [];
  for (const [id, m] of Object.entries(SIM_MODELS)) {
    const first = SIM_PROVIDERS[m.providers[0] as string];
    rows.push([`sim/${id}`, m.providers.join(','), formatPrice(first?.inputPrice), formatPrice(first?.outputPrice)]);
  }
  const result = await list({ refresh: false, env: session.o.env });
  // Deprecated and retired models stay out of the list, as in `switchboard models`.
  for (const m of result.models.filter((x) => x.status === undefined)) rows.push([m.id, m.providers.map((p) => p.provider).join(','), formatPrice(m.pricing?.input), formatPrice(m.pricing?.output)]);
  const q = query.toLowerCase();
  const matching = q ? rows.filter((r) => r[0]?.toLowerCase().includes(q) || r[1]?.toLowerCase().includes(q)) : rows;
  if (matching.length === 0) {
    session.say(`No model matches "${query}".`);
    return;
  }
  const shown = [['MODEL', 'PROVIDERS', 'IN $/M', 'OUT $/M'], ...matching.slice(0, 40)];
  const widths = [0, 1, 2, 3].map((c) => Math.max(...shown.map((r) => Math.min(40, (r[c] ?? '').length))));
  for (const r of shown) session.say(r.map((cell, c) => (c >= 2 ? cell.padStart(widths[c] ?? 0) : (cell.length > 40 ? `${cell.slice(0, 39)}…` : cell).padEnd(widths[c] ?? 0))).join('  ').trimEnd());
  if (matching.length > 40) session.say(session.o.style.dim(`... ${matching.length - 40} more; narrow it down with /models QUERY`));
}
