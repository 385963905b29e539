/**
 * Anthropic Messages, server half: reads `POST /v1/messages` (and `/v1/messages/count_tokens`)
 * bodies into the canonical request, and writes canonical events back as a `message` object
 * or as named SSE events (message_start, content_block_*, message_delta, message_stop).
 * Errors use `{ type: "error", error: { type, message } }`; an error mid-stream is an
 * `event: error` frame, and overload is status 529 `overloaded_error`.
 *
 * The client half's structured-output convention (a forced `switchboard_output` tool) reads
 * back as a JSON-schema response format, as does Anthropic's own `output_config.format`.
 */
import type { SwitchboardError } from '../errors.js';
import type { AssistantMessage, ContentPart, Message, ProtocolEvent, ReasoningDetail, RequestParams, TokenUsage, ToolCall, ToolDefinition } from '../types.js';
import { OUTPUT_TOOL } from './anthropic.js';
import { readAnthropicBreakpoints } from './prompt-cache.js';
import { writeTimings } from './timings.js';
import { WireRequestError, type ListedModel, type ProtocolServer, type ResponseMeta, type ServerRequest, type ServerRequestContext, type StreamEnd, type StreamWriter } from './protocol.js';
import { argumentsObject, asRecord, collectEvents, errorMessage, errorStatus, readStreamFlag, retryHeaders, stopReason, unknownField, wrongType, type FieldTypes, type JsonType } from './server-common.js';

function invalid(message: string): WireRequestError {
  return new WireRequestError(400, 'invalid_request_error', message);
}

/**
 * Body fields of `/v1/messages` and of `/v1/messages/count_tokens` (which takes no
 * generation settings). Anything else is refused as Anthropic refuses it
 * (`foo: Extra inputs are not permitted`). `mcp_servers` and `container` need Anthropic's
 * own servers and are refused; `metadata`, `service_tier`, `top_k`, `context_management` and
 * Vertex AI's `anthropic_version` (its rawPredict bodies carry it) are accepted and ignored.
 */
const COUNT_FIELDS = ['model', 'messages', 'system', 'tools', 'tool_choice', 'thinking', 'mcp_servers', 'context_management', 'output_config', 'output_format'];
const COUNT_REQUEST_FIELDS: ReadonlySet<string> = new Set(COUNT_FIELDS);
const REQUEST_FIELDS: ReadonlySet<string> = new Set([...COUNT_FIELDS, 'max_tokens', 'stream', 'stop_sequences', 'temperature', 'top_p', 'top_k', 'metadata', 'service_tier', 'container', 'thread', 'anthropic_version']);

/**
 * The JSON types of the top-level fields read or accepted here that are not checked where they
 * are read (`temperature`, `max_tokens`, `stop_sequences`, `messages` are): a field of another
 * type is refused as Anthropic's validator refuses it, not read as absent.
 */
const FIELD_TYPES: FieldTypes = new Map<string, readonly JsonType[]>([
  ...(['tool_choice', 'thinking', 'metadata', 'output_config', 'output_format', 'context_management', 'thread'] as const).map((f) => [f, ['object']] as const),
  ...(['service_tier', 'anthropic_version', 'model'] as const).map((f) => [f, ['string']] as const),
  ['system', ['string', 'array']],
  ['tools', ['array']],
  ['top_k', ['number']],
]);

/** How Anthropic's validator says a field is not of its type. */
const TYPE_REFUSALS: Record<JsonType, string> = {
  object: 'Input should be a valid dictionary or object to extract fields from',
  array: 'Input should be a valid list',
  string: 'Input should be a valid string',
  number: 'Input should be a valid number',
  boolean: 'Input should be a valid boolean',
};

function refuseWrongTypes(record: Record<string, unknown>): void {
  for (const key in record) {
    const expected = wrongType(FIELD_TYPES, key, record[key]);
    if (expected) throw invalid(`${key}: ${TYPE_REFUSALS[expected[0] as JsonType]}`);
  }
}

/**
 * The message-threads beta: `thread: { type: 'create' }` sends the whole history and is
 * served as a plain request; a `continue` sends only what a stored thread lacks, and this
 * server stores none, so it is answered `thread_not_found`, on which the Anthropic SDK sends
 * the whole history again under a new thread.
 */
function refuseThreadContinue(thread: unknown): void {
  const t = asRecord(thread);
  if (t === undefined || t.type === 'create') return;
  if (t.type !== 'continue') throw invalid("thread.type: Input should be 'create' or 'continue'");
  throw new WireRequestError(404, 'not_found_error', 'thread: this server keeps no message threads, so it cannot continue one; send the whole history again (the Anthropic SDK does this itself).', 'thread', 'thread_not_found');
}
const MESSAGE_FIELDS: ReadonlySet<string> = new Set(['role', 'content']);
/** Fields of the content blocks read here, by type (other block types pass as they are). */
const BLOCK_FIELDS: ReadonlyMap<unknown, ReadonlySet<string>> = new Map([
  ['text', new Set(['type', 'text', 'cache_control', 'citations'])],
  ['image', new Set(['type', 'source', 'cache_control'])],
  ['document', new Set(['type', 'source', 'title', 'context', 'citations', 'cache_control'])],
  ['tool_use', new Set(['type', 'id', 'name', 'input', 'cache_control'])],
  ['tool_result', new Set(['type', 'tool_use_id', 'content', 'is_error', 'cache_control'])],
  ['thinking', new Set(['type', 'thinking', 'signature'])],
  ['redacted_thinking', new Set(['type', 'data'])],
]);
const TOOL_FIELDS: ReadonlySet<string> = new Set(['type', 'name', 'description', 'input_schema', 'cache_control', 'strict']);

/** Anthropic's refusal of a field it does not know; `where` is its path (`messages.0.content.1.tool_use`). */
function refuseExtra(record: Record<string, unknown>, known: ReadonlySet<string> | undefined, where?: string): void {
  const extra = known && unknownField(record, known);
  if (extra !== undefined) throw invalid(`${where === undefined ? '' : `${where}.`}${extra}: Extra inputs are not permitted`);
}

/** A content block's fields, checked against its type's (`messages.0.content.1.tool_use.foo`). */
function refuseExtraInBlock(block: Record<string, unknown> | undefined, where: string): void {
  const known = block && BLOCK_FIELDS.get(block.type);
  const extra = known && unknownField(block, known);
  if (extra !== undefined) throw invalid(`${where}.${String(block?.type)}.${extra}: Extra inputs are not permitted`);
}

/** An image or document block's `source` as a canonical URL (`data:` URI for inline data). */
function sourceURL(source: unknown, where: string): string {
  const s = asRecord(source);
  if (s?.type === 'base64' && typeof s.data === 'string' && typeof s.media_type === 'string') return `data:${s.media_type};base64,${s.data}`;
  if (s?.type === 'text' && typeof s.data === 'string') return `data:${typeof s.media_type === 'string' ? s.media_type : 'text/plain'};base64,${Buffer.from(s.data, 'utf8').toString('base64')}`;
  if (s?.type === 'url' && typeof s.url === 'string') return s.url;
  throw invalid(`${where}.source: Input should be a base64, text or url source`);
}

/** The text of a block list (system prompt, tool result content). */
function blockText(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (content === undefined || content === null) return '';
  if (!Array.isArray(content)) throw invalid(`${where}: Input should be a valid list`);
  return content
    .map((raw, i) => {
      const block = asRecord(raw);
      if (block?.type === 'text' && typeof block.text === 'string') return block.text;
      if (block?.type === 'image' || block?.type === 'document') return '';
      throw invalid(`${where}.${i}.type: Input should be 'text'`);
    })
    .filter((t) => t !== '')
    .join('\n');
}

/** One wire message as canonical messages: a user turn's tool results become tool messages before the rest. */
function readMessage(raw: unknown, i: number): Message[] {
  const message = asRecord(raw);
  const role = message?.role;
  const where = `messages.${i}`;
  if (message) refuseExtra(message, MESSAGE_FIELDS, where);
  if (role !== 'user' && role !== 'assistant') throw invalid(`${where}.role: Input should be 'user' or 'assistant'`);
  const content = message?.content;
  if (typeof content === 'string') return [role === 'user' ? { role: 'user', content } : { role: 'assistant', content }];
  if (!Array.isArray(content)) throw invalid(`${where}.content: Input should be a valid list`);
  if (role === 'assistant') {
    const texts: string[] = [];
    const calls: ToolCall[] = [];
    const reasoning: ReasoningDetail[] = [];
    content.forEach((raw, j) => {
      const block = asRecord(raw);
      refuseExtraInBlock(block, `${where}.content.${j}`);
      if (block?.type === 'text' && typeof block.text === 'string') texts.push(block.text);
      else if (block?.type === 'tool_use') {
        if (typeof block.id !== 'string' || typeof block.name !== 'string' || !asRecord(block.input)) throw invalid(`${where}.content.${j}: tool_use needs id, name and an input object`);
        calls.push({ id: block.id, type: 'function', function: { name: block.name, arguments: JSON.stringify(block.input) } });
      } else if (block?.type === 'thinking' && typeof block.thinking === 'string') {
        const detail: ReasoningDetail = { text: block.thinking };
        if (typeof block.signature === 'string') detail.signature = block.signature;
        reasoning.push(detail);
      } else if (block?.type === 'redacted_thinking' || block?.type === 'server_tool_use' || (typeof block?.type === 'string' && block.type.endsWith('_tool_result'))) {
        // Opaque to everyone but Anthropic: nothing the canonical history carries.
      } else throw invalid(`${where}.content.${j}.type: unsupported block type ${JSON.stringify(block?.type)} in an assistant message`);
    });
    const out: AssistantMessage & { reasoning_details?: ReasoningDetail[] } = { role: 'assistant', content: texts.length > 0 ? texts.join('') : null };
    if (calls.length > 0) out.tool_calls = calls;
    if (reasoning.length > 0) out.reasoning_details = reasoning;
    return [out];
  }
  const tools: Message[] = [];
  const parts: ContentPart[] = [];
  content.forEach((raw, j) => {
    const block = asRecord(raw);
    const at = `${where}.content.${j}`;
    refuseExtraInBlock(block, at);
    switch (block?.type) {
      case 'text':
        if (typeof block.text !== 'string') throw invalid(`${at}.text: Field required`);
        parts.push({ type: 'text', text: block.text });
        break;
      case 'image':
        parts.push({ type: 'image_url', image_url: { url: sourceURL(block.source, at) } });
        break;
      case 'document': {
        const part: ContentPart = { type: 'file', file: { file_data: sourceURL(block.source, at) } };
        if (typeof block.title === 'string') part.file.filename = block.title;
        parts.push(part);
        break;
      }
      case 'tool_result':
        if (typeof block.tool_use_id !== 'string') throw invalid(`${at}.tool_use_id: Field required`);
        tools.push({ role: 'tool', tool_call_id: block.tool_use_id, content: blockText(block.content, `${at}.content`) });
        break;
      default:
        throw invalid(`${at}.type: unsupported block type ${JSON.stringify(block?.type)}`);
    }
  });
  if (parts.length === 0) return tools;
  const only = parts[0];
  return [...tools, { role: 'user', content: parts.length === 1 && only?.type === 'text' ? only.text : parts }];
}

function readTools(value: unknown, params: RequestParams): { output?: { name: string; schema: Record<string, unknown> } } {
  if (value === undefined) return {};
  if (!Array.isArray(value)) throw invalid('tools: Input should be a valid list');
  const tools: ToolDefinition[] = [];
  let output: { name: string; schema: Record<string, unknown> } | undefined;
  value.forEach((raw, i) => {
    const tool = asRecord(raw);
    if (typeof tool?.type === 'string' && tool.type.startsWith('web_search')) {
      params.webSearch = typeof tool.max_uses === 'number' ? { maxResults: tool.max_uses } : true;
      return;
    }
    const schema = asRecord(tool?.input_schema);
    if (typeof tool?.name !== 'string' || !schema) throw invalid(`tools.${i}: name and input_schema are required`);
    refuseExtra(tool, TOOL_FIELDS, `tools.${i}.custom`);
    if (tool.name === OUTPUT_TOOL) {
      const name = /^Give the reply as (.+)\.$/.exec(typeof tool.description === 'string' ? tool.description : '')?.[1] ?? 'response';
      output = { name, schema };
      return;
    }
    const out: ToolDefinition = { name: tool.name, parameters: schema };
    if (typeof tool.description === 'string') out.description = tool.description;
    tools.push(out);
  });
  if (tools.length > 0) params.tools = tools;
  return output ? { output } : {};
}

function readNumber(record: Record<string, unknown>, field: string, min: number, max: number): number | undefined {
  const value = record[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) throw invalid(`${field}: Input should be a number from ${min} to ${max}`);
  return value;
}

function parseRequest(body: unknown, ctx: ServerRequestContext): ServerRequest {
  const record = asRecord(body);
  if (!record) throw invalid('The request body must be a JSON object.');
  refuseExtra(record, ctx.counting ? COUNT_REQUEST_FIELDS : REQUEST_FIELDS);
  refuseWrongTypes(record);
  if (record.mcp_servers !== undefined) throw invalid('mcp_servers: MCP servers are not supported by this server; give the tools in tools instead');
  if (record.thread !== undefined && record.thread !== null) refuseThreadContinue(record.thread);
  if (record.container !== undefined) throw invalid('container: code execution containers are not supported by this server; remove container');
  if (typeof record.model !== 'string' || record.model === '') throw invalid('model: Field required');
  const params: RequestParams = {};
  if (!ctx.counting) {
    // Anthropic has no default output cap: max_tokens is required.
    if (record.max_tokens === undefined) throw invalid('max_tokens: Field required');
    if (typeof record.max_tokens !== 'number' || !Number.isInteger(record.max_tokens) || record.max_tokens < 1) throw invalid('max_tokens: Input should be a positive integer');
    params.maxTokens = record.max_tokens;
  }
  if (!Array.isArray(record.messages) || record.messages.length === 0) throw invalid('messages: Field required (a non-empty list)');
  const messages: Message[] = [];
  if (Array.isArray(record.system)) record.system.forEach((b, i) => refuseExtra(asRecord(b) ?? {}, BLOCK_FIELDS.get('text'), `system.${i}`));
  if (record.system !== undefined) {
    const system = blockText(record.system, 'system');
    if (system !== '') messages.push({ role: 'system', content: system });
  }
  const messageEnds: number[] = [];
  record.messages.forEach((m, i) => messageEnds.push(messages.push(...readMessage(m, i)) - 1));
  const breakpoints = readAnthropicBreakpoints(record, messageEnds);
  if (breakpoints) params.cacheBreakpoints = breakpoints;
  const temperature = readNumber(record, 'temperature', 0, 1);
  if (temperature !== undefined) params.temperature = temperature;
  const topP = readNumber(record, 'top_p', 0, 1);
  if (topP !== undefined) params.topP = topP;
  if (record.stop_sequences !== undefined) {
    if (!Array.isArray(record.stop_sequences) || !record.stop_sequences.every((s) => typeof s === 'string')) throw invalid('stop_sequences: Input should be a valid list of strings');
    if (record.stop_sequences.length > 0) params.stop = record.stop_sequences as string[];
  }
  const { output } = readTools(record.tools, params);
  const choice = asRecord(record.tool_choice);
  if (output && choice?.type === 'tool' && choice.name === OUTPUT_TOOL) {
    params.responseFormat = { type: 'json_schema', json_schema: { name: output.name, schema: output.schema } };
  } else if (choice?.type === 'auto' || choice?.type === 'none') params.toolChoice = choice.type;
  else if (choice?.type === 'any') params.toolChoice = 'required';
  else if (choice?.type === 'tool' && typeof choice.name === 'string') params.toolChoice = { name: choice.name };
  else if (choice !== undefined) throw invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
  const format = asRecord(asRecord(record.output_config)?.format) ?? asRecord(record.output_format);
  if (format) {
    const schema = asRecord(format.schema);
    if (format.type !== 'json_schema' || !schema) throw invalid("output_config.format: Input should be { type: 'json_schema', schema }");
    params.responseFormat = { type: 'json_schema', json_schema: { name: 'response', schema } };
  }
  const thinking = asRecord(record.thinking);
  if (thinking && thinking.type !== 'enabled' && thinking.type !== 'disabled' && thinking.type !== 'adaptive') {
    throw invalid(`thinking: Input tag ${JSON.stringify(thinking.type ?? null)} found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'`);
  }
  if (thinking?.type === 'enabled') {
    if (typeof thinking.budget_tokens !== 'number' || thinking.budget_tokens < 1024) throw invalid('thinking.enabled.budget_tokens: Input should be greater than or equal to 1024');
    if (params.maxTokens !== undefined && thinking.budget_tokens >= params.maxTokens) throw invalid('`max_tokens` must be greater than `thinking.budget_tokens`.');
    params.reasoning = { maxTokens: thinking.budget_tokens };
  }
  const stream = readStreamFlag(record, () => invalid('stream: Input should be a valid boolean'));
  return { model: record.model, stream, request: { model: record.model, messages, params, stream } };
}

/** Usage as Anthropic writes it: input_tokens excludes the cache reads and writes counted beside it. */
function anthropicUsage(usage: TokenUsage | undefined): Record<string, unknown> {
  const cacheRead = usage?.cachedTokens ?? 0;
  const cacheWrite = usage?.cacheWriteTokens ?? 0;
  const hourWrites = Math.min(usage?.cacheWrite1hTokens ?? 0, cacheWrite);
  return {
    input_tokens: Math.max(0, (usage?.promptTokens ?? 0) - cacheRead - cacheWrite),
    cache_creation_input_tokens: cacheWrite,
    // Anthropic's split of the writes by lifetime (priced apart: 1.25x and 2x the input price).
    cache_creation: { ephemeral_5m_input_tokens: cacheWrite - hourWrites, ephemeral_1h_input_tokens: hourWrites },
    cache_read_input_tokens: cacheRead,
    output_tokens: usage?.completionTokens ?? 0,
  };
}

/** Anthropic's web-search citation for a url_citation annotation (other annotation types have none). */
function citationOf(annotation: unknown): Record<string, unknown> | undefined {
  const a = asRecord(annotation);
  const c = asRecord(a?.url_citation);
  if (a?.type !== 'url_citation' || !c) return undefined;
  return { type: 'web_search_result_location', url: c.url, title: c.title ?? null, cited_text: c.content ?? '', encrypted_index: '' };
}

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

/** Anthropic signals overload with 529, not 503. */
function anthropicStatus(error: SwitchboardError | WireRequestError): number {
  const status = errorStatus(error);
  return status === 503 || (!(error instanceof WireRequestError) && error.code === 'overloaded') ? 529 : status;
}

function errorObject(error: SwitchboardError | WireRequestError, status: number): Record<string, unknown> {
  const type = error instanceof WireRequestError ? error.type : (ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error'));
  const body: Record<string, unknown> = { type, message: errorMessage(error) };
  // A machine-readable reason where Anthropic gives one (`thread_not_found`).
  if (error instanceof WireRequestError && error.code !== undefined) body.details = { error_code: error.code };
  return { type: 'error', error: body };
}

function frame(name: string, data: unknown): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

type OpenBlock = { kind: 'thinking' | 'text' | 'tool'; index: number; toolIndex?: number; signed?: boolean };

class MessagesWriter implements StreamWriter {
  readonly contentType = 'text/event-stream; charset=utf-8';
  private block: OpenBlock | undefined;
  private next = 0;
  private pinged = false;
  /** The text delta frame up to the text, for the open text block (the hot path). */
  private textPrefix = '';

  constructor(private readonly meta: ResponseMeta) {}

  start(): string {
    // Like the API, message_start reports one output token so far; message_delta has the final counts.
    const usage = { input_tokens: this.meta.promptTokens ?? 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 };
    const message = { id: `msg_${this.meta.id}`, type: 'message', role: 'assistant', model: this.meta.model, content: [], stop_reason: null, stop_sequence: null, usage };
    return frame('message_start', { type: 'message_start', message });
  }

  private open(kind: OpenBlock['kind'], contentBlock: Record<string, unknown>, toolIndex?: number): string {
    const frames = this.close();
    this.block = { kind, index: this.next++ };
    if (toolIndex !== undefined) this.block.toolIndex = toolIndex;
    if (kind === 'text') this.textPrefix = `event: content_block_delta\ndata: {"type":"content_block_delta","index":${this.block.index},"delta":{"type":"text_delta","text":`;
    // As the API does: a ping after the first content block starts.
    const ping = this.pinged ? '' : frame('ping', { type: 'ping' });
    this.pinged = true;
    return frames + frame('content_block_start', { type: 'content_block_start', index: this.block.index, content_block: contentBlock }) + ping;
  }

  private close(): string {
    if (!this.block) return '';
    const index = this.block.index;
    this.block = undefined;
    return frame('content_block_stop', { type: 'content_block_stop', index });
  }

  private delta(delta: Record<string, unknown>): string {
    return frame('content_block_delta', { type: 'content_block_delta', index: this.block?.index ?? 0, delta });
  }

  write(events: readonly ProtocolEvent[]): string {
    // The hot path: one text delta per call, inside an open text block.
    const only = events.length === 1 ? events[0] : undefined;
    if (only?.type === 'text-delta' && this.block?.kind === 'text') return `${this.textPrefix}${JSON.stringify(only.text)}}}\n\n`;
    let frames = '';
    for (const event of events) {
      switch (event.type) {
        case 'text-delta':
          if (this.block?.kind !== 'text') frames += this.open('text', { type: 'text', text: '' });
          frames += `${this.textPrefix}${JSON.stringify(event.text)}}}\n\n`;
          break;
        case 'reasoning-delta':
          if (this.block?.kind !== 'thinking' || this.block.signed) frames += this.open('thinking', { type: 'thinking', thinking: '', signature: '' });
          if (event.text !== '') frames += this.delta({ type: 'thinking_delta', thinking: event.text });
          if (event.signature !== undefined) {
            frames += this.delta({ type: 'signature_delta', signature: event.signature });
            (this.block as OpenBlock).signed = true;
          }
          break;
        case 'tool-call-delta':
          if (this.block?.kind !== 'tool' || this.block.toolIndex !== event.index) {
            frames += this.open('tool', { type: 'tool_use', id: event.id ?? `toolu_${this.meta.id}${event.index}`, name: event.name ?? '', input: {} }, event.index);
          }
          if (event.argumentsDelta !== '') frames += this.delta({ type: 'input_json_delta', partial_json: event.argumentsDelta });
          break;
        case 'annotations':
          if (this.block?.kind !== 'text') frames += this.open('text', { type: 'text', text: '' });
          for (const a of event.annotations) {
            const citation = citationOf(a);
            if (citation) frames += this.delta({ type: 'citations_delta', citation });
          }
          break;
        default:
          break;
      }
    }
    return frames;
  }

  end(result: StreamEnd): string {
    return (
      this.close() +
      frame('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: stopReason(result, 'refusal'), stop_sequence: result.stopSequence ?? null },
        usage: anthropicUsage(result.usage),
        ...(result.timing ? { timings: writeTimings(result.timing) } : {}),
      }) +
      frame('message_stop', { type: 'message_stop' })
    );
  }

  error(error: SwitchboardError | WireRequestError): string {
    return frame('error', errorObject(error, anthropicStatus(error)));
  }

  keepAlive(): string {
    return frame('ping', { type: 'ping' });
  }
}

export const anthropicServer: ProtocolServer = {
  name: 'anthropic',

  parseRequest,

  createStreamWriter: (meta) => new MessagesWriter(meta),

  writeResponse(events, meta, end) {
    const r = collectEvents(events, end);
    const content: Record<string, unknown>[] = r.reasoning.map((d) => ({ type: 'thinking', thinking: d.text, signature: d.signature ?? '' }));
    if (r.text !== '' || r.toolCalls.length === 0) {
      const block: Record<string, unknown> = { type: 'text', text: r.text };
      const citations = r.annotations.map(citationOf).filter((c) => c !== undefined);
      if (citations.length > 0) block.citations = citations;
      content.push(block);
    }
    for (const c of r.toolCalls) content.push({ type: 'tool_use', id: c.id, name: c.name, input: argumentsObject(c.arguments) });
    return {
      id: `msg_${meta.id}`,
      type: 'message',
      role: 'assistant',
      model: meta.model,
      content,
      stop_reason: stopReason({ finishReason: r.finishReason, rawFinishReason: r.rawFinishReason, stopSequence: end?.stopSequence }, 'refusal'),
      stop_sequence: end?.stopSequence ?? null,
      usage: anthropicUsage(r.usage),
    };
  },

  writeError(error) {
    const status = anthropicStatus(error);
    return { status, headers: retryHeaders(error), body: errorObject(error, status) };
  },

  writeModelList(models: readonly ListedModel[]) {
    const data = models.map((m) => ({ type: 'model', id: m.id, display_name: m.displayName ?? m.id, created_at: new Date((m.created ?? 0) * 1000).toISOString() }));
    return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null };
  },

  writeTokenCount: (tokens) => ({ input_tokens: tokens }),
};
