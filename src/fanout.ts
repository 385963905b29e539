/**
 * Asking one model or several at once: runs each model's turn concurrently and hands out
 * their events as one stream. One model: its failure is thrown. Several: a failure becomes
 * an `error` event for that model and the others carry on.
 */
import { SwitchboardError } from './errors.js';
import { EventStream, type OpenBatches } from './event-stream.js';
import { mergeSources } from './merge.js';
import { runModelTurn } from './tools/loop.js';
import type { TurnOptions } from './turn.js';
import type { Message, StreamEvent, TurnResult } from './types.js';

export interface FanOutHooks {
  /** Called when a model's turn has finished, before its finish event is handed out. */
  onFinish?: (result: TurnResult) => void;
  /** The caller's signal: once it aborts, no further event is handed out (not even buffered ones). */
  signal?: AbortSignal | undefined;
}

/**
 * The models' turns as one stream of event batches. Batches keep the internal layers to one
 * async-generator step per network read; `fanOutStream` hands the events out one by one.
 */
export function fanOutBatches(
  models: string[],
  messagesFor: (model: string) => Message[],
  options: TurnOptions,
): AsyncGenerator<StreamEvent[], void, undefined> {
  // One model: its turn as it is, without a generator layer in between.
  if (models.length === 1) {
    const model = models[0] as string;
    return runModelTurn(model, messagesFor(model), options);
  }
  return mergedTurns(models, messagesFor, options);
}

async function* mergedTurns(
  models: string[],
  messagesFor: (model: string) => Message[],
  options: TurnOptions,
): AsyncGenerator<StreamEvent[], void, undefined> {
  // One signal for the models' requests, so that leaving the stream early ends the ones still
  // waiting on their servers at once, stalled or slow (see mergeSources).
  const leave = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, leave.signal]) : leave.signal;
  const sources = models.map((model) => runModelTurn(model, messagesFor(model), { ...options, signal }));
  for await (const item of mergeSources(sources, () => leave.abort())) {
    const model = models[item.index] as string;
    if (item.error !== undefined) yield [{ type: 'error', model, error: asError(item.error) }];
    else if (item.value) yield item.value;
  }
}

/**
 * Events one at a time from a source of batches (see EventStream). `onFinish` runs as a
 * finish event is handed out, so a consumer that leaves before it commits nothing.
 */
export function fanOutStream(
  open: OpenBatches<StreamEvent>,
  hooks: FanOutHooks = {},
): AsyncGenerator<StreamEvent, void, undefined> {
  const { onFinish } = hooks;
  return new EventStream(
    open,
    onFinish &&
      ((event: StreamEvent) => {
        if (event.type === 'finish') onFinish(event.result);
      }),
    hooks.signal,
  );
}

/** Ask one model or several at once: their events as one stream. */
export function fanOut(
  models: string[],
  messagesFor: (model: string) => Message[],
  options: TurnOptions,
  hooks: FanOutHooks = {},
): AsyncGenerator<StreamEvent, void, undefined> {
  return fanOutStream(() => fanOutBatches(models, messagesFor, options), hooks);
}

function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new SwitchboardError('network', String(err));
}

/** What `send` and `run` return: one reply, or replies keyed by model (an Error where a model failed). */
export type Replies = Record<string, string | Error>;

/** Drain a fan-out stream into replies, keyed in the order of `models` (not of completion). With one model a failure is thrown. */
export async function collectReplies(
  events: AsyncIterable<StreamEvent>,
  keyed: boolean,
  models: readonly string[] = [],
): Promise<{ replies: Replies; objects: Record<string, unknown>; results: Record<string, TurnResult> }> {
  const replies: Replies = {};
  const objects: Record<string, unknown> = {};
  const results: Record<string, TurnResult> = {};
  const visit = (event: StreamEvent): void => {
    if (event.type === 'finish') {
      replies[event.model] = event.result.text;
      objects[event.model] = event.result.object;
      results[event.model] = event.result;
    } else if (event.type === 'error') {
      if (!keyed) throw event.error;
      replies[event.model] = event.error;
      objects[event.model] = event.error;
    }
  };
  // Our own streams are drained a batch at a time, without a promise per event.
  if (events instanceof EventStream) await events.forEach(visit);
  else for await (const event of events) visit(event);
  return { replies: inOrder(replies, models), objects: inOrder(objects, models), results: inOrder(results, models) };
}

function inOrder<T>(keyed: Record<string, T>, models: readonly string[]): Record<string, T> {
  if (models.length < 2) return keyed;
  const out: Record<string, T> = {};
  for (const m of models) if (Object.hasOwn(keyed, m)) out[m] = keyed[m] as T;
  for (const [m, v] of Object.entries(keyed)) if (!Object.hasOwn(out, m)) out[m] = v;
  return out;
}
