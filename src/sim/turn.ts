/**
 * One planned reply: the text cut into one-token pieces, the token counts, the cost and
 * the delay before each piece, and the canonical events that carry it. A protocol's server
 * half writes those events in its own wire format.
 */
import { randomBytes } from 'node:crypto';
import type { StreamEnd } from '../protocols/protocol.js';
import type { GenerationTiming } from '../protocols/timings.js';
import type { ProtocolEvent, TokenUsage } from '../types.js';
import { canonicalModel, countPromptTokens, type SimRequest } from './conversation.js';
import type { SimModelProfile, SimProviderProfile } from './profiles.js';
import { createRng, hashString } from './random.js';
import { composeReply } from './replies.js';
import { countTokens, splitTokens } from './tokens.js';
import { planExtras, type PlannedCall } from './tool-replies.js';

export interface PlannedTurn {
  /** A fresh id per response (without a protocol prefix). */
  id: string;
  /** Unix seconds. */
  created: number;
  /** The model id as the client sent it. */
  model: string;
  provider: string;
  /** The reply, one token per piece (leading whitespace included). */
  pieces: string[];
  text: string;
  promptTokens: number;
  /** Of the prompt, tokens read from and written to the simulated prompt cache (set by sim/prompt-cache.ts). */
  cachedTokens: number;
  cacheWriteTokens: number;
  /** Of the writes, those under a 1-hour breakpoint (Anthropic bills them at a higher rate). */
  cacheWrite1hTokens: number;
  completionTokens: number;
  finish: 'stop' | 'length' | 'tool-calls';
  /** The stop sequence the reply ended at (not included in the text). */
  stopSequence?: string;
  /** Tool calls the reply makes (after any text). */
  toolCalls: PlannedCall[];
  /** Thinking before the reply, when reasoning was asked for. */
  reasoning: string;
  /** Reasoning tokens (part of completionTokens). */
  reasoningTokens: number;
  /** Web citations (url_citation shape) and one unknown annotation, for `:online` replies. */
  annotations: unknown[];
  /** US dollars: tokens times the provider's price per million. */
  cost: number;
  /** Milliseconds to wait before each piece, already scaled: the first is the TTFT. */
  delays: number[];
  /** The generation timing to report on the last event (the `timings` option). */
  timing?: GenerationTiming;
}

/** Prompt tokens of a request, tools included: what usage reports and the token-counting endpoints answer. */
export function requestTokens(request: SimRequest): number {
  return countPromptTokens(request) + (request.tools ?? []).reduce((n, t) => n + countTokens(t.name) + countTokens(t.description) + countTokens(JSON.stringify(t.parameters)), 0);
}

/** Round away binary noise (0.1 + 0.2) without losing any real precision of a price. */
function roundCost(dollars: number): number {
  return Math.round(dollars * 1e12) / 1e12;
}

/** The seed of a conversation: same model, provider and messages, same reply. */
export function conversationSeed(request: SimRequest, provider: string): number {
  const transcript = JSON.stringify([canonicalModel(request.model), provider, request.system, request.messages]);
  return hashString(transcript);
}

export function planTurn(
  request: SimRequest,
  provider: string,
  profile: SimProviderProfile,
  modelProfile: SimModelProfile,
  timeScale: number,
  callPrefix = 'call_',
  /** Which of several candidates (OpenAI `n`, Gemini `candidateCount`): each gets its own seed. */
  candidate = 0,
): PlannedTurn {
  const base = conversationSeed(request, provider);
  const seed = candidate === 0 ? base : hashString(`${base}:${candidate}`);
  const extras = planExtras(request, seed, callPrefix);
  const calling = extras.toolCalls.length > 0;
  const text = calling
    ? ''
    : (extras.text ??
      composeReply(request, {
        model: canonicalModel(request.model),
        provider,
        replyWords: modelProfile.replyWords,
        rng: createRng(seed),
      }));
  const stopped = applyStop(text, request.stop);
  let pieces = splitTokens(stopped.text);
  let finish: PlannedTurn['finish'] = calling ? 'tool-calls' : 'stop';
  if (request.maxTokens !== undefined && pieces.length > request.maxTokens) {
    pieces = pieces.slice(0, request.maxTokens);
    finish = 'length';
  }
  const promptTokens = requestTokens(request);
  const reasoning = extras.reasoning ?? '';
  const reasoningTokens = countTokens(reasoning);
  const callTokens = extras.toolCalls.reduce((n, c) => n + countTokens(c.name) + countTokens(c.arguments), 0);
  const completionTokens = pieces.length + reasoningTokens + callTokens;
  const turn: PlannedTurn = {
    id: randomBytes(12).toString('hex'),
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    provider,
    pieces,
    text: pieces.join(''),
    promptTokens,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    cacheWrite1hTokens: 0,
    completionTokens,
    finish,
    toolCalls: extras.toolCalls,
    reasoning,
    reasoningTokens,
    annotations: extras.annotations ?? [],
    cost: 0,
    delays: planDelays(pieces.length, profile, timeScale, createRng(seed ^ 0x9e3779b9)),
  };
  if (stopped.sequence !== undefined && finish === 'stop') turn.stopSequence = stopped.sequence;
  turn.cost = priceTurn(turn, profile);
  return turn;
}

/**
 * A turn's cost at the provider's prices: uncached input, cache reads, 5-minute writes at the
 * write price, 1-hour writes at the 1-hour price (default twice the input price, Anthropic's), output.
 */
export function priceTurn(turn: Pick<PlannedTurn, 'promptTokens' | 'cachedTokens' | 'cacheWriteTokens' | 'completionTokens'> & { cacheWrite1hTokens?: number }, profile: SimProviderProfile): number {
  const uncached = turn.promptTokens - turn.cachedTokens - turn.cacheWriteTokens;
  const hourWrites = Math.min(turn.cacheWrite1hTokens ?? 0, turn.cacheWriteTokens);
  const writes = (turn.cacheWriteTokens - hourWrites) * (profile.cacheWritePrice ?? profile.inputPrice) + hourWrites * (profile.cacheWrite1hPrice ?? 2 * profile.inputPrice);
  const input = uncached * profile.inputPrice + turn.cachedTokens * profile.cacheReadPrice + writes;
  return roundCost((input + turn.completionTokens * profile.outputPrice) / 1e6);
}

/** Usage and cost of several candidates of one request: the prompt is read (and paid) once. */
export function candidatesTotal(turns: PlannedTurn[], profile: SimProviderProfile): { usage: TokenUsage; cost: number } {
  const promptTokens = turns[0]?.promptTokens ?? 0;
  const completionTokens = turns.reduce((n, t) => n + t.completionTokens, 0);
  const reasoningTokens = turns.reduce((n, t) => n + t.reasoningTokens, 0);
  return {
    usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, cachedTokens: 0, reasoningTokens },
    cost: roundCost((promptTokens * profile.inputPrice + completionTokens * profile.outputPrice) / 1e6),
  };
}

/** The text up to the first stop sequence it contains, and that sequence. */
function applyStop(text: string, stop: string[] | undefined): { text: string; sequence?: string } {
  let cut = -1;
  let sequence: string | undefined;
  for (const s of stop ?? []) {
    const at = s === '' ? -1 : text.indexOf(s);
    if (at >= 0 && (cut < 0 || at < cut)) {
      cut = at;
      sequence = s;
    }
  }
  return sequence === undefined ? { text } : { text: text.slice(0, cut), sequence };
}

/** Split a string into about three fragments, as providers stream tool arguments. */
export function fragments(text: string): string[] {
  if (text.length < 6) return [text];
  const a = Math.floor(text.length / 3);
  const b = Math.floor((2 * text.length) / 3);
  return [text.slice(0, a), text.slice(a, b), text.slice(b)];
}

/** The canonical events of a planned turn: those before the text, one per text piece, those after it, and how it ends. */
export interface TurnEvents {
  before: ProtocolEvent[];
  after: ProtocolEvent[];
  end: StreamEnd;
}

/** A stand-in reasoning signature: opaque to clients, checked by nobody but a real API. */
function signature(turn: PlannedTurn): string {
  return Buffer.from(`sim-signature:${turn.id}`).toString('base64');
}

export function turnEvents(turn: PlannedTurn): TurnEvents {
  const before: ProtocolEvent[] = [];
  if (turn.reasoning) {
    for (const text of fragments(turn.reasoning)) before.push({ type: 'reasoning-delta', text });
    before.push({ type: 'reasoning-delta', text: '', signature: signature(turn) });
  }
  const after: ProtocolEvent[] = [];
  if (turn.annotations.length > 0) after.push({ type: 'annotations', annotations: turn.annotations });
  turn.toolCalls.forEach((c, index) => {
    after.push({ type: 'tool-call-delta', index, id: c.id, name: c.name, argumentsDelta: '' });
    for (const part of fragments(c.arguments)) after.push({ type: 'tool-call-delta', index, argumentsDelta: part });
  });
  const end: StreamEnd = {
    finishReason: turn.finish,
    usage: {
      promptTokens: turn.promptTokens,
      completionTokens: turn.completionTokens,
      totalTokens: turn.promptTokens + turn.completionTokens,
      cachedTokens: turn.cachedTokens,
      ...(turn.cacheWriteTokens > 0 ? { cacheWriteTokens: turn.cacheWriteTokens } : {}),
      ...(turn.cacheWrite1hTokens > 0 ? { cacheWrite1hTokens: turn.cacheWrite1hTokens } : {}),
      reasoningTokens: turn.reasoningTokens,
    },
    cost: turn.cost,
  };
  if (turn.stopSequence !== undefined) end.stopSequence = turn.stopSequence;
  if (turn.timing) end.timing = turn.timing;
  return { before, after, end };
}

/** Every event of a turn in order, for a whole-body response. */
export function allEvents(turn: PlannedTurn, events: TurnEvents = turnEvents(turn)): ProtocolEvent[] {
  return [...events.before, ...(turn.text === '' ? [] : [{ type: 'text-delta' as const, text: turn.text }]), ...events.after];
}

/** TTFT before the first piece, then 1/tokensPerSecond between pieces, each with ±20 % jitter. */
function planDelays(count: number, profile: SimProviderProfile, timeScale: number, rng: () => number): number[] {
  const delays = new Array<number>(count);
  if (timeScale === 0) return delays.fill(0);
  const interval = 1000 / profile.tokensPerSecond;
  for (let i = 0; i < count; i++) {
    const base = i === 0 ? profile.ttftMs : interval;
    delays[i] = base * (0.8 + 0.4 * rng()) * timeScale;
  }
  return delays;
}

/**
 * The speed a turn is generated at, as a server measures it: the tokens after the first over
 * the (scaled) time after the first. Undefined when there is no such time (one token, or time
 * scale 0).
 */
export function plannedTiming(turn: PlannedTurn): GenerationTiming | undefined {
  let ms = 0;
  for (let i = 1; i < turn.delays.length; i++) ms += turn.delays[i] ?? 0;
  const tokens = turn.delays.length - 1;
  return ms > 0 && tokens > 0 ? { tokens, ms, tokensPerSecond: tokens / (ms / 1000) } : undefined;
}

/** Total time to produce the whole reply (what a non-streaming request waits). */
export function totalDelay(turn: PlannedTurn): number {
  return turn.delays.reduce((sum, d) => sum + d, 0);
}
