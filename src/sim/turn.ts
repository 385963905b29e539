/**
 * One planned reply: the text cut into one-token pieces, the token counts, the cost and
 * the delay before each piece. Every wire module renders the same plan in its own format.
 */
import { randomBytes } from 'node:crypto';
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
  completionTokens: number;
  finish: 'stop' | 'length' | 'tool-calls';
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
): PlannedTurn {
  const seed = conversationSeed(request, provider);
  const extras = planExtras(request, seed);
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
  let pieces = splitTokens(text);
  let finish: PlannedTurn['finish'] = calling ? 'tool-calls' : 'stop';
  if (request.maxTokens !== undefined && pieces.length > request.maxTokens) {
    pieces = pieces.slice(0, request.maxTokens);
    finish = 'length';
  }
  const promptTokens = countPromptTokens(request) + (request.tools ?? []).reduce((n, t) => n + countTokens(t.name) + countTokens(t.description) + countTokens(JSON.stringify(t.parameters)), 0);
  const reasoning = extras.reasoning ?? '';
  const reasoningTokens = countTokens(reasoning);
  const callTokens = extras.toolCalls.reduce((n, c) => n + countTokens(c.name) + countTokens(c.arguments), 0);
  const completionTokens = pieces.length + reasoningTokens + callTokens;
  return {
    id: randomBytes(12).toString('hex'),
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    provider,
    pieces,
    text: pieces.join(''),
    promptTokens,
    completionTokens,
    finish,
    toolCalls: extras.toolCalls,
    reasoning,
    reasoningTokens,
    annotations: extras.annotations ?? [],
    cost: roundCost((promptTokens * profile.inputPrice + completionTokens * profile.outputPrice) / 1e6),
    delays: planDelays(pieces.length, profile, timeScale, createRng(seed ^ 0x9e3779b9)),
  };
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

/** Total time to produce the whole reply (what a non-streaming request waits). */
export function totalDelay(turn: PlannedTurn): number {
  return turn.delays.reduce((sum, d) => sum + d, 0);
}
