/**
 * Call: stateless requests to one model or several at once. `run` returns the reply text
 * for one model, or an object keyed by model for several.
 */
import { collectReplies, fanOutBatches, fanOutStream, type Replies } from './fanout.js';
import { toUserContent, type Input } from './input.js';
import { collectedRequest, turnOptions, type ClientOptions, type RequestOptions } from './options.js';
import { checkModelString } from './routing/router.js';
import type { Message, StreamEvent, TurnResult } from './types.js';
import type { TurnOptions } from './turn.js';
import { InvalidInputError } from './errors.js';
import type { InferSchema, SchemaInput } from './tools/schema.js';

export interface CallOptions extends ClientOptions {
  /** A system prompt sent before every input. */
  system?: string;
}

export function normalizeModels(models: string | string[]): string[] {
  const list = typeof models === 'string' ? [models] : models;
  if (!Array.isArray(list) || list.length === 0) throw new InvalidInputError('Name at least one model, e.g. "sim/llama" or "openai/gpt-4o-mini".');
  const seen = new Set<string>();
  for (const m of list) {
    if (typeof m !== 'string') throw new InvalidInputError(`Model names are strings; got ${typeof m}.`);
    if (seen.has(m)) throw new InvalidInputError(`Model "${m}" is named twice.`);
    seen.add(m);
  }
  return [...list];
}

export class Call<M extends string | string[] = string | string[]> {
  readonly models: string[];
  /** The last run's per-model metadata (provider, timings, usage, cost). */
  lastResults: Record<string, TurnResult> = {};
  readonly #options: CallOptions;
  readonly #keyed: boolean;

  constructor(models: M, options: CallOptions = {}) {
    this.models = normalizeModels(models);
    this.#keyed = Array.isArray(models);
    this.#options = { ...options };
    const ctx = turnOptions(this.#options);
    for (const m of this.models) checkModelString(m, ctx);
  }

  async #messages(input: Input, options: TurnOptions): Promise<Message[]> {
    const content = await toUserContent(input, options);
    const messages: Message[] = [];
    if (this.#options.system !== undefined) messages.push({ role: 'system', content: this.#options.system });
    messages.push({ role: 'user', content });
    return messages;
  }

  /** Stream the replies: text deltas tagged with their model, then a finish event per model. */
  stream(input: Input, options: RequestOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    // Not an async generator itself: the returned stream hands out events without a generator
    // step each, and the turn's batches reach it with no layer in between.
    return fanOutStream(
      async () => {
        const turnOpts = turnOptions(this.#options, options);
        const messages = await this.#messages(input, turnOpts);
        return fanOutBatches(this.models, () => messages, turnOpts);
      },
      {
        onFinish: (r) => {
          this.lastResults[r.model] = r;
        },
        signal: options.signal ?? this.#options.signal,
      },
    );
  }

  /** The reply (one model) or replies keyed by model; with `schema`, the validated object(s). */
  async run<S extends SchemaInput>(input: Input, options: RequestOptions & { schema: S }): Promise<M extends string ? InferSchema<S> : Record<string, InferSchema<S> | Error>>;
  async run(input: Input, options?: RequestOptions): Promise<M extends string ? string : Replies>;
  async run(input: Input, options: RequestOptions = {}): Promise<unknown> {
    this.lastResults = {};
    const collected = await collectReplies(this.stream(input, collectedRequest(options)), this.#keyed, this.models);
    const replies = options.schema === undefined ? collected.replies : collected.objects;
    return this.#keyed ? replies : replies[this.models[0] as string];
  }
}
