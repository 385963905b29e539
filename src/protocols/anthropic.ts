/**
 * Anthropic Messages API (`POST {baseURL}/v1/messages`).
 *
 * Requests: system messages become the top-level `system`; tool calls become `tool_use`
 * blocks and tool results `tool_result` blocks in a user turn; consecutive turns of one role
 * are merged, as the API wants strict alternation. `max_tokens` is always sent.
 *
 * Usage: Anthropic's `input_tokens` excludes cache reads and writes, so the canonical
 * promptTokens is input + cache_creation + cache_read.
 */
import { InvalidInputError, apiErrorFromStatus, ProtocolError, type APIError } from '../errors.js';
import type { CanonicalRequest, ContentPart, FinishReason, Message, ProtocolEvent, ProviderBlocks, ProviderTiming, ReasoningDetail, TokenUsage } from '../types.js';
import { usageWithSeparateCache } from '../usage.js';
import { EFFORT_BUDGETS, mediaTypeFromURL, parseDataURI, parseToolArguments, toTurns, type WireTurn } from './media.js';
import type { Endpoint, Protocol, SSEMessage, StreamReader, WireRequest } from './protocol.js';
import { addAnthropicBreakpoints, placeAnthropicBreakpoints, type BlockPosition } from './prompt-cache.js';
import { readTimings, type WireTimings } from './timings.js';

export const ANTHROPIC_VERSION = '2023-06-01';
/** The `anthropic_version` Claude on Vertex AI takes in the body. */
export const ANTHROPIC_VERTEX_VERSION = 'vertex-2023-10-16';
/** `max_tokens` when the caller sets none (the API requires one). */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

export interface AnthropicUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  /** The cache writes split by lifetime. */
  cache_creation?: { ephemeral_5m_input_tokens?: number; ephemeral_1h_input_tokens?: number } | null;
  /** Output tokens spent thinking (part of output_tokens). */
  output_tokens_details?: { thinking_tokens?: number } | null;
}

type Block = Record<string, unknown> & { type: string };
type ReplayedAssistant = Message & { reasoning_details?: ReasoningDetail[]; provider_blocks?: ProviderBlocks };

/** The forced tool whose input carries a structured reply; its input is streamed as the reply text. */
export const OUTPUT_TOOL = 'switchboard_output';
type WireMessage = WireTurn<Block>;

interface WireContentBlock {
  type: string;
  text?: string;
  id?: string;
  name?: string;
  input?: unknown;
  thinking?: string;
  signature?: string;
  citations?: WireCitation[];
}

interface WireCitation {
  type?: string;
  url?: string;
  title?: string;
  cited_text?: string;
}

/** A web-search citation in the url_citation shape the canonical annotations use. */
function webCitation(citation: WireCitation): Record<string, unknown> | undefined {
  if (citation.type !== 'web_search_result_location' || !citation.url) return undefined;
  return { type: 'url_citation', url_citation: { url: citation.url, title: citation.title, content: citation.cited_text } };
}

interface WireError {
  type?: string;
  error?: { type?: string; message?: string };
}

const FINISH: Record<string, FinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool-calls',
  refusal: 'content-filter',
};

export function mapAnthropicFinish(raw: string): FinishReason {
  return FINISH[raw] ?? 'other';
}

/** Anthropic usage into the canonical convention (cache reads and writes counted as input). */
export function readAnthropicUsage(usage: AnthropicUsage): TokenUsage {
  const out = usageWithSeparateCache({
    input: usage.input_tokens,
    output: usage.output_tokens,
    cacheRead: usage.cache_read_input_tokens ?? undefined,
    cacheWrite: usage.cache_creation_input_tokens ?? undefined,
  });
  const thinking = usage.output_tokens_details?.thinking_tokens;
  const hourWrites = usage.cache_creation?.ephemeral_1h_input_tokens;
  if (hourWrites) out.cacheWrite1hTokens = hourWrites;
  if (thinking !== undefined) out.reasoningTokens = thinking;
  return out;
}

/** HTTP status that matches an Anthropic error type, for errors sent inside a 200 stream. */
const ERROR_STATUS: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  overloaded_error: 529,
};

function errorFromBody(body: WireError, provider: string): APIError {
  const type = body.error?.type ?? 'api_error';
  return apiErrorFromStatus({
    status: ERROR_STATUS[type] ?? 500,
    provider,
    providerMessage: body.error?.message ?? 'error inside the stream',
    providerCode: type,
  });
}

function partToBlock(part: ContentPart): Block {
  switch (part.type) {
    case 'text':
      return { type: 'text', text: part.text };
    case 'image_url': {
      const data = parseDataURI(part.image_url.url);
      return data
        ? { type: 'image', source: { type: 'base64', media_type: data.mediaType, data: data.data } }
        : { type: 'image', source: { type: 'url', url: part.image_url.url } };
    }
    case 'file': {
      const uri = part.file.file_data;
      const data = parseDataURI(uri);
      const mediaType = data?.mediaType ?? mediaTypeFromURL(uri, 'application/pdf');
      if (mediaType.startsWith('image/')) {
        return data
          ? { type: 'image', source: { type: 'base64', media_type: mediaType, data: data.data } }
          : { type: 'image', source: { type: 'url', url: uri } };
      }
      if (mediaType === 'text/plain' && data) {
        return { type: 'document', source: { type: 'text', media_type: 'text/plain', data: Buffer.from(data.data, 'base64').toString('utf8') } };
      }
      if (mediaType !== 'application/pdf') {
        throw new InvalidInputError(`Anthropic accepts PDF and plain-text documents, not ${mediaType}${part.file.filename ? ` (${part.file.filename})` : ''}.`);
      }
      return data
        ? { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: data.data } }
        : { type: 'document', source: { type: 'url', url: uri } };
    }
    case 'input_audio':
      throw new InvalidInputError('Anthropic models do not accept audio input.');
  }
}

/**
 * Canonical messages to Anthropic's `system` and alternating `messages`. Server-tool blocks
 * of an assistant message go back only to the provider (`provider`) that sent them.
 */
export function toAnthropicMessages(
  messages: Message[],
  provider?: string,
): { system: string | undefined; messages: WireMessage[]; ends: (BlockPosition | undefined)[] } {
  const { system, turns, ends } = toTurns<Block>(messages, {
    text: (text) => ({ type: 'text', text }),
    part: partToBlock,
    assistantStart(message) {
      const blocks: Block[] = [];
      // Within a tool loop, thinking blocks come back with their signatures (Anthropic requires
      // them before tool_use when thinking is on). Plain histories carry none.
      for (const detail of (message as ReplayedAssistant).reasoning_details ?? []) {
        if (detail.signature) blocks.push({ type: 'thinking', thinking: detail.text, signature: detail.signature });
      }
      const own = (message as ReplayedAssistant).provider_blocks;
      if (own && own.provider === provider) blocks.push(...(own.blocks as Block[]));
      return blocks;
    },
    toolCall: (call) => ({ type: 'tool_use', id: call.id, name: call.function.name, input: parseToolArguments(call.function.arguments) }),
    toolResult: (message) => ({ type: 'tool_result', tool_use_id: message.tool_call_id, content: message.content }),
  });
  return { system: system.length > 0 ? system.join('\n\n') : undefined, messages: turns, ends };
}

/** The schema of an OpenAI-style `response_format` of type `json_schema`. */
function outputSchema(format: Record<string, unknown> | undefined): { name: string; schema: Record<string, unknown> } | undefined {
  if (format?.type !== 'json_schema') return undefined;
  const spec = format.json_schema as { name?: unknown; schema?: unknown } | undefined;
  if (typeof spec?.schema !== 'object' || spec.schema === null) return undefined;
  return { name: typeof spec.name === 'string' ? spec.name : 'response', schema: spec.schema as Record<string, unknown> };
}

function outputInstruction(schema: Record<string, unknown>): string {
  return `Answer with a single JSON value, and nothing else, that satisfies this JSON Schema:\n${JSON.stringify(schema)}`;
}

export function buildAnthropicBody(request: CanonicalRequest, provider?: string): Record<string, unknown> {
  const { params } = request;
  const { system, messages, ends } = toAnthropicMessages(request.messages, provider);
  const budget =
    params.reasoning === undefined
      ? undefined
      : params.reasoning.maxTokens ?? EFFORT_BUDGETS[params.reasoning.effort ?? 'medium'];
  // The thinking budget counts against max_tokens and must stay below it.
  const maxTokens = params.maxTokens ?? (budget === undefined ? ANTHROPIC_DEFAULT_MAX_TOKENS : budget + ANTHROPIC_DEFAULT_MAX_TOKENS);
  const body: Record<string, unknown> = { model: request.model, max_tokens: maxTokens, messages };
  const output = outputSchema(params.responseFormat);
  const userTools = params.tools ?? [];
  // Structured output: a forced tool whose input is the object (tool input is always an object),
  // unless other tools or thinking (which forbids forcing a tool) are in play, or the schema is
  // not an object; then an instruction in the system prompt.
  const forceOutput = output !== undefined && output.schema.type === 'object' && userTools.length === 0 && budget === undefined && params.toolChoice === undefined;
  const instruction = output !== undefined && !forceOutput ? outputInstruction(output.schema) : undefined;
  const systemText = [system, instruction].filter((t): t is string => t !== undefined).join('\n\n');
  if (systemText !== '') body.system = systemText;
  if (request.stream) body.stream = true;
  if (params.temperature !== undefined) body.temperature = params.temperature;
  if (params.topP !== undefined) body.top_p = params.topP;
  if (params.stop !== undefined) body.stop_sequences = typeof params.stop === 'string' ? [params.stop] : params.stop;
  const tools: Record<string, unknown>[] = userTools.map((t) => {
    const tool: Record<string, unknown> = { name: t.name, input_schema: t.parameters };
    if (t.description !== undefined) tool.description = t.description;
    return tool;
  });
  if (forceOutput) tools.push({ name: OUTPUT_TOOL, description: `Give the reply as ${output.name}.`, input_schema: output.schema });
  if (params.webSearch) {
    const search: Record<string, unknown> = { type: 'web_search_20250305', name: 'web_search' };
    if (typeof params.webSearch === 'object' && params.webSearch.maxResults !== undefined) search.max_uses = params.webSearch.maxResults;
    tools.push(search);
  }
  if (tools.length > 0) body.tools = tools;
  if (forceOutput) body.tool_choice = { type: 'tool', name: OUTPUT_TOOL };
  else if (params.toolChoice !== undefined) {
    const choice = params.toolChoice;
    body.tool_choice =
      choice === 'auto' ? { type: 'auto' } : choice === 'required' ? { type: 'any' } : choice === 'none' ? { type: 'none' } : { type: 'tool', name: choice.name };
  }
  if (budget !== undefined) body.thinking = { type: 'enabled', budget_tokens: Math.min(budget, Math.max(1024, maxTokens - 1)) };
  // The caller's own markers (read by a server half, as when the gateway serves an Anthropic
  // client) go where the caller put them, in place of ours.
  if (params.cacheBreakpoints) placeAnthropicBreakpoints(body as Parameters<typeof placeAnthropicBreakpoints>[0], params.cacheBreakpoints, ends);
  else addAnthropicBreakpoints(body as Parameters<typeof addAnthropicBreakpoints>[0], params);
  if (params.extraBody) Object.assign(body, params.extraBody);
  return body;
}

/**
 * Blocks of Anthropic's own tools, run on Anthropic's side: `server_tool_use` (web search,
 * web fetch, code execution), `mcp_tool_use`, their `*_tool_result` blocks, and
 * `redacted_thinking`. They are not client tool calls; they are kept as sent.
 */
export function isProviderBlock(type: string): boolean {
  return type === 'server_tool_use' || type === 'mcp_tool_use' || type === 'redacted_thinking' || type.endsWith('_tool_result');
}

/** What a content block index of the stream is, once its content_block_start was seen. */
type OpenBlock =
  | { kind: 'tool'; toolIndex: number }
  | { kind: 'output' }
  | { kind: 'provider'; block: WireContentBlock; json: string }
  | { kind: 'other' };

class AnthropicStreamReader implements StreamReader {
  done = false;
  private usage: AnthropicUsage = {};
  private messageId: string | undefined;
  private started = false;
  /** The server's own timing (the simulator's llama.cpp-style `timings` on message_delta). */
  private timing: ProviderTiming | undefined;
  /** A stop_reason sent in message_start, reported at message_stop unless message_delta sends one. */
  private initialStop: string | undefined;
  private finished = false;
  private toolCount = 0;
  private outputCount = 0;
  private readonly blocks = new Map<number, OpenBlock>();
  constructor(private readonly provider: string) {}

  onEvent(message: SSEMessage, out: ProtocolEvent[]): void {
    if (message.data === '') return;
    let event: Record<string, unknown> & { type?: string };
    try {
      event = JSON.parse(message.data) as typeof event;
    } catch {
      throw new ProtocolError(`${this.provider} sent a stream event that is not JSON: ${message.data.slice(0, 120)}`);
    }
    const type = event.type ?? message.event;
    switch (type) {
      case 'message_start':
        this.start((event.message ?? {}) as WireMessageBody, out);
        break;
      case 'content_block_start': {
        const index = event.index as number;
        const block = (event.content_block ?? {}) as WireContentBlock;
        this.open(index, block, out);
        break;
      }
      case 'content_block_delta': {
        const delta = (event.delta ?? {}) as { type?: string; text?: string; partial_json?: string; thinking?: string; signature?: string; citation?: WireCitation };
        const open = this.blocks.get(event.index as number);
        if (delta.type === 'text_delta' && delta.text) out.push({ type: 'text-delta', text: delta.text });
        else if (delta.type === 'input_json_delta') {
          // A fragment belongs to the block at its index only: a server tool's input never
          // lands on a client tool call.
          if (!delta.partial_json || !open) break;
          if (open.kind === 'output') out.push({ type: 'text-delta', text: delta.partial_json });
          else if (open.kind === 'tool') out.push({ type: 'tool-call-delta', index: open.toolIndex, argumentsDelta: delta.partial_json });
          else if (open.kind === 'provider') open.json += delta.partial_json;
        } else if (delta.type === 'citations_delta' && delta.citation) {
          const citation = webCitation(delta.citation);
          if (citation) out.push({ type: 'annotations', annotations: [citation] });
        } else if (delta.type === 'thinking_delta' && delta.thinking) out.push({ type: 'reasoning-delta', text: delta.thinking });
        else if (delta.type === 'signature_delta' && delta.signature) out.push({ type: 'reasoning-delta', text: '', signature: delta.signature });
        break;
      }
      case 'content_block_stop': {
        const index = event.index as number;
        const open = this.blocks.get(index);
        if (open?.kind === 'provider') {
          this.blocks.set(index, { kind: 'other' });
          out.push({ type: 'provider-block', block: this.finishProviderBlock(open.block, open.json) });
        }
        break;
      }
      case 'message_delta': {
        const delta = (event.delta ?? {}) as { stop_reason?: string | null };
        const usage = event.usage as AnthropicUsage | undefined;
        this.timing = readTimings(event.timings as WireTimings | undefined) ?? this.timing;
        // message_delta usage is cumulative; newer API versions repeat the input counts here.
        if (usage) {
          for (const [key, value] of Object.entries(usage)) {
            if (value !== null && value !== undefined) (this.usage as Record<string, unknown>)[key] = value;
          }
        }
        if (delta.stop_reason) this.finish(delta.stop_reason, out);
        break;
      }
      case 'message_stop':
        this.stop(out);
        break;
      case 'error':
        throw errorFromBody(event as WireError, this.provider);
      default:
        // ping and event types added later carry nothing we need.
        break;
    }
  }

  /** A whole (non-streamed) message reads like a stream that sent everything in message_start. */
  readWhole(msg: WireMessageBody, out: ProtocolEvent[]): void {
    this.start(msg, out);
    if (msg.usage) this.stop(out);
    else if (this.initialStop) this.finish(this.initialStop, out);
  }

  private stop(out: ProtocolEvent[]): void {
    if (!this.finished && this.initialStop) this.finish(this.initialStop, out);
    const event: ProtocolEvent = { type: 'usage', usage: readAnthropicUsage(this.usage), raw: this.usage };
    if (this.timing) event.timing = this.timing;
    out.push(event);
    this.done = true;
  }

  /**
   * message_start: a repeat for the same message is ignored (its usage must not replace the
   * counts); one for another message means two replies were spliced together. Content
   * blocks and a stop_reason it already carries count like streamed ones.
   */
  private start(msg: WireMessageBody, out: ProtocolEvent[]): void {
    if (this.started) {
      if (msg.id === this.messageId) return;
      throw new ProtocolError(
        `${this.provider} started message ${JSON.stringify(msg.id)} inside message ${JSON.stringify(this.messageId)}: the stream mixes two replies.`,
      );
    }
    this.started = true;
    this.messageId = msg.id;
    if (msg.usage) this.usage = { ...msg.usage };
    out.push({ type: 'start', model: msg.model, id: msg.id });
    (msg.content ?? []).forEach((block, index) => {
      this.open(index, block, out, true);
      const open = this.blocks.get(index);
      if (open?.kind === 'provider') {
        this.blocks.set(index, { kind: 'other' });
        out.push({ type: 'provider-block', block: this.finishProviderBlock(open.block, '') });
      }
    });
    if (msg.stop_reason) this.initialStop = msg.stop_reason;
  }

  /** A content block begins (or, from message_start, arrives whole). */
  private open(index: number, block: WireContentBlock, out: ProtocolEvent[], whole = false): void {
    const input = whole || hasInput(block.input) ? JSON.stringify(block.input ?? {}) : '';
    if (block.type === 'tool_use' && block.name === OUTPUT_TOOL) {
      this.blocks.set(index, { kind: 'output' });
      this.outputCount++;
      if (input) out.push({ type: 'text-delta', text: input });
    } else if (block.type === 'tool_use') {
      const toolIndex = this.toolCount++;
      this.blocks.set(index, { kind: 'tool', toolIndex });
      out.push({ type: 'tool-call-delta', index: toolIndex, id: block.id, name: block.name, argumentsDelta: input });
    } else if (isProviderBlock(block.type)) {
      this.blocks.set(index, { kind: 'provider', block, json: '' });
    } else {
      this.blocks.set(index, { kind: 'other' });
      if (block.type === 'text' && block.text) {
        out.push({ type: 'text-delta', text: block.text });
        const citations = (block.citations ?? []).map(webCitation).filter((c) => c !== undefined);
        if (citations.length > 0) out.push({ type: 'annotations', annotations: citations });
      } else if (block.type === 'thinking' && (block.thinking || block.signature)) {
        const event: ProtocolEvent = { type: 'reasoning-delta', text: block.thinking ?? '' };
        if (block.signature) event.signature = block.signature;
        out.push(event);
      }
    }
  }

  /** A server tool's block with its streamed input put together. */
  private finishProviderBlock(block: WireContentBlock, json: string): Record<string, unknown> {
    if (json === '') return { ...block };
    try {
      return { ...block, input: JSON.parse(json) as unknown };
    } catch {
      throw new ProtocolError(`${this.provider} streamed input for its ${block.type} block "${block.name ?? ''}" that is not JSON: ${json.slice(0, 120)}`);
    }
  }

  private finish(raw: string, out: ProtocolEvent[]): void {
    this.finished = true;
    // A forced structured-output tool is the answer, not a call to run.
    const reason = raw === 'tool_use' && this.toolCount === 0 && this.outputCount > 0 ? 'stop' : mapAnthropicFinish(raw);
    out.push({ type: 'finish', reason, rawReason: raw });
  }
}

function hasInput(input: unknown): boolean {
  return input !== null && typeof input === 'object' && Object.keys(input).length > 0;
}

interface WireMessageBody {
  id?: string;
  model?: string;
  content?: WireContentBlock[];
  stop_reason?: string | null;
  usage?: AnthropicUsage;
}

export const anthropicProtocol: Protocol = {
  name: 'anthropic',

  buildRequest(request: CanonicalRequest, endpoint: Endpoint): WireRequest {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: request.stream ? 'text/event-stream' : 'application/json',
    };
    const body = buildAnthropicBody(request, endpoint.provider);
    if (endpoint.compat.vertex) {
      // Claude on Vertex: the model is in the path and the version in the body.
      delete body.model;
      body.anthropic_version = ANTHROPIC_VERTEX_VERSION;
      Object.assign(headers, endpoint.headers);
      const method = request.stream ? 'streamRawPredict' : 'rawPredict';
      return { url: `${endpoint.baseURL}/${request.model}:${method}`, headers, body: JSON.stringify(body) };
    }
    headers['anthropic-version'] = ANTHROPIC_VERSION;
    if (endpoint.apiKey) headers['x-api-key'] = endpoint.apiKey;
    Object.assign(headers, endpoint.headers);
    return { url: `${endpoint.baseURL}/v1/messages`, headers, body: JSON.stringify(body) };
  },

  createStreamReader(endpoint: Endpoint): StreamReader {
    return new AnthropicStreamReader(endpoint.provider);
  },

  parseResponse(body: unknown): ProtocolEvent[] {
    const message = body as WireError & WireMessageBody;
    if (message.type === 'error') throw errorFromBody(message, 'anthropic');
    const out: ProtocolEvent[] = [];
    new AnthropicStreamReader('anthropic').readWhole(message, out);
    return out;
  },

  parseErrorBody(text: string) {
    try {
      const parsed = JSON.parse(text) as WireError & { message?: string };
      if (parsed.error?.message) return { message: parsed.error.message, code: parsed.error.type };
      if (parsed.message) return { message: parsed.message };
    } catch {
      // not JSON: the raw text is the message
    }
    return { message: text.slice(0, 500) };
  },
};
