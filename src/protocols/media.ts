/**
 * Small helpers the client halves share: reading `data:` URIs, guessing a media type from a
 * URL's extension, parsing tool arguments, canonical messages as alternating turns of blocks.
 */
import { InvalidInputError } from '../errors.js';
import type { AssistantMessage, ContentPart, Message, ToolCall, ToolMessage } from '../types.js';

export interface DataURI {
  mediaType: string;
  /** Base64 payload. */
  data: string;
}

/** Split a base64 `data:` URI; `undefined` when the string is not a data URI. */
export function parseDataURI(uri: string): DataURI | undefined {
  if (!uri.startsWith('data:')) return undefined;
  const comma = uri.indexOf(',');
  if (comma < 0) throw new InvalidInputError(`A data: URI has no comma separating its header from its data: ${uri.slice(0, 40)}...`);
  const header = uri.slice(5, comma);
  const parts = header.split(';');
  if (!parts.includes('base64')) {
    throw new InvalidInputError(`Only base64 data: URIs are supported (got "data:${header}").`);
  }
  return { mediaType: parts[0] || 'application/octet-stream', data: uri.slice(comma + 1) };
}

const EXTENSION_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  heic: 'image/heic',
  pdf: 'application/pdf',
  txt: 'text/plain',
  mp3: 'audio/mp3',
  wav: 'audio/wav',
  mp4: 'video/mp4',
};

/** The media type a URL's file extension suggests, or `fallback`. */
export function mediaTypeFromURL(url: string, fallback: string): string {
  let path = url;
  try {
    path = new URL(url).pathname;
  } catch {
    // not an absolute URL: use it as a path
  }
  const ext = /\.([a-z0-9]+)$/i.exec(path)?.[1]?.toLowerCase();
  return (ext && EXTENSION_TYPES[ext]) ?? fallback;
}

/**
 * Tool-call arguments (a JSON object in a string) for protocols that want an object. A model
 * may have sent arguments that are not a JSON object (the tool loop answered that call with an
 * error result); those replay as `{}`, since these protocols cannot carry the broken text.
 */
export function parseToolArguments(args: string): Record<string, unknown> {
  if (args.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(args);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // not JSON: replayed as an empty object
  }
  return {};
}

/** Numbers of reasoning tokens each effort level asks for, where a protocol wants a budget. */
export const EFFORT_BUDGETS = { low: 1024, medium: 4096, high: 16384 } as const;

/** A conversation turn as Anthropic and Bedrock send it: a role and its content blocks. */
export interface WireTurn<B> {
  role: 'user' | 'assistant';
  content: B[];
}

/** Append blocks as a turn, joined to the previous turn of the same role (those APIs want roles to alternate). */
export function pushTurn<B>(turns: WireTurn<B>[], role: WireTurn<B>['role'], blocks: B[]): void {
  if (blocks.length === 0) return;
  const last = turns[turns.length - 1];
  if (last && last.role === role) last.content.push(...blocks);
  else turns.push({ role, content: blocks });
}

/** How one protocol writes the pieces of canonical messages as its content blocks. */
export interface TurnBlocks<B> {
  /** A user message given as a string. */
  text(text: string): B;
  /** A user content part (empty text parts are left out before). */
  part(part: ContentPart): B;
  /** Blocks an assistant message starts with, before its text (replayed reasoning). */
  assistantStart?(message: AssistantMessage): B[];
  /** One tool call of an assistant message, after its text. */
  toolCall(call: ToolCall): B;
  /** A tool result, sent in a user turn. */
  toolResult(message: ToolMessage): B;
}

/** Where a message's last block landed among the turns: turn index and block index. */
export interface TurnEnd {
  message: number;
  block: number;
}

/**
 * Canonical messages as the alternating user/assistant turns Anthropic, Bedrock and Gemini
 * want (see pushTurn), with the system prompts' texts apart, and for each message where its
 * last block landed (undefined for a system prompt; a tool result joins the user turn before it).
 */
export function toTurns<B>(messages: readonly Message[], blocks: TurnBlocks<B>): { system: string[]; turns: WireTurn<B>[]; ends: (TurnEnd | undefined)[] } {
  const system: string[] = [];
  const turns: WireTurn<B>[] = [];
  const ends: (TurnEnd | undefined)[] = [];
  for (const message of messages) {
    switch (message.role) {
      case 'system':
        if (message.content) system.push(message.content);
        break;
      case 'user':
        pushTurn(
          turns,
          'user',
          typeof message.content === 'string'
            ? message.content === '' ? [] : [blocks.text(message.content)]
            : message.content.filter((p) => p.type !== 'text' || p.text !== '').map((p) => blocks.part(p)),
        );
        break;
      case 'assistant': {
        const out = blocks.assistantStart?.(message) ?? [];
        if (message.content) out.push(blocks.text(message.content));
        for (const call of message.tool_calls ?? []) out.push(blocks.toolCall(call));
        pushTurn(turns, 'assistant', out);
        break;
      }
      case 'tool':
        pushTurn(turns, 'user', [blocks.toolResult(message)]);
        break;
    }
    const last = turns[turns.length - 1];
    ends.push(message.role !== 'system' && last && last.content.length > 0 ? { message: turns.length - 1, block: last.content.length - 1 } : undefined);
  }
  return { system, turns, ends };
}
