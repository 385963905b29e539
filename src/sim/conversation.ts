/**
 * The request the simulated model works on, read from the canonical request a protocol's
 * server half produced: text, attachments described by what the simulator can tell about
 * them, tool calls and results. Replies, token counts and timing are computed from this
 * alone, so every protocol behaves the same for the same conversation.
 */
import type { ServerRequest } from '../protocols/protocol.js';
import type { CacheBreakpoint, ContentPart, Message, ReasoningDetail } from '../types.js';
import { simBreakpoints } from './prompt-cache.js';
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
  /** Stop sequences: the reply ends before the first one it would contain. */
  stop?: string[];
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
  /** Prompt-cache breakpoints (Anthropic's cache_control), positions in `messages`. */
  cacheBreakpoints?: CacheBreakpoint[];
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
  // A percent-encoded payload: each `%XX` is one byte (counted, not decoded: a malformed escape
  // such as `%zz` is then literal text rather than an exception).
  out.bytes = isBase64 ? base64Bytes(payload) : payload.length - 2 * (payload.match(/%[0-9A-Fa-f]{2}/g)?.length ?? 0);
  return out;
}

/** Join the text of several parts the way a model would read them. */
export function joinText(parts: string[]): string {
  return parts.filter((p) => p !== '').join('\n');
}

/** An assistant message as replayed by a protocol that carries reasoning blocks (Anthropic thinking, Gemini thoughts). */
type ReplayedAssistant = Extract<Message, { role: 'assistant' }> & { reasoning_details?: ReasoningDetail[] };

/** What the simulator can tell about one content part. */
function readPart(part: ContentPart, texts: string[], attachments: Attachment[]): void {
  switch (part.type) {
    case 'text':
      texts.push(part.text);
      break;
    case 'image_url':
      attachments.push(attachmentFromURL('image', part.image_url.url));
      break;
    case 'file': {
      const attachment = attachmentFromURL('file', part.file.file_data, part.file.filename);
      if (attachment.mediaType === 'application/pdf' || attachment.mediaType?.startsWith('text/')) attachment.kind = 'document';
      attachments.push(attachment);
      break;
    }
    case 'input_audio':
      attachments.push(attachmentFromURL('audio', `data:audio/${part.input_audio.format};base64,${part.input_audio.data}`));
      break;
  }
}

/** The canonical request as the simulated model reads it. */
export function simRequestFrom(parsed: ServerRequest): SimRequest {
  const { request } = parsed;
  const system: string[] = [];
  const messages: SimMessage[] = [];
  for (const message of request.messages) {
    if (message.role === 'system') {
      system.push(message.content);
    } else if (message.role === 'user') {
      const texts: string[] = [];
      const attachments: Attachment[] = [];
      if (typeof message.content === 'string') texts.push(message.content);
      else for (const part of message.content) readPart(part, texts, attachments);
      messages.push({ role: 'user', text: joinText(texts), attachments });
    } else if (message.role === 'tool') {
      messages.push({ role: 'user', text: message.content, attachments: [], toolResults: [{ id: message.tool_call_id, content: message.content }] });
    } else {
      const out: SimMessage = { role: 'assistant', text: message.content ?? '', attachments: [] };
      if (message.tool_calls?.length) out.toolCalls = message.tool_calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
      messages.push(out);
    }
  }
  const { params } = request;
  const out: SimRequest = { model: parsed.model, system: joinText(system), messages, stream: parsed.stream };
  if (params.maxTokens !== undefined) out.maxTokens = params.maxTokens;
  if (params.stop !== undefined) out.stop = typeof params.stop === 'string' ? [params.stop] : params.stop;
  if (params.tools?.length) out.tools = params.tools.map((t) => ({ name: t.name, description: t.description ?? '', parameters: t.parameters }));
  if (params.toolChoice !== undefined) out.toolChoice = params.toolChoice;
  const format = params.responseFormat;
  const schema = (format?.json_schema as { schema?: unknown } | undefined)?.schema;
  if (format?.type === 'json_schema' && typeof schema === 'object' && schema !== null) out.responseSchema = schema as Record<string, unknown>;
  else if (format?.type === 'json_object') out.jsonMode = true;
  if (params.reasoning !== undefined) out.reasoning = true;
  if (params.webSearch) out.online = true;
  if (params.cacheBreakpoints) out.cacheBreakpoints = simBreakpoints(request.messages, params.cacheBreakpoints);
  return out;
}

/**
 * Anthropic's rule for thinking in a tool loop: when thinking is on, the assistant turn whose
 * tool calls the last message answers must be replayed with its (signed) thinking block.
 * Returns the API's error message, or undefined when the request keeps the rule.
 */
export function anthropicThinkingReplayError(parsed: ServerRequest): string | undefined {
  const { messages, params } = parsed.request;
  if (params.reasoning === undefined || messages[messages.length - 1]?.role !== 'tool') return undefined;
  let i = messages.length - 1;
  while (i >= 0 && messages[i]?.role === 'tool') i--;
  const assistant = messages[i] as ReplayedAssistant | undefined;
  if (assistant?.role !== 'assistant' || !assistant.tool_calls?.length) return undefined;
  if (assistant.reasoning_details?.some((d) => d.signature)) return undefined;
  const first = assistant.content ? 'text' : 'tool_use';
  // Its index among the wire messages, where tool results merge into user turns.
  let wireIndex = -1;
  let previous = '';
  for (const m of messages.slice(0, i + 1)) {
    const role = m.role === 'tool' ? 'user' : m.role;
    if (role === 'system' || role === previous) continue;
    previous = role;
    wireIndex++;
  }
  return `messages.${wireIndex}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${first}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block.`;
}
