/** Validation of what comes from outside: histories (`chat.history = ...`) and restored chats (types, ranges, depth). */
import { InvalidHistoryError } from './errors.js';
import type { Message, TurnResult, Usage } from './types.js';

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);
const PART_TYPES = new Set(['text', 'image_url', 'file', 'input_audio']);

function fail(where: string, problem: string): never {
  throw new InvalidHistoryError(`${where}: ${problem}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkPart(part: unknown, where: string): void {
  if (!isObject(part) || typeof part.type !== 'string' || !PART_TYPES.has(part.type)) {
    fail(where, `each content part needs a "type" of ${[...PART_TYPES].join(', ')}.`);
  }
  if (part.type === 'text' && typeof part.text !== 'string') fail(where, 'a text part needs a string "text".');
  if (part.type === 'image_url' && !(isObject(part.image_url) && typeof part.image_url.url === 'string')) {
    fail(where, 'an image_url part needs image_url.url (a URL or data: URI).');
  }
  if (part.type === 'file' && !(isObject(part.file) && typeof part.file.file_data === 'string')) {
    fail(where, 'a file part needs file.file_data.');
  }
  if (part.type === 'input_audio' && !(isObject(part.input_audio) && typeof part.input_audio.data === 'string' && typeof part.input_audio.format === 'string')) {
    fail(where, 'an input_audio part needs input_audio.data and input_audio.format.');
  }
}

/**
 * Check that a value is a history of OpenAI-shaped messages: known roles, content of the
 * right type, at most one system message and only first, tool results answering a tool call.
 * Returns a deep copy, so the caller's array can change later without touching the chat.
 */
export function validateHistory(value: unknown, label = 'history'): Message[] {
  if (!Array.isArray(value)) fail(label, `expected an array of messages, got ${value === null ? 'null' : typeof value}.`);
  checkDepth(value, label);
  const openCalls = new Set<string>();
  value.forEach((msg, i) => {
    const where = `${label}[${i}]`;
    if (!isObject(msg)) fail(where, 'each message must be an object with "role" and "content".');
    if (typeof msg.role !== 'string' || !ROLES.has(msg.role)) {
      fail(where, `"role" must be one of system, user, assistant, tool; got ${JSON.stringify(msg.role)}.`);
    }
    switch (msg.role) {
      case 'system':
        if (i !== 0) fail(where, 'a system message may only come first.');
        if (typeof msg.content !== 'string') fail(where, 'a system message needs string content.');
        break;
      case 'user':
        if (typeof msg.content === 'string') break;
        if (!Array.isArray(msg.content) || msg.content.length === 0) fail(where, 'a user message needs string content or a non-empty array of parts.');
        msg.content.forEach((p, j) => checkPart(p, `${where}.content[${j}]`));
        break;
      case 'assistant': {
        if (msg.content !== null && typeof msg.content !== 'string') fail(where, 'an assistant message needs string (or null) content.');
        if (msg.tool_calls !== undefined) {
          if (!Array.isArray(msg.tool_calls)) fail(where, '"tool_calls" must be an array.');
          for (const call of msg.tool_calls) {
            if (!isObject(call) || typeof call.id !== 'string' || !isObject(call.function) || typeof call.function.name !== 'string' || typeof call.function.arguments !== 'string') {
              fail(where, 'each tool call needs "id" and "function" with "name" and "arguments" (a JSON string).');
            }
            openCalls.add(call.id);
          }
        } else if (msg.content === null) {
          fail(where, 'an assistant message without tool calls needs string content.');
        }
        break;
      }
      case 'tool':
        if (typeof msg.tool_call_id !== 'string' || typeof msg.content !== 'string') fail(where, 'a tool message needs "tool_call_id" and string "content".');
        if (!openCalls.has(msg.tool_call_id)) fail(where, `tool result for "${msg.tool_call_id}" answers no earlier tool call.`);
        break;
    }
  });
  return structuredClone(value) as Message[];
}

/** Nesting deeper than this in restored data is refused (histories need a handful of levels). */
export const MAX_RESTORED_DEPTH = 64;

/**
 * Refuse data nested deeper than `max` levels, before anything recursive (structuredClone,
 * JSON.stringify) meets it and overflows the stack. Walks with its own stack, not recursion.
 */
export function checkDepth(value: unknown, label: string, max = MAX_RESTORED_DEPTH): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) fail(label, `nested more than ${max} levels deep; this is not data a chat saves.`);
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isAmount = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;
const USAGE_BREAKDOWNS = ['cachedTokens', 'cacheWriteTokens', 'reasoningTokens'] as const;

/** A usage from outside: non-negative integer token counts (breakdowns included) and a cost that is a non-negative number or null. */
export function validateUsage(value: unknown, where: string): Usage {
  if (!isObject(value)) fail(where, 'usage must be an object with promptTokens, completionTokens, totalTokens and cost.');
  if (![value.promptTokens, value.completionTokens, value.totalTokens].every(isCount)) {
    fail(where, 'promptTokens, completionTokens and totalTokens must be non-negative integers.');
  }
  if (value.cost !== null && !isAmount(value.cost)) fail(where, 'cost must be a non-negative number or null.');
  const usage: Usage = { promptTokens: value.promptTokens as number, completionTokens: value.completionTokens as number, totalTokens: value.totalTokens as number, cost: value.cost };
  for (const key of USAGE_BREAKDOWNS) {
    if (value[key] === undefined) continue;
    if (!isCount(value[key])) fail(where, `${key} must be a non-negative integer.`);
    usage[key] = value[key];
  }
  return usage;
}

const FINISH_REASONS = new Set(['stop', 'length', 'tool-calls', 'content-filter', 'error', 'other']);
const STEP_KINDS = new Set(['initial', 'tool-results', 'final-answer', 'structured-retry']);

function checkString(v: Record<string, unknown>, key: string, where: string, optional = false): void {
  if (optional && v[key] === undefined) return;
  if (typeof v[key] !== 'string') fail(where, `"${key}" must be a string.`);
}

function checkTiming(v: Record<string, unknown>, key: string, where: string, nullable: boolean): void {
  if (nullable && v[key] === null) return;
  if (!isAmount(v[key])) fail(where, `"${key}" must be a non-negative number${nullable ? ' or null' : ''}.`);
}

function checkArray(v: Record<string, unknown>, key: string, where: string, each?: (item: unknown, at: string) => void): void {
  if (v[key] === undefined) return;
  const list = v[key];
  if (!Array.isArray(list)) fail(where, `"${key}" must be an array.`);
  list.forEach((item, i) => each?.(item, `${where}.${key}[${i}]`));
}

function checkAssistant(value: unknown, where: string): void {
  if (!isObject(value) || value.role !== 'assistant') fail(where, 'must be an assistant message.');
  validateHistory([value], where);
}

/** Per-turn metadata from outside (a restored chat): every field of the type it has, or refused. */
export function validateTurns(value: unknown, label: string): TurnResult[] {
  if (!Array.isArray(value)) fail(label, 'expected an array of turns.');
  value.forEach((turn, i) => {
    const where = `${label}[${i}]`;
    if (!isObject(turn)) fail(where, 'each turn must be an object.');
    for (const key of ['model', 'resolvedModel', 'provider', 'text', 'startedAt']) checkString(turn, key, where);
    for (const key of ['rawFinishReason', 'reasoning']) checkString(turn, key, where, true);
    if (!FINISH_REASONS.has(turn.finishReason as string)) fail(where, `"finishReason" must be one of ${[...FINISH_REASONS].join(', ')}.`);
    checkAssistant(turn.message, `${where}.message`);
    validateUsage(turn.usage, `${where}.usage`);
    checkTiming(turn, 'latencyMs', where, false);
    checkTiming(turn, 'ttftMs', where, true);
    checkTiming(turn, 'tokensPerSecond', where, true);
    checkArray(turn, 'annotations', where);
    checkArray(turn, 'citations', where, (c, at) => {
      if (!isObject(c) || typeof c.url !== 'string') fail(at, 'a citation needs a string "url".');
    });
    checkArray(turn, 'reasoningDetails', where, (d, at) => {
      if (!isObject(d) || typeof d.text !== 'string' || (d.signature !== undefined && typeof d.signature !== 'string')) fail(at, 'a reasoning block needs string "text" (and "signature").');
    });
    if (turn.messages !== undefined) {
      if (!Array.isArray(turn.messages) || turn.messages.some((m) => !isObject(m) || (m.role !== 'assistant' && m.role !== 'tool'))) {
        fail(`${where}.messages`, 'must be the assistant and tool messages the turn added.');
      }
      validateHistory(turn.messages, `${where}.messages`);
    }
    checkArray(turn, 'steps', where, (s, at) => {
      if (!isObject(s) || !isCount(s.step) || !STEP_KINDS.has(s.kind as string)) fail(at, `a step needs a "step" number and a "kind" of ${[...STEP_KINDS].join(', ')}.`);
      checkString(s, 'provider', at);
      checkString(s, 'resolvedModel', at);
      checkAssistant(s.message, `${at}.message`);
      validateUsage(s.usage, `${at}.usage`);
      checkTiming(s, 'latencyMs', at, false);
    });
  });
  return structuredClone(value) as TurnResult[];
}

/** The request parameters a saved chat may carry, each with the check its value must pass. */
const RESTORABLE_PARAMS: Record<string, (v: unknown) => boolean> = {
  temperature: (v) => typeof v === 'number' && Number.isFinite(v),
  topP: (v) => typeof v === 'number' && Number.isFinite(v),
  maxTokens: (v) => isCount(v) && v > 0,
  seed: (v) => typeof v === 'number' && Number.isSafeInteger(v),
  stop: (v) => typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string')),
  responseFormat: isObject,
  toolChoice: (v) => v === 'auto' || v === 'none' || v === 'required' || (isObject(v) && typeof v.name === 'string'),
  reasoning: (v) =>
    isObject(v) && (v.effort === undefined || ['low', 'medium', 'high'].includes(v.effort as string)) && (v.maxTokens === undefined || isCount(v.maxTokens)),
  webSearch: (v) => typeof v === 'boolean' || (isObject(v) && (v.maxResults === undefined || isCount(v.maxResults)) && (v.engine === undefined || typeof v.engine === 'string')),
  extraBody: isObject,
};

/**
 * The request parameters of a saved chat. Data only: anything that says where requests go or
 * what they carry besides the body (baseURL, headers, apiKey, env, registry, routing, limits)
 * is refused, since a saved file must never redirect requests or the caller's keys.
 */
export function validateParams(value: unknown, label = 'params'): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) fail(label, 'must be an object of request parameters.');
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const check = Object.hasOwn(RESTORABLE_PARAMS, key) ? RESTORABLE_PARAMS[key] : undefined;
    if (!check) {
      fail(
        `${label}.${key}`,
        `a saved chat holds only request parameters (${Object.keys(RESTORABLE_PARAMS).join(', ')}); endpoints, headers and keys come from the code, the environment and the config file.`,
      );
    }
    if (v === undefined) continue;
    if (!check(v)) fail(`${label}.${key}`, `${JSON.stringify(v)} is not a valid value.`);
    out[key] = structuredClone(v);
  }
  return out;
}
