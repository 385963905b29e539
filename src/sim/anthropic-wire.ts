/**
 * Anthropic Messages, served like api.anthropic.com: `POST /v1/messages` with a top-level
 * `system`, content blocks and a required `max_tokens`; responses as a `message` object or
 * as named SSE events (message_start ... message_stop).
 */
import { attachmentFromURL, joinText, type Attachment, type AttachmentKind, type SimMessage, type SimRequest } from './conversation.js';
import type { StreamEncoder } from './delivery.js';
import type { PlannedTurn } from './turn.js';
import { asRecord, readPositiveInt, type SimWire } from './wire.js';

/** An image or document block's `source`: inline base64, plain text, or a URL. */
function readSource(kind: AttachmentKind, source: unknown, title?: string): Attachment | string {
  const record = asRecord(source);
  if (record?.type === 'base64' && typeof record.data === 'string' && typeof record.media_type === 'string') {
    return attachmentFromURL(kind, `data:${record.media_type};base64,${record.data}`, title);
  }
  if (record?.type === 'text' && typeof record.data === 'string') {
    const out: Attachment = { kind, mediaType: typeof record.media_type === 'string' ? record.media_type : 'text/plain', bytes: Buffer.byteLength(record.data) };
    if (title) out.filename = title;
    return out;
  }
  if (record?.type === 'url' && typeof record.url === 'string') return attachmentFromURL(kind, record.url, title);
  return `${kind}.source must be a base64, text or url source`;
}

function readBlocks(content: unknown, where: string): { text: string; attachments: Attachment[] } | string {
  if (typeof content === 'string') return { text: content, attachments: [] };
  if (!Array.isArray(content)) return `${where}.content: Input should be a valid list`;
  const texts: string[] = [];
  const attachments: Attachment[] = [];
  for (const [i, raw] of content.entries()) {
    const block = asRecord(raw);
    const type = block?.type;
    if (type === 'text' && typeof block?.text === 'string') texts.push(block.text);
    else if (type === 'image' || type === 'document') {
      const title = typeof block?.title === 'string' ? block.title : undefined;
      const attachment = readSource(type, block?.source, title);
      if (typeof attachment === 'string') return `${where}.content.${i}.${attachment}`;
      attachments.push(attachment);
    } else if (type === 'tool_result') {
      const inner = readBlocks(block?.content ?? '', `${where}.content.${i}`);
      if (typeof inner === 'string') return inner;
      texts.push(inner.text);
      attachments.push(...inner.attachments);
    } else if (type === 'tool_use' || type === 'thinking' || type === 'redacted_thinking') {
      // The simulator neither calls tools nor thinks; these blocks carry no prompt text.
    } else return `${where}.content.${i}.type: unsupported block type ${JSON.stringify(type)}`;
  }
  return { text: joinText(texts), attachments };
}

function readRequest(body: unknown): SimRequest | string {
  const record = asRecord(body);
  if (!record) return 'the request body must be a JSON object';
  if (typeof record.model !== 'string' || record.model === '') return 'model: Field required';
  // Anthropic has no default output cap: max_tokens is required.
  if (record.max_tokens === undefined) return 'max_tokens: Field required';
  const maxTokens = readPositiveInt(record.max_tokens, 'max_tokens');
  if (typeof maxTokens === 'string') return maxTokens;
  if (!Array.isArray(record.messages) || record.messages.length === 0) return 'messages: Field required (a non-empty list)';
  const messages: SimMessage[] = [];
  for (const [i, raw] of record.messages.entries()) {
    const message = asRecord(raw);
    const role = message?.role;
    if (role !== 'user' && role !== 'assistant') return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    const content = readBlocks(message?.content, `messages.${i}`);
    if (typeof content === 'string') return content;
    messages.push({ role, ...content });
  }
  let system = '';
  if (record.system !== undefined) {
    const read = readBlocks(record.system, 'system');
    if (typeof read === 'string') return read;
    system = read.text;
  }
  const request: SimRequest = { model: record.model, system, messages, stream: record.stream === true, includeUsage: true };
  if (maxTokens !== undefined) request.maxTokens = maxTokens;
  return request;
}

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
  500: 'api_error',
};

const STOP_REASON = { stop: 'end_turn', length: 'max_tokens' } as const;

function usage(turn: PlannedTurn, outputTokens: number) {
  return { input_tokens: turn.promptTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: outputTokens };
}

function event(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

export const anthropicWire: SimWire = {
  protocol: 'anthropic',
  endpointHint: 'POST /v1/messages',

  route(method, path) {
    return method === 'POST' && path === '/v1/messages' ? { kind: 'generate' } : undefined;
  },

  readRequest: (body) => readRequest(body),

  errorBody(status, message) {
    return { type: 'error', error: { type: ERROR_TYPES[status] ?? 'api_error', message } };
  },

  response(turn) {
    return {
      id: `msg_${turn.id}`,
      type: 'message',
      role: 'assistant',
      model: turn.model,
      content: [{ type: 'text', text: turn.text }],
      stop_reason: STOP_REASON[turn.finish],
      stop_sequence: null,
      usage: usage(turn, turn.completionTokens),
    };
  },

  streamEncoder(turn): StreamEncoder {
    return {
      head: () =>
        // Like the real API, message_start reports one output token so far; the final
        // (cumulative) count comes in message_delta.
        event('message_start', {
          type: 'message_start',
          message: { id: `msg_${turn.id}`, type: 'message', role: 'assistant', model: turn.model, content: [], stop_reason: null, stop_sequence: null, usage: usage(turn, 1) },
        }) +
        event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }) +
        event('ping', { type: 'ping' }),
      piece: (text) => `event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${JSON.stringify(text)}}}\n\n`,
      tail: () =>
        event('content_block_stop', { type: 'content_block_stop', index: 0 }) +
        event('message_delta', { type: 'message_delta', delta: { stop_reason: STOP_REASON[turn.finish], stop_sequence: null }, usage: { output_tokens: turn.completionTokens } }) +
        event('message_stop', { type: 'message_stop' }),
    };
  },
};
