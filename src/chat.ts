/**
 * Chat: a conversation with one model or several at once. Each model keeps its own
 * history (plain OpenAI-shaped messages), usage and per-turn metadata. A turn is atomic:
 * a model's history and usage change only when its reply arrived whole.
 */
import { InvalidHistoryError, InvalidInputError } from './errors.js';
import { collectReplies, fanOutBatches, fanOutStream, type Replies } from './fanout.js';
import { checkDepth, validateHistory, validateParams, validateTurns, validateUsage } from './history.js';
import { toUserContent, type Input } from './input.js';
import { collectedRequest, pickParams, turnOptions, type ClientOptions, type RequestOptions } from './options.js';
import { checkModelString } from './routing/router.js';
import { normalizeModels } from './call.js';
import type { Message, StreamEvent, TurnResult, Usage, UserMessage } from './types.js';
import { addUsage, zeroUsage } from './usage.js';
import { dollarsToFemto, femtoToDollars } from './money.js';
import type { InferSchema, SchemaInput } from './tools/schema.js';

export interface ChatOptions extends ClientOptions {
  /** The system prompt, the first message of every model's history. */
  system?: string;
}

/** What a turn in progress sent, filled in when it starts: the user message and each model's state. */
interface PendingTurn {
  user: UserMessage | undefined;
  sent: Map<string, ModelState>;
}

interface ModelState {
  history: Message[];
  /** Tokens summed; `cost` is always `femtoToDollars(costFemto)` unless nothing priced was added. */
  usage: Usage;
  /** The known costs summed exactly, in femto-dollars: the total is never a float sum. */
  costFemto: bigint;
  turns: TurnResult[];
}

/** A chat as plain JSON: what `toJSON` gives and `Chat.fromJSON` takes. API keys are never included. */
export interface ChatJSON {
  version: 1;
  models: string[];
  keyed: boolean;
  system: string | null;
  params: Record<string, unknown>;
  history: Record<string, Message[]>;
  usage: Record<string, Usage>;
  turns: Record<string, TurnResult[]>;
}

type Keyed<M, T> = M extends string ? T : Record<string, T>;

export class Chat<M extends string | string[] = string | string[]> {
  readonly #states = new Map<string, ModelState>();
  readonly #options: ChatOptions;
  #system: string | undefined;
  #keyed: boolean;
  #queue: Promise<void> = Promise.resolve();

  constructor(models: M, options: ChatOptions = {}) {
    const list = normalizeModels(models);
    this.#options = { ...options };
    this.#system = options.system;
    this.#keyed = Array.isArray(models);
    const ctx = turnOptions(this.#options);
    for (const m of list) {
      checkModelString(m, ctx);
      this.#states.set(m, this.#fresh());
    }
  }

  #fresh(): ModelState {
    return { history: this.#systemHistory(), usage: zeroUsage(), costFemto: 0n, turns: [] };
  }

  #systemHistory(): Message[] {
    return this.#system === undefined ? [] : [{ role: 'system', content: this.#system }];
  }

  #pick<T>(get: (s: ModelState) => T): Keyed<M, T> {
    if (!this.#keyed) return get(this.#only()) as Keyed<M, T>;
    const out: Record<string, T> = {};
    for (const [m, s] of this.#states) out[m] = get(s);
    return out as Keyed<M, T>;
  }

  #only(): ModelState {
    const [state] = this.#states.values();
    if (!state) throw new InvalidInputError('This chat has no model.');
    return state;
  }

  /** The models this chat talks to, in order. */
  get models(): string[] {
    return [...this.#states.keys()];
  }

  /** The model of a single-model chat. */
  get model(): string {
    if (this.#states.size !== 1) throw new InvalidInputError(`This chat has ${this.#states.size} models; read chat.models instead.`);
    return this.models[0] as string;
  }

  /**
   * Switch a single-model chat to another model (or provider), keeping the history and
   * usage: the next turn sends the whole conversation to the new model, in its protocol.
   * An invalid model string throws and the current model stays.
   */
  set model(next: string) {
    if (this.#states.size !== 1) throw new InvalidInputError('chat.model can only be set on a single-model chat; use replaceModel().');
    this.replaceModel(this.model, next);
  }

  /** Put `next` in the place of `current`, with its history, usage and turns. */
  replaceModel(current: string, next: string): void {
    const state = this.#states.get(current);
    if (!state) throw new InvalidInputError(`This chat has no model "${current}"; it has ${this.models.join(', ')}.`);
    if (current === next) return;
    if (this.#states.has(next)) throw new InvalidInputError(`This chat already talks to "${next}".`);
    checkModelString(next, turnOptions(this.#options));
    const entries = [...this.#states.entries()].map(([m, s]): [string, ModelState] => (m === current ? [next, state] : [m, s]));
    this.#states.clear();
    for (const [m, s] of entries) this.#states.set(m, s);
  }

  /** Add a model to compare; it starts from a copy of `from`'s history (default: the first model's). */
  addModel(model: string, options: { from?: string; emptyHistory?: boolean } = {}): void {
    if (this.#states.has(model)) throw new InvalidInputError(`This chat already talks to "${model}".`);
    checkModelString(model, turnOptions(this.#options));
    const source = options.from === undefined ? this.#states.values().next().value : this.#states.get(options.from);
    if (options.from !== undefined && !source) throw new InvalidInputError(`This chat has no model "${options.from}".`);
    const history = options.emptyHistory || !source ? this.#systemHistory() : structuredClone(source.history);
    this.#states.set(model, { history, usage: zeroUsage(), costFemto: 0n, turns: [] });
    this.#keyed = true;
  }

  /** Stop talking to a model; its history and usage are dropped. */
  dropModel(model: string): void {
    if (!this.#states.has(model)) throw new InvalidInputError(`This chat has no model "${model}"; it has ${this.models.join(', ')}.`);
    if (this.#states.size === 1) throw new InvalidInputError('A chat needs at least one model.');
    this.#states.delete(model);
  }

  /** The system prompt. Setting it replaces the first message of every history. */
  get system(): string | undefined {
    return this.#system;
  }
  set system(text: string | undefined) {
    this.#system = text;
    for (const state of this.#states.values()) {
      const rest = state.history[0]?.role === 'system' ? state.history.slice(1) : state.history;
      state.history = [...this.#systemHistory(), ...rest];
    }
  }

  /** One model: its messages. Several: messages keyed by model. A copy: changing it changes nothing. */
  get history(): Keyed<M, Message[]> {
    return this.#pick((s) => structuredClone(s.history));
  }

  /** Replace the history (one model: an array; several: an object keyed by model). Validated first. */
  set history(value: Keyed<M, Message[]>) {
    if (!this.#keyed) {
      this.#only().history = validateHistory(value);
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new InvalidHistoryError('history: a multi-model chat takes an object keyed by model.');
    }
    const checked = new Map<string, Message[]>();
    for (const [m, h] of Object.entries(value as Record<string, unknown>)) {
      if (!this.#states.has(m)) throw new InvalidHistoryError(`history: this chat has no model "${m}".`);
      checked.set(m, validateHistory(h, `history["${m}"]`));
    }
    for (const [m, h] of checked) (this.#states.get(m) as ModelState).history = h;
  }

  /** Tokens and cost so far: one model, its usage; several, keyed by model. */
  get usage(): Keyed<M, Usage> {
    return this.#pick((s) => ({ ...s.usage }));
  }

  /** Per-turn metadata: which model and provider answered, timings, usage and cost of each turn. */
  get turns(): Keyed<M, TurnResult[]> {
    return this.#pick((s) => [...s.turns]);
  }

  /** The metadata of the last finished turn (per model when several). */
  get lastTurn(): Keyed<M, TurnResult | undefined> {
    return this.#pick((s) => s.turns[s.turns.length - 1]);
  }

  resetHistory(): void {
    for (const s of this.#states.values()) s.history = this.#systemHistory();
  }

  resetUsage(): void {
    for (const s of this.#states.values()) {
      s.usage = zeroUsage();
      s.costFemto = 0n;
      s.turns = [];
    }
  }

  reset(): void {
    this.resetHistory();
    this.resetUsage();
  }

  /** Turns run one after another: a second send waits for the first to finish. */
  async #acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const previous = this.#queue;
    this.#queue = previous.then(() => next);
    await previous;
    return release;
  }

  /**
   * Send a message and stream the replies: text deltas tagged with their model, then a
   * finish event per model with the whole message, usage and cost. Each model's history
   * and usage are updated when its reply is complete; leaving the loop early cancels the
   * requests still running and adds nothing for them.
   */
  stream(input: Input, options: RequestOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    // Not an async generator itself: the returned stream hands out events without a generator
    // step each. A reply is committed as its finish event is handed out, as before.
    const turn: PendingTurn = { user: undefined, sent: new Map() };
    return fanOutStream(() => this.#turnBatches(input, options, turn), {
      onFinish: (result) => this.#commit(turn, result),
      signal: options.signal ?? this.#options.signal,
    });
  }

  async *#turnBatches(input: Input, options: RequestOptions, turn: PendingTurn): AsyncGenerator<StreamEvent[], void, undefined> {
    const release = await this.#acquire();
    try {
      // The next turn's request begins with this one's message objects: the cache key continues its hash.
      const turnOpts = { ...turnOptions(this.#options, options), historyContinues: true };
      const content = await toUserContent(input, turnOpts);
      // Copied once here, and this very object is what the history keeps: the next turn's request
      // then starts with the same message objects as this one (the response cache's key relies on it).
      const user: UserMessage = { role: 'user', content: typeof content === 'string' ? content : structuredClone(content) };
      turn.user = user;
      for (const m of this.models) turn.sent.set(m, this.#states.get(m) as ModelState);
      const messagesFor = (m: string): Message[] => [...(turn.sent.get(m) as ModelState).history, user];
      yield* fanOutBatches([...turn.sent.keys()], messagesFor, turnOpts);
    } finally {
      release();
    }
  }

  /** Add one model's finished turn (its reply, and any tool calls and results) to its history, usage and turns. */
  #commit(turn: PendingTurn, result: TurnResult): void {
    const state = turn.sent.get(result.model);
    if (!state || !turn.user) return;
    state.history.push(turn.user, ...structuredClone(result.messages ?? [result.message]));
    state.usage = addUsage(state.usage, result.usage);
    if (result.usage.cost !== null) state.costFemto += dollarsToFemto(result.usage.cost);
    if (state.usage.cost !== null) state.usage.cost = femtoToDollars(state.costFemto);
    state.turns.push(result);
  }

  /**
   * Send a message; returns the reply (one model) or replies keyed by model (an Error where
   * one failed). With `schema`, the validated object instead of the text.
   */
  async send<S extends SchemaInput>(input: Input, options: RequestOptions & { schema: S }): Promise<M extends string ? InferSchema<S> : Record<string, InferSchema<S> | Error>>;
  async send(input: Input, options?: RequestOptions): Promise<M extends string ? string : Replies>;
  async send(input: Input, options: RequestOptions = {}): Promise<unknown> {
    const collected = await collectReplies(this.stream(input, collectedRequest(options)), this.#keyed, this.models);
    const replies = options.schema === undefined ? collected.replies : collected.objects;
    return this.#keyed ? replies : replies[this.models[0] as string];
  }

  /** Plain JSON: models, system prompt, histories, usage and turns. Never includes an API key. */
  toJSON(): ChatJSON {
    const out: ChatJSON = {
      version: 1,
      models: this.models,
      keyed: this.#keyed,
      system: this.#system ?? null,
      params: { ...pickParams(this.#options) },
      history: {},
      usage: {},
      turns: {},
    };
    for (const [m, s] of this.#states) {
      out.history[m] = structuredClone(s.history);
      out.usage[m] = { ...s.usage };
      out.turns[m] = structuredClone(s.turns);
    }
    return out;
  }

  /**
   * Restore a chat from `toJSON()` output. It restores data (models, system prompt, request
   * parameters, histories, usage, turns), each part validated: types, ranges and depth. It never
   * restores configuration: endpoints, headers and keys come from `options`, the environment and
   * the config file, so a saved file cannot send requests (or the caller's keys) elsewhere.
   */
  static fromJSON(json: unknown, options: ChatOptions = {}): Chat {
    if (typeof json === 'string') json = parseJSON(json);
    if (typeof json !== 'object' || json === null) throw new InvalidHistoryError('Chat.fromJSON: expected an object from chat.toJSON().');
    checkDepth(json, 'Chat.fromJSON');
    const data = json as Partial<Record<keyof ChatJSON, unknown>>;
    if (data.version !== 1) throw new InvalidHistoryError(`Chat.fromJSON: unsupported version ${JSON.stringify(data.version)} (expected 1).`);
    if (!Array.isArray(data.models) || data.models.length === 0 || !data.models.every((m) => typeof m === 'string')) {
      throw new InvalidHistoryError('Chat.fromJSON: "models" must be a non-empty array of model strings.');
    }
    if (data.system !== undefined && data.system !== null && typeof data.system !== 'string') throw new InvalidHistoryError('Chat.fromJSON: "system" must be a string or null.');
    const system = typeof data.system === 'string' ? data.system : undefined;
    const models = data.keyed === false && data.models.length === 1 ? (data.models[0] as string) : (data.models as string[]);
    const params = validateParams(data.params);
    const section = (name: 'history' | 'usage' | 'turns'): Record<string, unknown> => {
      const value = data[name];
      if (value === undefined) return {};
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidHistoryError(`Chat.fromJSON: "${name}" must be an object keyed by model.`);
      return value as Record<string, unknown>;
    };
    const [histories, usages, turns] = [section('history'), section('usage'), section('turns')];
    const chat = new Chat(models, { ...params, ...options, ...(system === undefined ? {} : { system }) }) as Chat;
    for (const m of chat.models) {
      const state = chat.#states.get(m) as ModelState;
      if (Object.hasOwn(histories, m)) state.history = validateHistory(histories[m], `history["${m}"]`);
      if (Object.hasOwn(usages, m)) {
        state.usage = validateUsage(usages[m], `usage["${m}"]`);
        state.costFemto = state.usage.cost === null ? 0n : dollarsToFemto(state.usage.cost);
      }
      if (Object.hasOwn(turns, m)) state.turns = validateTurns(turns[m], `turns["${m}"]`);
    }
    return chat;
  }
}

function parseJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidHistoryError(`Chat.fromJSON: not JSON (${(err as Error).message}).`);
  }
}
