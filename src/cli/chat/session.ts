/**
 * One chat session in the terminal: the Chat, the turn in flight (and its AbortController),
 * what is printed after each turn, and the conversation log. Commands live in commands-run.ts.
 */
import { Chat, type ChatJSON } from '../../chat.js';
import type { ProviderRegistry } from '../../providers/registry.js';
import type { Env } from '../../providers/resolve.js';
import type { ConversationLog } from '../../store/conversation-log.js';
import type { Message, TurnResult } from '../../types.js';
import { cliMessage, type CliIO } from '../io.js';
import { dollarsToFemto, femtoToDollars, sumCosts } from '../../money.js';
import { compareLine, costLine, providerLine, sumSaved } from './format.js';
import { createView } from './layout.js';
import { wrapLine } from './text.js';
import { loadMarkdown } from './markdown.js';
import type { Style } from './style.js';

export interface SessionOptions {
  io: CliIO;
  env: Env;
  registry: ProviderRegistry;
  style: Style;
  /** stdout is a terminal: spinner, live regions, cursor moves. */
  live: boolean;
  showCost: boolean;
  showProvider: boolean;
}

export interface TurnOutcome {
  results: TurnResult[];
  errors: { model: string; error: string }[];
  stopped: boolean;
}

type LogEntry = Parameters<ConversationLog['recordTurn']>[1];

export class ChatSession {
  chat: Chat;
  readonly o: SessionOptions;
  #log: Promise<ConversationLog | undefined> = Promise.resolve(undefined);
  #conversationId: string | undefined;
  /** Log operations that failed, oldest first, tried again before the next one. */
  #unlogged: ((log: ConversationLog) => void)[] = [];
  #logFailing = false;
  #current: AbortController | undefined;
  /** What the turns of this session cost (femto-dollars), replies later replaced by /retry included: they were paid for. */
  #spentFemto = 0n;
  #spentPriced = false;

  constructor(chat: Chat, options: SessionOptions, conversationId?: string) {
    this.chat = chat;
    this.o = options;
    this.#conversationId = conversationId;
  }

  /** Print a line to stdout. */
  say(text: string): void {
    this.o.io.stdout.write(`${text}\n`);
  }

  /** A one-line problem on stderr. */
  warn(text: string): void {
    this.o.io.stderr.write(`${this.o.style.error(`switchboard: ${text}`)}\n`);
  }

  /** Use this log from now on (opened in the background after the prompt shows). */
  useLog(log: Promise<ConversationLog | undefined>): void {
    this.#log = log.catch(() => undefined);
  }

  get busy(): boolean {
    return this.#current !== undefined;
  }

  /** Ctrl-C: stop the reply in flight. Returns false when there was none. */
  interrupt(): boolean {
    if (!this.#current) return false;
    this.#current.abort();
    return true;
  }

  /** Send a message and show the replies and the after-turn lines; log the turn. */
  async send(text: string): Promise<void> {
    const outcome = await this.#run(this.chat, text);
    if (outcome.stopped && outcome.results.length === 0) this.say(this.o.style.dim('(the stopped reply was not added to the conversation)'));
    await this.#record(text, outcome, false);
  }

  /** Ask the last user message again on a copy of the chat; the copy replaces the chat only when every reply arrived. */
  async retry(): Promise<void> {
    const json = this.chat.toJSON();
    const text = lastUserText(json.history[json.models[0] as string] ?? []);
    if (text === undefined) {
      this.say('Nothing to retry yet.');
      return;
    }
    const trimmed: ChatJSON = structuredClone(json);
    for (const m of trimmed.models) {
      const history = trimmed.history[m] ?? [];
      const at = history.map((msg) => msg.role).lastIndexOf('user');
      if (at < 0) continue;
      trimmed.history[m] = history.slice(0, at);
      trimmed.turns[m] = (trimmed.turns[m] ?? []).slice(0, -1);
    }
    const copy = Chat.fromJSON(trimmed, { env: this.o.env, registry: this.o.registry });
    this.say(this.o.style.dim(`(retrying: ${text.length > 60 ? `${text.slice(0, 57)}...` : text})`));
    const outcome = await this.#run(copy, text);
    if (outcome.stopped || outcome.results.length < copy.models.length) {
      this.say(this.o.style.dim('(the retry did not complete; the previous reply is kept)'));
      return;
    }
    this.chat = copy;
    await this.#record(text, outcome, true);
  }

  async #run(chat: Chat, text: string): Promise<TurnOutcome> {
    const models = chat.models;
    const { io, style, live } = this.o;
    if (style.color && models.length > 1) await loadMarkdown().catch(() => undefined);
    const width = Math.max(20, io.stdout.columns ?? 80);
    const view = createView(models, { out: io.stdout, style, live, width, height: io.stdout.rows ?? 24 });
    const controller = new AbortController();
    this.#current = controller;
    const results = new Map<string, TurnResult>();
    const failed = new Map<string, string>();
    try {
      for await (const event of chat.stream(text, { signal: controller.signal })) {
        if (event.type === 'text-delta') view.delta(event.model, event.text);
        else if (event.type === 'finish') {
          results.set(event.model, event.result);
          view.finish(event.model, event.result);
        } else if (event.type === 'error' && !controller.signal.aborted) {
          failed.set(event.model, cliMessage(event.error));
          view.fail(event.model, cliMessage(event.error));
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) {
        const model = models[0] as string;
        const message = err instanceof Error ? cliMessage(err) : String(err);
        failed.set(model, message);
        view.fail(model, message);
      }
    } finally {
      this.#current = undefined;
    }
    const stopped = controller.signal.aborted;
    await view.close(stopped);
    const ordered = models.map((m) => results.get(m)).filter((r): r is TurnResult => r !== undefined);
    if (ordered.length > 0) {
      // On a terminal the compare line wraps between words, never inside one; a pipe gets one line.
      if (models.length > 1) this.say(live ? wrapLine(compareLine(models, results, failed), width - 1).map((l) => style.dim(l)).join('\n') : style.dim(compareLine(models, results, failed)));
      if (this.o.showProvider) this.say(style.dim(providerLine(ordered)));
      for (const r of ordered) {
        if (r.usage.cost === null) continue;
        this.#spentFemto += dollarsToFemto(r.usage.cost);
        this.#spentPriced = true;
      }
      if (this.o.showCost) this.say(style.dim(costLine(sumCosts(ordered.map((r) => r.usage.cost)), this.sessionCost(), this.conversationCost(chat), sumSaved(Object.values(chat.toJSON().usage)))));
    }
    return { results: ordered, errors: [...failed].map(([model, error]) => ({ model, error })), stopped };
  }

  /** What this session's turns cost (every model; not the turns of a resumed conversation's earlier sessions); null when none was priced. */
  sessionCost(): number | null {
    return this.#spentPriced ? femtoToDollars(this.#spentFemto) : null;
  }

  /** The whole conversation's cost, every model, resumed turns included. */
  conversationCost(chat: Chat = this.chat): number | null {
    return sumCosts(Object.values(chat.toJSON().usage).map((u) => u.cost));
  }

  async #record(user: string, outcome: TurnOutcome, replacesLast: boolean): Promise<void> {
    if (outcome.results.length === 0 && outcome.errors.length === 0) return;
    const entry: LogEntry = { user, results: outcome.results, errors: outcome.errors, state: this.chat.toJSON(), models: this.chat.models, replacesLast };
    await this.#withLog((log) => {
      this.#conversationId ??= log.create(this.chat.models, this.chat.system);
      log.recordTurn(this.#conversationId, entry);
    });
  }

  /**
   * Run a log operation after any that failed before, in order. A failure is said once and the
   * chat goes on; what failed stays queued and is written by the next operation that works, so
   * a log that was busy or briefly unwritable loses nothing.
   */
  async #withLog(action: (log: ConversationLog) => void): Promise<void> {
    const log = await this.#log;
    if (!log) return;
    this.#unlogged.push(action);
    try {
      while (this.#unlogged.length > 0) {
        (this.#unlogged[0] as (log: ConversationLog) => void)(log);
        this.#unlogged.shift();
      }
      if (this.#logFailing) this.warn('the conversation log works again; the turns it missed are written.');
      this.#logFailing = false;
    } catch (err) {
      if (!this.#logFailing) this.warn(`the conversation log failed (${(err as Error).message}); this turn will be written with the next one.`);
      this.#logFailing = true;
    }
  }

  get conversationId(): string | undefined {
    return this.#conversationId;
  }

  /** Leave: mark the logged conversation paused (resumable) or ended, with the chat's latest state. */
  async leave(status: 'paused' | 'ended'): Promise<string | undefined> {
    await this.#withLog((log) => {
      if (this.#conversationId === undefined && status === 'paused') this.#conversationId = log.create(this.chat.models, this.chat.system);
      if (this.#conversationId !== undefined) log.setStatus(this.#conversationId, status, this.chat.toJSON());
    });
    const log = await this.#log;
    log?.close();
    return log ? this.#conversationId : undefined;
  }

  /** /reset: the logged conversation ends; the next message starts a new one. */
  async restart(): Promise<void> {
    const id = this.#conversationId;
    const state = this.chat.toJSON();
    await this.#withLog((log) => {
      if (id !== undefined) log.setStatus(id, 'ended', state);
    });
    this.chat.reset();
    this.#conversationId = undefined;
  }
}

/** The text of the last user message of a history. */
export function lastUserText(history: Message[]): string | undefined {
  for (let i = history.length - 1; i >= 0; i--) {
    const m = history[i] as Message;
    if (m.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    return m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
  }
  return undefined;
}
