/**
 * Asking one model or several at once: runs each model's turn concurrently and hands out
 * their events as one stream. One model: its failure is thrown. Several: a failure becomes
 * an `error` event for that model and the others carry on.
 */
import { SwitchboardError } from './errors.js';
import { mergeSources } from './merge.js';
import { runModelTurn } from './tools/loop.js';
import type { TurnOptions } from './turn.js';
import type { Message, StreamEvent, TurnResult } from './types.js';

export interface FanOutHooks {
  /** Called when a model's turn has finished, before its finish event is handed out. */
  onFinish?: (result: TurnResult) => void;
}

export async function* fanOut(
  models: string[],
  messagesFor: (model: string) => Message[],
  options: TurnOptions,
  hooks: FanOutHooks = {},
): AsyncGenerator<StreamEvent, void, undefined> {
  if (models.length === 1) {
    const model = models[0] as string;
    for await (const batch of runModelTurn(model, messagesFor(model), options)) {
      for (const event of batch) {
        if (event.type === 'finish') hooks.onFinish?.(event.result);
        yield event;
      }
    }
    return;
  }
  const sources = models.map((model) => runModelTurn(model, messagesFor(model), options));
  for await (const item of mergeSources(sources)) {
    const model = models[item.index] as string;
    if (item.error !== undefined) {
      yield { type: 'error', model, error: asError(item.error) };
      continue;
    }
    if (!item.value) continue;
    for (const event of item.value) {
      if (event.type === 'finish') hooks.onFinish?.(event.result);
      yield event;
    }
  }
}

function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new SwitchboardError('network', String(err));
}

/** What `send` and `run` return: one reply, or replies keyed by model (an Error where a model failed). */
export type Replies = Record<string, string | Error>;

/** Drain a fan-out stream into replies. With one model a failure is thrown. */
export async function collectReplies(
  events: AsyncIterable<StreamEvent>,
  keyed: boolean,
): Promise<{ replies: Replies; objects: Record<string, unknown>; results: Record<string, TurnResult> }> {
  const replies: Replies = {};
  const objects: Record<string, unknown> = {};
  const results: Record<string, TurnResult> = {};
  for await (const event of events) {
    if (event.type === 'finish') {
      replies[event.model] = event.result.text;
      objects[event.model] = event.result.object;
      results[event.model] = event.result;
    } else if (event.type === 'error') {
      if (!keyed) throw event.error;
      replies[event.model] = event.error;
      objects[event.model] = event.error;
    }
  }
  return { replies, objects, results };
}
