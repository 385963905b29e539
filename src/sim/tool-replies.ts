/**
 * What the simulator does with tools, JSON output, reasoning and web search. Deterministic
 * rules, documented for users testing their own apps:
 *
 * - Tools offered and the prompt names one (its name, or a word of four letters or more from
 *   its description): the model calls it, with arguments made from its JSON Schema. Several
 *   named: all of them, in parallel. `required` or a named tool choice forces a call; `none` never calls.
 * - After tool results it answers in text quoting each result. An "invalid arguments" error
 *   result makes it call that tool again with valid arguments.
 * - Prompt words: "bad arguments" (first call's arguments violate the schema), "python literal"
 *   (first call's arguments written as a Python dict, not JSON), "keep calling" (calls the tools
 *   again after every result, until told `none`).
 * - A JSON schema response format: the reply is a value satisfying it; "invalid json" in the
 *   prompt makes that reply violate the schema ("always invalid json" in any user message: every reply).
 * - Reasoning asked for: a short thought before the answer, counted as reasoning tokens.
 * - `:online` models and web search: the reply cites two sources, and the annotations include
 *   one of a type clients should ignore.
 */
import { callNames, type SimMessage, type SimRequest, type SimTool, type SimToolResult } from './conversation.js';
import { hashString } from './random.js';
import { keywords } from './replies.js';
import { invalidValueFor, pythonLiteral, valueFor, type ValueHints } from './schema-values.js';

export interface PlannedCall {
  id: string;
  name: string;
  /** As sent on the wire: JSON (or, on request, a Python literal). */
  arguments: string;
}

export interface SimExtras {
  toolCalls: PlannedCall[];
  /** Replaces the ordinary reply when set. */
  text?: string;
  reasoning?: string;
  /** Web citations (OpenAI url_citation shape) plus one unknown annotation. */
  annotations?: unknown[];
}

/** A client's request to fix a structured reply: not the user's topic. */
const CORRECTION = /^Your reply did not match/;

/** The user's own prompt: the last user message that is neither tool results nor a correction request. */
function userPrompt(messages: SimMessage[], skipCorrections = true): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as SimMessage;
    if (m.role === 'user' && !m.toolResults?.length && !(skipCorrections && CORRECTION.test(m.text))) return m.text.trim();
  }
  return '';
}

/** Tool results after the last assistant message (what this request answers), with names filled in. */
function pendingResults(messages: SimMessage[]): SimToolResult[] {
  const names = callNames(messages);
  const out: SimToolResult[] = [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as SimMessage;
    if (m.role === 'assistant' || !m.toolResults?.length) break;
    out.unshift(...m.toolResults.map((r) => ({ ...r, name: r.name ?? names.get(r.id ?? '') })));
  }
  return out;
}

/** Rounds of tool calls since the user's prompt. */
function roundsSincePrompt(messages: SimMessage[]): number {
  let rounds = 0;
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as SimMessage;
    if (m.role === 'user' && !m.toolResults?.length) break;
    if (m.role === 'assistant' && m.toolCalls?.length) rounds++;
  }
  return rounds;
}

function mentions(prompt: string, tool: SimTool): boolean {
  const lower = prompt.toLowerCase();
  if (lower.includes(tool.name.toLowerCase()) || lower.includes(tool.name.toLowerCase().replace(/[_-]+/g, ' '))) return true;
  const words = new Set((lower.match(/[a-z]{4,}/g) ?? []).filter((w) => keywords(w).length > 0));
  return (tool.description.toLowerCase().match(/[a-z]{4,}/g) ?? []).some((w) => keywords(w).length > 0 && words.has(w));
}

function hintsFor(prompt: string): ValueHints {
  const words = keywords(prompt);
  return { word: words.find((w) => /^\p{Lu}/u.test(w)) ?? words[0] ?? 'example' };
}

/** A call id in the protocol's style (`call_...` for OpenAI, `toolu_...` for Anthropic). */
function callId(prefix: string, seed: number, index: number): string {
  return `${prefix}${(hashString(`${seed}:${index}`) >>> 0).toString(36)}${index}`;
}

function argumentsFor(tool: SimTool, prompt: string, firstRound: boolean): string {
  const hints = hintsFor(prompt);
  if (firstRound && /\bbad arguments\b/i.test(prompt)) return JSON.stringify(invalidValueFor(tool.parameters, hints));
  const value = valueFor(tool.parameters, hints);
  if (firstRound && /\bpython literal\b/i.test(prompt)) return pythonLiteral(value);
  return JSON.stringify(value);
}

function quoteResults(results: SimToolResult[]): string {
  return results
    .map((r) => (r.content.startsWith('Error') ? `The ${r.name ?? 'tool'} tool reported an error: ${r.content}` : `The ${r.name ?? 'tool'} tool returned ${r.content}.`))
    .join(' ');
}

function reasoningText(prompt: string): string {
  const words = keywords(prompt).slice(0, 3);
  const topic = words.length > 0 ? words.join(', ') : 'the question';
  return `The user asks about ${topic}. I should check what matters most, then answer briefly and clearly.`;
}

function citations(prompt: string): { text: string; annotations: unknown[] } {
  const word = (keywords(prompt)[0] ?? 'switchboard').toLowerCase().replace(/[^a-z0-9-]/g, '');
  const first = `https://en.example.org/wiki/${word}`;
  const second = `https://news.example.com/${word}`;
  const text = `According to en.example.org, ${word} is well documented. A recent report on news.example.com adds more detail.`;
  const a = text.indexOf('en.example.org');
  const b = text.indexOf('news.example.com');
  return {
    text,
    annotations: [
      { type: 'url_citation', url_citation: { url: first, title: `${word} - Example Encyclopedia`, content: `${word} is a topic with a long history.`, start_index: a, end_index: a + 'en.example.org'.length } },
      { type: 'url_citation', url_citation: { url: second, title: `News about ${word}`, content: `The latest on ${word}.`, start_index: b, end_index: b + 'news.example.com'.length } },
      { type: 'sim_unknown_annotation', sim_unknown_annotation: { note: 'clients should skip annotation types they do not know' } },
    ],
  };
}

/** Decide tool calls, JSON replies, reasoning and citations for a request. */
export function planExtras(request: SimRequest, seed: number, callPrefix = 'call_'): SimExtras {
  const prompt = userPrompt(request.messages);
  const anyUser = request.messages.filter((m) => m.role === 'user').map((m) => m.text).join('\n');
  const extras: SimExtras = { toolCalls: [] };
  if (request.reasoning) extras.reasoning = reasoningText(prompt);

  const tools = request.tools ?? [];
  const choice = request.toolChoice ?? 'auto';
  const results = pendingResults(request.messages);
  const rounds = roundsSincePrompt(request.messages);
  let calling: SimTool[] = [];
  if (tools.length > 0 && choice !== 'none') {
    if (typeof choice === 'object') calling = tools.filter((t) => t.name === choice.name);
    else if (results.length > 0) {
      const retry = results.filter((r) => r.content.includes('invalid arguments')).map((r) => r.name);
      calling = /\bkeep calling\b/i.test(prompt) ? tools.filter((t) => mentions(prompt, t)) : tools.filter((t) => retry.includes(t.name));
    } else {
      calling = tools.filter((t) => mentions(prompt, t));
      if (calling.length === 0 && choice === 'required') calling = tools.slice(0, 1);
    }
  }
  if (calling.length > 0) {
    const invalidOutput = /\balways invalid json\b/i.test(anyUser) || /\binvalid json\b/i.test(userPrompt(request.messages, false));
    extras.toolCalls = calling.map((t, i) => ({
      id: callId(callPrefix, seed, i),
      name: t.name,
      // A forced tool is how structured output travels on Anthropic: "invalid json" applies to it.
      arguments: typeof choice === 'object' && invalidOutput ? JSON.stringify(invalidValueFor(t.parameters, hintsFor(prompt))) : argumentsFor(t, prompt, rounds === 0),
    }));
    return extras;
  }

  const schema = request.responseSchema;
  if (schema || request.jsonMode) {
    const invalid = /\balways invalid json\b/i.test(anyUser) || /\binvalid json\b/i.test(userPrompt(request.messages, false));
    const hints = hintsFor(prompt);
    const value = schema ? (invalid ? invalidValueFor(schema, hints) : valueFor(schema, hints)) : { answer: results.length > 0 ? quoteResults(results) : hints.word };
    extras.text = JSON.stringify(value);
    return extras;
  }
  if (results.length > 0) {
    extras.text = quoteResults(results);
    return extras;
  }
  if (request.online || /:online$/.test(request.model)) {
    const cited = citations(prompt);
    extras.text = cited.text;
    extras.annotations = cited.annotations;
  }
  return extras;
}
