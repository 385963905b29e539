/**
 * The chat loop: build (or resume) the Chat, show the prompt, then read lines until the
 * user leaves. Heavy modules (SQLite, Markdown, the catalog) load after the prompt shows.
 */
import type { Chat } from '../../chat.js';
import type { ConversationLog } from '../../store/conversation-log.js';
import { chooseModels, requireKeys } from '../defaults.js';
import { CLIError, commandContext, useColor, type CliIO } from '../io.js';
import { parseLine } from './commands.js';
import { LineReader } from './lines.js';
import { runCommand } from './run-command.js';
import { ChatSession } from './session.js';
import { createStyle } from './style.js';
import { wrapLine } from './text.js';

export interface ChatFlags {
  model: string[];
  system?: string;
  showCost?: boolean;
  showProvider?: boolean;
  /** `--resume` alone is true; `--resume ID` the id. */
  resume?: string | boolean;
}

const HINT = 'enter `pause` to pause and `quit` to exit; /help lists the commands';

export async function runChat(io: CliIO, flags: ChatFlags): Promise<void> {
  const { env, registry } = await commandContext(io);
  const interactive = io.stdin.isTTY === true;
  const style = createStyle(useColor(io.stdout, io.env));
  const warn = (text: string): void => {
    io.stderr.write(`${style.error(`switchboard: ${text}`)}\n`);
  };
  const openLog = (): Promise<ConversationLog | undefined> =>
    import('../../store/conversation-log.js').then(({ openConversationLog }) => openConversationLog({ env: io.env, warn: (m) => warn(`${m}; this chat is not logged.`) }));

  const { Chat } = await import('../../chat.js');
  let chat: Chat;
  let conversationId: string | undefined;
  let welcome: string;
  let log: Promise<ConversationLog | undefined> | undefined;
  if (flags.resume !== undefined && flags.resume !== false) {
    log = openLog();
    const opened = await log;
    const wanted = typeof flags.resume === 'string' ? flags.resume : undefined;
    const found = opened?.resumable(wanted);
    if (!found) {
      if (!opened) throw new CLIError('cannot resume: the conversation log is not available.', 1);
      if (wanted) {
        const { notFound } = await import('../logs.js');
        const error = notFound(opened, wanted);
        opened.close();
        throw error;
      }
      opened.close();
      throw new CLIError('no paused conversation to resume; "switchboard logs" lists the logged ones, and "switchboard chat --resume ID" continues one.');
    }
    try {
      chat = Chat.fromJSON(found.state, { env, registry });
    } catch (err) {
      // The saved state is refused: the log's contents are at fault, not the command line (exit 1).
      opened?.close();
      throw new CLIError(`cannot resume conversation ${found.id}: ${(err as Error).message}`, 1);
    }
    if (flags.model.length === 1 && chat.models.length === 1) chat.model = flags.model[0] as string;
    else for (const m of flags.model) if (!chat.models.includes(m)) chat.addModel(m);
    if (flags.system !== undefined) chat.system = flags.system;
    conversationId = found.id;
    const turns = Object.values(chat.toJSON().turns)[0]?.length ?? 0;
    welcome = `Welcome back! Continuing conversation ${found.id} with ${chat.models.join(', ')} (${turns} turn${turns === 1 ? '' : 's'} so far). (Remember, ${HINT})`;
  } else {
    const models = chooseModels(flags.model, io);
    await requireKeys(models, { env, registry });
    const options = { env, registry, ...(flags.system === undefined ? {} : { system: flags.system }) };
    chat = new Chat(models.length === 1 ? (models[0] as string) : models, options) as Chat;
    welcome = `Let's have a chat with ${models.join(', ')}. (${HINT[0]?.toUpperCase()}${HINT.slice(1)})`;
  }

  const session = new ChatSession(
    chat,
    { io, env, registry, style, live: io.stdout.isTTY === true, showCost: flags.showCost === true, showProvider: flags.showProvider === true },
    conversationId,
  );
  const greeting = interactive && io.stdout.isTTY ? wrapLine(welcome, Math.max(20, io.stdout.columns ?? 80) - 1) : [welcome];
  (interactive ? io.stdout : io.stderr).write(`${greeting.map((l) => style.dim(l)).join('\n')}\n`);
  const reader = new LineReader(io, interactive);
  reader.onInterrupt(() => {
    if (!session.interrupt()) reader.close();
  });
  reader.prompt();
  if (io.env.SWITCHBOARD_CHAT_READY_MARK === '1') io.stderr.write('[chat-ready]\n');
  session.useLog(log ?? openLog());

  let left = false;
  for (let line = await reader.next(); line !== null; line = await reader.next()) {
    const parsed = parseLine(line);
    if (parsed.kind === 'unknown') {
      warn(`unknown command /${parsed.name}; type /help for the commands (nothing was sent).`);
    } else if (parsed.kind === 'command') {
      if ((await runCommand(session, parsed.name, parsed.arg)) === 'leave') {
        left = true;
        break;
      }
    } else if (parsed.kind === 'message') {
      await session.send(parsed.text);
    }
    reader.prompt();
  }
  if (!left) {
    if (interactive) io.stdout.write('\n');
    await session.leave('ended');
  }
  reader.close();
}
