/** Validation of histories that come from outside (restored chats, `chat.history = ...`). */
import { InvalidHistoryError } from './errors.js';
import type { Message } from './types.js';

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
