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
}

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
}

/** `llama` for both `llama` and `sim/llama`. */
export function canonicalModel(model: string): string {
  return model.startsWith('sim/') ? model.slice(4) : model;
}

/** Prompt tokens: every message's text, a fixed overhead per message and per attachment. */
export function countPromptTokens(request: SimRequest): number {
  let total = REPLY_PRIMING_TOKENS;
  if (request.system) total += MESSAGE_OVERHEAD_TOKENS + countTokens(request.system);
  for (const message of request.messages) {
    total += MESSAGE_OVERHEAD_TOKENS + countTokens(message.text) + message.attachments.length * ATTACHMENT_TOKENS;
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
