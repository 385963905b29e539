/**
 * One model's turn: route the request, read its events, and build the turn's result
 * (message, usage, cost, timings). Yields batches of stream events; the last batch holds
 * the `finish` event. Throws a typed error when the turn fails; the caller commits nothing then.
 */
import { fitToContext, tokenUpperBound } from './catalog/context.js';
import { defaultCatalog } from './catalog/catalog.js';
import { costFemtoFor } from './catalog/cost.js';
import { dollarsToFemto, femtoToDollars } from './money.js';
import { citationsFrom } from './citations.js';
import { ContextLengthError, OutputLimitError } from './errors.js';
import { sendRequest } from './protocols/transport.js';
import { getProtocol } from './protocols/index.js';
import type { ProviderRegistry } from './providers/registry.js';
import type { Limits } from './limits.js';
import { localContextLength, rememberContextLength } from './providers/local-context.js';
import { CUSTOM_PROVIDER, type Deployment } from './providers/resolve.js';
import type { Endpoint } from './protocols/protocol.js';
import { route, type RouteOptions } from './routing/router.js';
import type {
  AssistantMessage,
  FinishReason,
  Message,
  ReasoningDetail,
  RequestParams,
  StreamEvent,
  TokenUsage,
  ToolCall,
  TurnResult,
} from './types.js';
import { withCost } from './usage.js';
import { cachedTurn, type ResponseCache, type StoredDelta, type StoreReply } from './cache/response-cache.js';
import { providerCacheSaving } from './cache/savings.js';
import type { OutputSpec } from './tools/output.js';
import type { PreparedTool } from './tools/tool.js';

export interface TurnOptions extends RouteOptions {
  params: RequestParams;
  /** Tools to offer, run by the tool loop (tools/loop.ts); their definitions go into params there. */
  tools?: PreparedTool[] | undefined;
  /** Most rounds of tool calls before a last request without tools asks for the answer. */
  maxSteps?: number | undefined;
  /** Structured output: the reply is parsed and validated against this schema. */
  output?: OutputSpec | undefined;
  /** Milliseconds one request may take. */
  timeoutMs?: number | undefined;
  /** Time and size limits of each request and of media loading (defaults in limits.ts). */
  limits?: Limits | undefined;
  /** Cost from catalog prices when the provider reports none; null when no price is known. */
  priceCost?: ((deployment: Deployment, usage: TokenUsage) => number | null) | undefined;
  /**
   * A prompt too long for the model's context (as the catalog knows it): `error` refuses it
   * with both numbers; `drop-oldest` sends it without its oldest turns (the history keeps them).
   */
  fitContext?: 'error' | 'drop-oldest' | undefined;
  /** The response cache to answer from and write to (cache/response-cache.ts); none when absent. */
  cache?: ResponseCache | undefined;
  /** The next turn's request extends this one's message objects (Chat): the cache key keeps its hash state. */
  historyContinues?: boolean | undefined;
}

/** Catalog price times tokens, femto-dollars; free on local servers; unknown (null) on a custom endpoint. */
export function catalogCostFemto(options: { registry: ProviderRegistry }, deployment: Deployment, usage: TokenUsage): bigint | null {
  if (deployment.provider === CUSTOM_PROVIDER) return null;
  const config = options.registry.has(deployment.provider) ? options.registry.get(deployment.provider) : undefined;
  if (config?.local) return 0n;
  // A cloud deployment is priced by its own id first: Bedrock's global and in-region ids of one model cost differently.
  if (config?.cloud && defaultCatalog().atProvider(deployment.provider, deployment.providerModel)) return costFemtoFor(usage, deployment.providerModel, deployment.provider);
  return costFemtoFor(usage, deployment.model, deployment.provider);
}

/**
 * What a reply cost, femto-dollars: the provider's reported dollars read by their digits, else
 * the catalog's price of its usage; null when neither is known (no report and no usage).
 */
export function replyCostFemto(options: { registry: ProviderRegistry }, deployment: Deployment, usage: TokenUsage | undefined, reportedCost: number | undefined): bigint | null {
  if (reportedCost !== undefined) return dollarsToFemto(reportedCost);
  return usage ? catalogCostFemto(options, deployment, usage) : null;
}

/** The same in dollars. */
export function catalogCost(options: { registry: ProviderRegistry }, deployment: Deployment, usage: TokenUsage): number | null {
  const femto = catalogCostFemto(options, deployment, usage);
  return femto === null ? null : femtoToDollars(femto);
}

/** Tokens that fit any model's context window (the smallest in use hold 2,048 or more). */
const SMALLEST_CONTEXT = 2048;

/** A local server or a custom endpoint: its context length is whatever it was started with, so it is asked. */
function servesOwnContext(deployment: Deployment, options: TurnOptions): boolean {
  return deployment.provider === CUSTOM_PROVIDER || (options.registry.has(deployment.provider) && options.registry.get(deployment.provider).local === true);
}

/**
 * The messages to send to a deployment, checked against its context length: the server's own
 * figure for a local server or a custom endpoint (asked once, see local-context.ts), else the
 * catalog's. A Promise only when the server has to be asked.
 */
function messagesFor(deployment: Deployment, endpoint: Endpoint, messages: Message[], options: TurnOptions, signal: AbortSignal | undefined): Message[] | Promise<Message[]> {
  const reserve = options.params.maxTokens ?? 0;
  const bound = tokenUpperBound(messages) + reserve;
  // Below every model's context: no need to load the catalog (a first call stays quick).
  if (bound <= SMALLEST_CONTEXT) return messages;
  const fit = (contextLength: number | undefined): Message[] =>
    contextLength === undefined || bound <= contextLength
      ? messages
      : fitToContext(messages, contextLength, reserve, { dropOldest: options.fitContext === 'drop-oldest' });
  const catalogLength = (): number | undefined => defaultCatalog().get(deployment.model)?.contextLength;
  if (!servesOwnContext(deployment, options)) return fit(catalogLength());
  return localContextLength(endpoint, deployment.providerModel, signal).then((n) => fit(n ?? catalogLength()));
}

interface PartialToolCall {
  id: string;
  name: string;
  args: string;
}

/** Collects one attempt's events into a turn result. */
class TurnAccumulator {
  text = '';
  reasoning = '';
  reasoningBlocks: ReasoningDetail[] = [];
  toolCalls = new Map<number, PartialToolCall>();
  usage: TokenUsage | undefined;
  reportedCost: number | undefined;
  finish: FinishReason | undefined;
  rawFinish: string | undefined;
  resolvedModel: string | undefined;
  reportedProvider: string | undefined;
  annotations: unknown[] = [];
  providerBlocks: Record<string, unknown>[] = [];
  /** The deltas handed out, kept only when the reply is to be stored in the response cache. */
  deltas: StoredDelta[] | undefined;

  constructor(recording: boolean) {
    if (recording) this.deltas = [];
  }
}

/** One request's turn, answered from the response cache when one is on. */
export function runTurn(modelString: string, messages: Message[], options: TurnOptions): AsyncGenerator<StreamEvent[], void, undefined> {
  return options.cache ? cachedTurn(modelString, messages, options, options.cache, liveTurn) : liveTurn(modelString, messages, options);
}

/**
 * The turn sent to a provider. Given `store` (a response-cache miss), it also keeps the deltas
 * of the attempt that answers and stores the whole reply before handing out the finish.
 */
async function* liveTurn(
  modelString: string,
  messages: Message[],
  options: TurnOptions,
  store?: StoreReply,
  refit = true,
): AsyncGenerator<StreamEvent[], void, undefined> {
  const started = performance.now();
  const startedAt = isoTime(Date.now());
  let firstTokenAt: number | undefined;
  let acc = new TurnAccumulator(store !== undefined);
  let deployment: Deployment | undefined;
  const protocolOf = (name: Parameters<typeof getProtocol>[0]) => getProtocol(name);

  const send = (dep: Deployment, endpoint: Endpoint, signal: AbortSignal | undefined, sent: Message[]) =>
    sendRequest(
      protocolOf(endpoint.protocol),
      endpoint,
      { model: dep.providerModel, messages: sent, params: mergeExtraBody(options.params, dep), stream: true },
      { signal, timeoutMs: options.timeoutMs, limits: options.limits },
    );
  const items = route(modelString, options, (dep, endpoint, signal) => {
    const fitted = messagesFor(dep, endpoint, messages, options, signal);
    // The common case goes straight to the transport; only a server that must be asked first adds a step.
    if (Array.isArray(fitted)) return send(dep, endpoint, signal, fitted);
    return (async function* () {
      yield* send(dep, endpoint, signal, await fitted);
    })();
  });

  let endpoint: Endpoint | undefined;
  try {
    for await (const item of items) {
      if (item.kind === 'attempt') {
        deployment = item.deployment;
        endpoint = item.endpoint;
        acc = new TurnAccumulator(store !== undefined);
        continue;
      }
      const out: StreamEvent[] = [];
      for (const event of item.events) {
        switch (event.type) {
          case 'text-delta':
            firstTokenAt ??= performance.now();
            acc.text += event.text;
            acc.deltas?.push([0, event.text]);
            out.push({ type: 'text-delta', model: modelString, text: event.text });
            break;
          case 'reasoning-delta':
            firstTokenAt ??= performance.now();
            if (event.text) {
              acc.reasoning += event.text;
              acc.deltas?.push([1, event.text]);
              out.push({ type: 'reasoning-delta', model: modelString, text: event.text });
            }
            addReasoning(acc.reasoningBlocks, event.text, event.signature);
            break;
          case 'tool-call-delta': {
            firstTokenAt ??= performance.now();
            let call = acc.toolCalls.get(event.index);
            if (!call) {
              call = { id: event.id ?? '', name: event.name ?? '', args: '' };
              acc.toolCalls.set(event.index, call);
            }
            if (event.id) call.id = event.id;
            if (event.name) call.name = event.name;
            call.args += event.argumentsDelta;
            break;
          }
          case 'usage':
            acc.usage = event.usage;
            if (event.cost !== undefined) acc.reportedCost = event.cost;
            break;
          case 'finish':
            acc.finish = event.reason;
            acc.rawFinish = event.rawReason;
            break;
          case 'start':
            if (event.model) acc.resolvedModel = event.model;
            if (event.provider) acc.reportedProvider = event.provider;
            break;
          case 'annotations':
            acc.annotations.push(...event.annotations);
            break;
          case 'provider-block':
            firstTokenAt ??= performance.now();
            acc.providerBlocks.push(event.block);
            break;
        }
      }
      if (out.length > 0) yield out;
    }
  } catch (err) {
    // The server says the prompt does not fit (and so how long its context is) where it had not
    // published that: remember the figure, and with drop-oldest send once more, fitted to it.
    if (refit && err instanceof ContextLengthError && err.provider !== undefined && endpoint && deployment && servesOwnContext(deployment, options) && options.fitContext === 'drop-oldest' && firstTokenAt === undefined) {
      rememberContextLength(endpoint, deployment.providerModel, err.contextLength);
      yield* liveTurn(modelString, messages, options, store, false);
      return;
    }
    throw err;
  }

  if (!deployment) throw new Error('router produced no attempt');
  const ended = performance.now();
  const toolCalls: ToolCall[] = [...acc.toolCalls.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([i, c]) => ({ id: c.id || `call_${i}`, type: 'function', function: { name: c.name, arguments: c.args } }));
  if (acc.finish === 'length') {
    const cut = toolCalls.filter((c) => !isCompleteJSON(c.function.arguments));
    if (cut.length > 0) throw new OutputLimitError(modelString, cut.map((c) => c.function.name || '(unnamed tool)'));
  }
  const message: AssistantMessage = { role: 'assistant', content: toolCalls.length > 0 && acc.text === '' ? null : acc.text };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  const tokens: TokenUsage = acc.usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
  const price = options.priceCost ?? ((dep: Deployment, usage: TokenUsage) => catalogCost(options, dep, usage));
  const cost = acc.reportedCost ?? (acc.usage ? price(deployment, tokens) : null);
  const usage = withCost(tokens, cost);
  const saved = providerCacheSaving(tokens, cost, (uncached) => price(deployment as Deployment, uncached));
  if (saved !== undefined) usage.savedCost = saved;
  const generating = firstTokenAt === undefined ? 0 : (ended - firstTokenAt) / 1000;
  const result: TurnResult = {
    model: modelString,
    resolvedModel: acc.resolvedModel ?? deployment.providerModel,
    provider: providerLabel(deployment.provider, acc.reportedProvider),
    text: acc.text,
    message,
    finishReason: acc.finish ?? (toolCalls.length > 0 ? 'tool-calls' : 'stop'),
    usage,
    ttftMs: firstTokenAt === undefined ? null : round(firstTokenAt - started),
    latencyMs: round(ended - started),
    tokensPerSecond: generating > 0 && tokens.completionTokens > 0 ? round(tokens.completionTokens / generating) : null,
    startedAt,
  };
  if (acc.rawFinish !== undefined) result.rawFinishReason = acc.rawFinish;
  if (acc.reasoning) result.reasoning = acc.reasoning;
  if (acc.annotations.length > 0) {
    result.annotations = acc.annotations;
    const citations = citationsFrom(acc.annotations);
    if (citations.length > 0) result.citations = citations;
  }
  if (acc.reasoningBlocks.some((b) => b.signature !== undefined)) result.reasoningDetails = acc.reasoningBlocks;
  if (acc.providerBlocks.length > 0) result.providerBlocks = { provider: deployment.provider, blocks: acc.providerBlocks };
  if (store) {
    const stored = store(result, acc.deltas ?? []);
    if (stored) await stored;
  }
  yield [{ type: 'finish', model: modelString, result }];
}

/** Whether tool-call arguments are a whole JSON value (not cut off in the middle). */
function isCompleteJSON(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Reasoning text joins the open block; a signature closes it (Anthropic sends one per thinking block). */
function addReasoning(blocks: ReasoningDetail[], text: string, signature: string | undefined): void {
  let last = blocks[blocks.length - 1];
  if (!last || last.signature !== undefined) {
    if (!text && signature === undefined) return;
    last = { text: '' };
    blocks.push(last);
  }
  last.text += text;
  if (signature !== undefined) last.signature = signature;
}

/** OpenRouter reports the upstream host it chose; show both (`openrouter/Groq`). */
function providerLabel(provider: string, reported: string | undefined): string {
  if (!reported || reported === provider) return provider;
  return `${provider}/${reported}`;
}

function mergeExtraBody(params: RequestParams, deployment: Deployment): RequestParams {
  if (!deployment.extraBody) return params;
  return { ...params, extraBody: { ...deployment.extraBody, ...params.extraBody } };
}

let isoSecond = NaN;
let isoPrefix = '';
/**
 * `new Date(ms).toISOString()`, reusing the formatted second: formatting a date costs more
 * (about 1.5 µs) than the rest of a turn's bookkeeping, and turns often start in the same second.
 */
function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, -5); // without ".000Z"
  }
  return `${isoPrefix}.${String(ms - second * 1000).padStart(3, '0')}Z`;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
