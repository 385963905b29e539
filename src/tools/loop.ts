/**
 * One model's turn with tools or structured output: ask, run the tools the model called
 * (concurrently), send their results back, and repeat until the model answers in text.
 * When the rounds run out, one last request with tool choice `none` asks for the answer:
 * no internal prompt is ever sent or kept. A structured reply that fails validation is
 * asked for once more with the error (that exchange stays out of the history).
 *
 * The whole loop is one turn: it yields stream events, and its single `finish` carries
 * the final message, every message to add to the history, the steps and the summed usage.
 * If any request fails, it throws and the caller commits nothing.
 */
import { AbortError, StructuredOutputError } from '../errors.js';
import { runTurn, type TurnOptions } from '../turn.js';
import type { AssistantMessage, Message, RequestParams, StreamEvent, ToolMessage, TurnResult, TurnStep } from '../types.js';
import { addUsage, zeroUsage } from '../usage.js';
import { sumCosts } from '../money.js';
import { parseOutput, responseFormatFor, retryPrompt } from './output.js';
import { runToolCall } from './tool.js';

/** Rounds of tool calls when the caller sets no `maxSteps`. */
export const DEFAULT_MAX_STEPS = 5;

/** An assistant message as sent back within the loop: with its reasoning and provider blocks for the same provider. */
type ReplayMessage = AssistantMessage & { reasoning_details?: TurnResult['reasoningDetails']; provider_blocks?: TurnResult['providerBlocks'] };

/** Run one request and hand out its events; returns its result instead of a finish event. */
async function* request(model: string, messages: Message[], options: TurnOptions, params: RequestParams): AsyncGenerator<StreamEvent[], TurnResult, undefined> {
  let result: TurnResult | undefined;
  for await (const batch of runTurn(model, messages, { ...options, params })) {
    const out: StreamEvent[] = [];
    for (const event of batch) {
      if (event.type === 'finish') result = event.result;
      else out.push(event);
    }
    if (out.length > 0) yield out;
  }
  if (!result) throw new Error('a turn ended without a result');
  return result;
}

/** A model's turn: plain, or the tool loop when tools or a schema are given. */
export function runModelTurn(model: string, messages: Message[], options: TurnOptions): AsyncGenerator<StreamEvent[], void, undefined> {
  // Without tools or a schema a turn is one request: hand it out as it is, with no
  // generator layer in between (the streaming hot path).
  if ((options.tools ?? []).length === 0 && !options.output) return runTurn(model, messages, options);
  return runToolLoop(model, messages, options);
}

async function* runToolLoop(model: string, messages: Message[], options: TurnOptions): AsyncGenerator<StreamEvent[], void, undefined> {
  const tools = options.tools ?? [];
  const started = performance.now();
  const maxSteps = Math.max(0, options.maxSteps ?? DEFAULT_MAX_STEPS);
  const base: RequestParams = { ...options.params };
  if (tools.length > 0) base.tools = tools.map((t) => t.definition);
  if (options.output) base.responseFormat = responseFormatFor(options.output);

  const added: Message[] = [];
  const sent: Message[] = [];
  const steps: TurnStep[] = [];
  const results: TurnResult[] = [];
  let kind: TurnStep['kind'] = 'initial';
  let rounds = 0;
  let retried = false;
  let object: unknown;
  let final: AssistantMessage;

  for (;;) {
    const finalAnswer = kind === 'final-answer';
    const params = finalAnswer ? { ...base, toolChoice: 'none' as const } : base;
    const context = [...messages, ...sent];
    const result = yield* request(model, context, options, params);
    results.push(result);
    const step: TurnStep = {
      step: results.length,
      kind,
      provider: result.provider,
      resolvedModel: result.resolvedModel,
      message: result.message,
      finishReason: result.finishReason,
      usage: result.usage,
      latencyMs: result.latencyMs,
    };
    if (result.reasoning) step.reasoning = result.reasoning;
    steps.push(step);
    const calls = result.message.tool_calls ?? [];

    if (calls.length > 0 && !finalAnswer) {
      added.push(result.message);
      const replay: ReplayMessage = { ...result.message };
      if (result.reasoningDetails) replay.reasoning_details = result.reasoningDetails;
      if (result.providerBlocks) replay.provider_blocks = result.providerBlocks;
      sent.push(replay);
      // Calls to a tool without a function end the turn: the caller answers them.
      if (calls.some((c) => tools.find((t) => t.definition.name === c.function.name && !t.execute))) {
        final = result.message;
        break;
      }
      yield calls.map((c) => ({ type: 'tool-call', model, step: step.step, id: c.id, name: c.function.name, arguments: c.function.arguments }));
      const signal = options.signal;
      // Each tool gets a copy of the conversation: the objects themselves are the chat's history
      // and what the response cache's kept hash states were computed from (cache/key.ts), so a
      // tool changing one would change what is sent and kept without changing the key.
      const outcomes = await Promise.all(calls.map((call) => runToolCall(call, tools, { model, messages: structuredClone(context), signal })));
      if (signal?.aborted) throw new AbortError();
      const toolMessages: ToolMessage[] = outcomes.map((o) => o.message);
      step.toolResults = toolMessages;
      yield outcomes.map((o, i) => {
        const call = calls[i] as (typeof calls)[number];
        return { type: 'tool-result', model, step: step.step, id: call.id, name: call.function.name, result: o.result, content: o.message.content, isError: o.isError };
      });
      added.push(...toolMessages);
      sent.push(...toolMessages);
      rounds++;
      kind = rounds >= maxSteps ? 'final-answer' : 'tool-results';
      continue;
    }

    // A text answer (a model that still calls tools when told not to keeps only its text).
    const message: AssistantMessage = calls.length > 0 ? { role: 'assistant', content: result.text } : result.message;
    if (options.output) {
      const check = parseOutput(options.output, result.text);
      if (!check.ok) {
        if (retried) throw new StructuredOutputError(model, result.text, check.error);
        retried = true;
        sent.push({ role: 'assistant', content: result.text }, { role: 'user', content: retryPrompt(check.error) });
        kind = 'structured-retry';
        continue;
      }
      object = check.value;
    }
    added.push(message);
    final = message;
    break;
  }

  yield [{ type: 'finish', model, result: combine(model, results, steps, added, final, object, started, options.output !== undefined) }];
}

/** The turn's result: the last request's answer, every step's usage summed, the messages to keep. */
function combine(model: string, results: TurnResult[], steps: TurnStep[], added: Message[], final: AssistantMessage, object: unknown, started: number, structured: boolean): TurnResult {
  const first = results[0] as TurnResult;
  const last = results[results.length - 1] as TurnResult;
  const out: TurnResult = {
    ...last,
    model,
    text: final.content ?? '',
    message: final,
    usage: results.reduce((sum, r) => addUsage(sum, r.usage), zeroUsage()),
    ttftMs: first.ttftMs,
    latencyMs: Math.round((performance.now() - started) * 10) / 10,
    startedAt: first.startedAt,
    steps,
  };
  // Cached only when every request of the turn was answered from the response cache.
  if (results.every((r) => r.cached)) out.cached = true;
  else delete out.cached;
  // A free local model sums to cost 0; an unknown price anywhere leaves the sum unknown.
  out.usage.cost = results.some((r) => r.usage.cost === null) ? null : sumCosts(results.map((r) => r.usage.cost));
  const reasoning = results.map((r) => r.reasoning ?? '').filter(Boolean).join('\n\n');
  if (reasoning) out.reasoning = reasoning;
  else delete out.reasoning;
  delete out.reasoningDetails;
  delete out.providerBlocks;
  const annotations = results.flatMap((r) => r.annotations ?? []);
  if (annotations.length > 0) out.annotations = annotations;
  const citations = results.flatMap((r) => r.citations ?? []);
  if (citations.length > 0) out.citations = citations;
  if (added.length !== 1 || added[0] !== final) out.messages = added;
  if (structured) out.object = object;
  return out;
}
