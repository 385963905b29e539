/**
 * The protocol-neutral request the simulator works on. Each wire module reads its own
 * JSON into a SimRequest; replies, token counts and timing are computed from this alone,
 * so the three protocols behave the same for the same conversation.
 */
import { ATTACHMENT_TOKENS, MESSAGE_OVERHEAD_TOKENS, REPLY_PRIMING_TOKENS, countTokens } from './tokens.js';

export type AttachmentKind = 'image' | 'audio' | 'document' | 'file';

/** A non-text part of a message, described by what the simulator can tell about it. */
export interface Attachment {
  kind: AttachmentKind;
  /** MIME type when known (`image/png`), else undefined. */
  mediaType?: string;
  /** Decoded size in bytes for inline data; undefined for a URL reference. */
  bytes?: number;
  /** A URL the part points to, for parts not sent inline. */
  url?: string;
  filename?: string;
}

export interface SimMessage {
  role: 'user' | 'assistant';
  text: string;
  attachments: Attachment[];
  /** Tool calls an assistant message made (arguments as a JSON string). */
  toolCalls?: SimToolCall[];
  /** Tool results a user (or tool) message carries; their text is in `text` too. */
  toolResults?: SimToolResult[];
}

export interface SimToolCall {
  id?: string;
  name: string;
  arguments: string;
}

export interface SimToolResult {
  /** The call it answers, when the protocol says. */
  id?: string;
  /** The tool's name, when the protocol says it or an earlier call does. */
  name?: string;
  content: string;
}

/** A tool offered to the model. */
export interface SimTool {
  name: string;
  description: string;
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
}

export type SimToolChoice = 'auto' | 'none' | 'required' | { name: string };

export interface SimRequest {
  /** The model id as the client sent it (`llama` or `sim/llama`). */
  model: string;
  /** System instructions, joined. */
  system: string;
  messages: SimMessage[];
  /** Cap on completion tokens, when the client set one. */
  maxTokens?: number;
  stream: boolean;
  /** OpenAI only: send a usage chunk at the end of the stream. */
  includeUsage: boolean;
  /** Tools offered (function tools only). */
  tools?: SimTool[];
  toolChoice?: SimToolChoice;
  /** A JSON Schema the reply must satisfy (OpenAI json_schema, Gemini responseSchema). */
  responseSchema?: Record<string, unknown>;
  /** JSON output without a schema (OpenAI json_object, Gemini responseMimeType). */
  jsonMode?: boolean;
  /** Reasoning asked for: the reply thinks aloud first (reasoning deltas, thinking blocks, thought parts). */
  reasoning?: boolean;
  /** Web search asked for (`:online`, the web plugin, a web search tool): the reply cites sources. */
  online?: boolean;
}

/** `llama` for `llama`, `sim/llama` and `sim/llama:online` (OpenRouter-style variants dropped). */
export function canonicalModel(model: string): string {
  const name = model.startsWith('sim/') ? model.slice(4) : model;
  const colon = name.indexOf(':');
  return colon > 0 ? name.slice(0, colon) : name;
}

/** Names of the tools called in earlier assistant messages, by call id. */
export function callNames(messages: SimMessage[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const m of messages) for (const c of m.toolCalls ?? []) if (c.id) names.set(c.id, c.name);
  return names;
}

/** Prompt tokens: every message's text, a fixed overhead per message and per attachment. */
export function countPromptTokens(request: SimRequest): number {
  let total = REPLY_PRIMING_TOKENS;
  if (request.system) total += MESSAGE_OVERHEAD_TOKENS + countTokens(request.system);
  for (const message of request.messages) {
    total += MESSAGE_OVERHEAD_TOKENS + countTokens(message.text) + message.attachments.length * ATTACHMENT_TOKENS;
    for (const call of message.toolCalls ?? []) total += countTokens(call.name) + countTokens(call.arguments);
  }
  return total;
}

/** Bytes encoded by a base64 string (padding and whitespace excluded). */
export function base64Bytes(data: string): number {
  const clean = data.replace(/\s+/g, '');
  const padding = clean.endsWith('==') ? 2 : clean.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((clean.length * 3) / 4) - padding);
}

/** Describe a `data:` URI (type and decoded size) or an ordinary URL. */
export function attachmentFromURL(kind: AttachmentKind, url: string, filename?: string): Attachment {
  const match = /^data:([^;,]*)(;base64)?,(.*)$/s.exec(url);
  const out: Attachment = { kind };
  if (filename) out.filename = filename;
  if (!match) {
    out.url = url;
    return out;
  }
  const [, mediaType, isBase64, payload = ''] = match;
  if (mediaType) out.mediaType = mediaType;
  out.bytes = isBase64 ? base64Bytes(payload) : decodeURIComponent(payload).length;
  return out;
}

/** Join the text of several parts the way a model would read them. */
export function joinText(parts: string[]): string {
  return parts.filter((p) => p !== '').join('\n');
}
