/**
 * Anthropic Messages, served like api.anthropic.com: `POST /v1/messages` with a top-level
 * `system`, content blocks and a required `max_tokens`; responses as a `message` object or
 * as named SSE events (message_start ... message_stop).
 */
import { attachmentFromURL, joinText, type Attachment, type AttachmentKind, type SimMessage, type SimRequest, type SimTool, type SimToolCall, type SimToolResult } from './conversation.js';
import { fragments } from './openai-wire.js';
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

interface ReadBlocks {
  text: string;
  attachments: Attachment[];
  toolCalls: SimToolCall[];
  toolResults: SimToolResult[];
  /** The block types in order (the thinking-replay check needs the first one). */
  types: string[];
}

function readBlocks(content: unknown, where: string): ReadBlocks | string {
  if (typeof content === 'string') return { text: content, attachments: [], toolCalls: [], toolResults: [], types: ['text'] };
  if (!Array.isArray(content)) return `${where}.content: Input should be a valid list`;
  const texts: string[] = [];
  const attachments: Attachment[] = [];
  const toolCalls: SimToolCall[] = [];
  const toolResults: SimToolResult[] = [];
  const types: string[] = [];
  for (const [i, raw] of content.entries()) {
    const block = asRecord(raw);
    const type = block?.type;
    if (typeof type === 'string') types.push(type);
    if (type === 'text' && typeof block?.text === 'string') texts.push(block.text);
    else if (type === 'image' || type === 'document') {
      const title = typeof block?.title === 'string' ? block.title : undefined;
      const attachment = readSource(type, block?.source, title);
      if (typeof attachment === 'string') return `${where}.content.${i}.${attachment}`;
      attachments.push(attachment);
    } else if (type === 'tool_result') {
      const inner = readBlocks(block?.content ?? '', `${where}.content.${i}`);
      if (typeof inner === 'string') return inner;
      if (typeof block?.tool_use_id !== 'string') return `${where}.content.${i}.tool_use_id: Field required`;
      texts.push(inner.text);
      attachments.push(...inner.attachments);
      toolResults.push({ id: block.tool_use_id, content: inner.text });
    } else if (type === 'tool_use') {
      if (typeof block?.id !== 'string' || typeof block.name !== 'string' || !asRecord(block.input)) return `${where}.content.${i}: tool_use needs id, name and an input object`;
      toolCalls.push({ id: block.id, name: block.name, arguments: JSON.stringify(block.input) });
    } else if (type === 'thinking' || type === 'redacted_thinking' || type === 'server_tool_use' || type === 'web_search_tool_result') {
      // Thoughts and server tool blocks carry no prompt text.
    } else return `${where}.content.${i}.type: unsupported block type ${JSON.stringify(type)}`;
  }
  return { text: joinText(texts), attachments, toolCalls, toolResults, types };
}

function readTools(value: unknown, request: SimRequest): string | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) return 'tools: Input should be a valid list';
  const tools: SimTool[] = [];
  for (const [i, raw] of value.entries()) {
    const tool = asRecord(raw);
    if (typeof tool?.type === 'string' && tool.type.startsWith('web_search')) {
      request.online = true;
      continue;
    }
    if (typeof tool?.name !== 'string' || !asRecord(tool.input_schema)) return `tools.${i}: name and input_schema are required`;
    tools.push({ name: tool.name, description: typeof tool.description === 'string' ? tool.description : '', parameters: asRecord(tool.input_schema) ?? {} });
  }
  if (tools.length > 0) request.tools = tools;
  return undefined;
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
  const firstBlocks: string[] = [];
  for (const [i, raw] of record.messages.entries()) {
    const message = asRecord(raw);
    const role = message?.role;
    if (role !== 'user' && role !== 'assistant') return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    const content = readBlocks(message?.content, `messages.${i}`);
    if (typeof content === 'string') return content;
    const out: SimMessage = { role, text: content.text, attachments: content.attachments };
    if (content.toolCalls.length > 0) out.toolCalls = content.toolCalls;
    if (content.toolResults.length > 0) out.toolResults = content.toolResults;
    messages.push(out);
    firstBlocks.push(content.types[0] ?? '');
  }
  const thinking = asRecord(record.thinking)?.type === 'enabled';
  // Like the API: with thinking on, an assistant turn that called tools in the current loop must
  // start with its (signed) thinking block.
  const last = messages.length - 1;
  if (thinking && messages[last]?.toolResults?.length && messages[last - 1]?.toolCalls?.length && !/thinking/.test(firstBlocks[last - 1] ?? '')) {
    return `messages.${last - 1}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${firstBlocks[last - 1]}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block.`;
  }
  let system = '';
  if (record.system !== undefined) {
    const read = readBlocks(record.system, 'system');
    if (typeof read === 'string') return read;
    system = read.text;
  }
  const request: SimRequest = { model: record.model, system, messages, stream: record.stream === true, includeUsage: true };
  if (maxTokens !== undefined) request.maxTokens = maxTokens;
  const toolError = readTools(record.tools, request);
  if (toolError) return toolError;
  const choice = asRecord(record.tool_choice);
  if (choice?.type === 'auto' || choice?.type === 'none') request.toolChoice = choice.type;
  else if (choice?.type === 'any') request.toolChoice = 'required';
  else if (choice?.type === 'tool' && typeof choice.name === 'string') request.toolChoice = { name: choice.name };
  if (thinking) request.reasoning = true;
  return request;
}

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
  500: 'api_error',
};

const STOP_REASON = { stop: 'end_turn', length: 'max_tokens', 'tool-calls': 'tool_use' } as const;

/** A stand-in signature: opaque to clients, checked by nobody but a real API. */
function signature(turn: PlannedTurn): string {
  return Buffer.from(`sim-signature:${turn.id}`).toString('base64');
}

/** Anthropic's web-search citation for one url_citation annotation (other types have no equivalent). */
function citationOf(annotation: unknown): Record<string, unknown> {
  const a = asRecord(annotation);
  const c = asRecord(a?.url_citation);
  if (a?.type === 'url_citation' && c) return { type: 'web_search_result_location', url: c.url, title: c.title, cited_text: c.content, encrypted_index: 'sim' };
  // The unknown one: a document citation, which carries no URL.
  return { type: 'char_location', cited_text: 'simulated', document_index: 0, document_title: 'notes', start_char_index: 0, end_char_index: 9 };
}

function inputObject(args: string): unknown {
  try {
    return JSON.parse(args) as unknown;
  } catch {
    return { _unparsed: args };
  }
}

/** Content blocks of the whole message: thinking, text, tool calls. */
function contentBlocks(turn: PlannedTurn): Record<string, unknown>[] {
  const blocks: Record<string, unknown>[] = [];
  if (turn.reasoning) blocks.push({ type: 'thinking', thinking: turn.reasoning, signature: signature(turn) });
  if (turn.text !== '' || turn.toolCalls.length === 0) {
    const text: Record<string, unknown> = { type: 'text', text: turn.text };
    if (turn.annotations.length > 0) text.citations = turn.annotations.map(citationOf);
    blocks.push(text);
  }
  for (const c of turn.toolCalls) blocks.push({ type: 'tool_use', id: c.id, name: c.name, input: inputObject(c.arguments) });
  return blocks;
}

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
      content: contentBlocks(turn),
      stop_reason: STOP_REASON[turn.finish],
      stop_sequence: null,
      usage: usage(turn, turn.completionTokens),
    };
  },

  streamEncoder(turn): StreamEncoder {
    const thinking = turn.reasoning !== '';
    const hasText = turn.text !== '' || turn.toolCalls.length === 0;
    const textIndex = thinking ? 1 : 0;
    const piecePrefix = `event: content_block_delta\ndata: {"type":"content_block_delta","index":${textIndex},"delta":{"type":"text_delta","text":`;
    let head = '';
    if (thinking) {
      head +=
        event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } }) +
        fragments(turn.reasoning).map((t) => event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: t } })).join('') +
        event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: signature(turn) } }) +
        event('content_block_stop', { type: 'content_block_stop', index: 0 });
    }
    if (hasText) head += event('content_block_start', { type: 'content_block_start', index: textIndex, content_block: { type: 'text', text: '' } });
    let after = '';
    if (hasText) {
      for (const a of turn.annotations) after += event('content_block_delta', { type: 'content_block_delta', index: textIndex, delta: { type: 'citations_delta', citation: citationOf(a) } });
      after += event('content_block_stop', { type: 'content_block_stop', index: textIndex });
    }
    turn.toolCalls.forEach((c, i) => {
      const index = textIndex + (hasText ? 1 : 0) + i;
      after += event('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: c.id, name: c.name, input: {} } });
      for (const part of fragments(c.arguments)) after += event('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: part } });
      after += event('content_block_stop', { type: 'content_block_stop', index });
    });
    return {
      head: () =>
        // Like the real API, message_start reports one output token so far; the final
        // (cumulative) count comes in message_delta.
        event('message_start', {
          type: 'message_start',
          message: { id: `msg_${turn.id}`, type: 'message', role: 'assistant', model: turn.model, content: [], stop_reason: null, stop_sequence: null, usage: usage(turn, 1) },
        }) +
        head +
        event('ping', { type: 'ping' }),
      piece: (text) => `${piecePrefix}${JSON.stringify(text)}}}\n\n`,
      tail: () =>
        after +
        event('message_delta', { type: 'message_delta', delta: { stop_reason: STOP_REASON[turn.finish], stop_sequence: null }, usage: { output_tokens: turn.completionTokens } }) +
        event('message_stop', { type: 'message_stop' }),
    };
  },
};
