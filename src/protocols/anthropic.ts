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
import type { CanonicalRequest, ContentPart, FinishReason, Message, ProtocolEvent, ReasoningDetail, TokenUsage } from '../types.js';
import { EFFORT_BUDGETS, mediaTypeFromURL, parseDataURI, parseToolArguments } from './media.js';
import type { Endpoint, Protocol, SSEMessage, StreamReader, WireRequest } from './protocol.js';
import { addAnthropicBreakpoints } from './prompt-cache.js';

export const ANTHROPIC_VERSION = '2023-06-01';
/** `max_tokens` when the caller sets none (the API requires one). */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

export interface AnthropicUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  /** The cache writes split by lifetime. */
  cache_creation?: { ephemeral_5m_input_tokens?: number; ephemeral_1h_input_tokens?: number } | null;
}

type Block = Record<string, unknown> & { type: string };
type ReplayedAssistant = Message & { reasoning_details?: ReasoningDetail[] };

/** The forced tool whose input carries a structured reply; its input is streamed as the reply text. */
export const OUTPUT_TOOL = 'switchboard_output';
interface WireMessage {
  role: 'user' | 'assistant';
  content: Block[];
}

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
  const cacheWrite = usage.cache_creation_input_tokens ?? undefined;
  const cacheRead = usage.cache_read_input_tokens ?? undefined;
  const prompt = (usage.input_tokens ?? 0) + (cacheWrite ?? 0) + (cacheRead ?? 0);
  const completion = usage.output_tokens ?? 0;
  const out: TokenUsage = { promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion };
  if (cacheRead !== undefined) out.cachedTokens = cacheRead;
  if (cacheWrite !== undefined) out.cacheWriteTokens = cacheWrite;
  const hourWrites = usage.cache_creation?.ephemeral_1h_input_tokens;
  if (hourWrites) out.cacheWrite1hTokens = hourWrites;
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

/** Canonical messages to Anthropic's `system` and alternating `messages`. */
export function toAnthropicMessages(messages: Message[]): { system: string | undefined; messages: WireMessage[] } {
  const system: string[] = [];
  const out: WireMessage[] = [];
  const push = (role: WireMessage['role'], blocks: Block[]): void => {
    if (blocks.length === 0) return;
    const last = out[out.length - 1];
    if (last && last.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  };
  for (const message of messages) {
    switch (message.role) {
      case 'system':
        if (message.content) system.push(message.content);
        break;
      case 'user':
        push(
          'user',
          typeof message.content === 'string'
            ? message.content === '' ? [] : [{ type: 'text', text: message.content }]
            : message.content.filter((p) => p.type !== 'text' || p.text !== '').map(partToBlock),
        );
        break;
      case 'assistant': {
        const blocks: Block[] = [];
        // Within a tool loop, thinking blocks come back with their signatures (Anthropic requires
        // them before tool_use when thinking is on). Plain histories carry none.
        for (const detail of (message as ReplayedAssistant).reasoning_details ?? []) {
          if (detail.signature) blocks.push({ type: 'thinking', thinking: detail.text, signature: detail.signature });
        }
        if (message.content) blocks.push({ type: 'text', text: message.content });
        for (const call of message.tool_calls ?? []) {
          blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input: parseToolArguments(call.function.arguments) });
        }
        push('assistant', blocks);
        break;
      }
      case 'tool':
        push('user', [{ type: 'tool_result', tool_use_id: message.tool_call_id, content: message.content }]);
        break;
    }
  }
  return { system: system.length > 0 ? system.join('\n\n') : undefined, messages: out };
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

export function buildAnthropicBody(request: CanonicalRequest): Record<string, unknown> {
  const { params } = request;
  const { system, messages } = toAnthropicMessages(request.messages);
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
  addAnthropicBreakpoints(body as Parameters<typeof addAnthropicBreakpoints>[0], params);
  if (params.extraBody) Object.assign(body, params.extraBody);
  return body;
}

class AnthropicStreamReader implements StreamReader {
  done = false;
  private usage: AnthropicUsage = {};
  /** Content block index to tool-call index (tool calls are numbered 0, 1, ... in order). */
  private readonly toolIndex = new Map<number, number>();
  /** Content blocks of the structured-output tool: their JSON is the reply text. */
  private readonly outputBlocks = new Set<number>();
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
      case 'message_start': {
        const msg = (event.message ?? {}) as { id?: string; model?: string; usage?: AnthropicUsage };
        if (msg.usage) this.usage = { ...msg.usage };
        out.push({ type: 'start', model: msg.model, id: msg.id });
        break;
      }
      case 'content_block_start': {
        const index = event.index as number;
        const block = (event.content_block ?? {}) as WireContentBlock;
        if (block.type === 'tool_use' && block.name === OUTPUT_TOOL) {
          this.outputBlocks.add(index);
        } else if (block.type === 'tool_use') {
          const toolIndex = this.toolIndex.size;
          this.toolIndex.set(index, toolIndex);
          out.push({ type: 'tool-call-delta', index: toolIndex, id: block.id, name: block.name, argumentsDelta: '' });
        } else if (block.type === 'text' && block.text) {
          out.push({ type: 'text-delta', text: block.text });
        } else if (block.type === 'thinking' && block.thinking) {
          out.push({ type: 'reasoning-delta', text: block.thinking });
        }
        break;
      }
      case 'content_block_delta': {
        const delta = (event.delta ?? {}) as { type?: string; text?: string; partial_json?: string; thinking?: string; signature?: string; citation?: WireCitation };
        if (delta.type === 'text_delta' && delta.text) out.push({ type: 'text-delta', text: delta.text });
        else if (delta.type === 'input_json_delta' && this.outputBlocks.has(event.index as number)) {
          if (delta.partial_json) out.push({ type: 'text-delta', text: delta.partial_json });
        } else if (delta.type === 'citations_delta' && delta.citation) {
          const citation = webCitation(delta.citation);
          if (citation) out.push({ type: 'annotations', annotations: [citation] });
        } else if (delta.type === 'input_json_delta') {
          const toolIndex = this.toolIndex.get(event.index as number) ?? 0;
          if (delta.partial_json) out.push({ type: 'tool-call-delta', index: toolIndex, argumentsDelta: delta.partial_json });
        } else if (delta.type === 'thinking_delta' && delta.thinking) out.push({ type: 'reasoning-delta', text: delta.thinking });
        else if (delta.type === 'signature_delta' && delta.signature) out.push({ type: 'reasoning-delta', text: '', signature: delta.signature });
        break;
      }
      case 'message_delta': {
        const delta = (event.delta ?? {}) as { stop_reason?: string | null };
        const usage = event.usage as AnthropicUsage | undefined;
        // message_delta usage is cumulative; newer API versions repeat the input counts here.
        if (usage) {
          for (const [key, value] of Object.entries(usage)) {
            if (typeof value === 'number') this.usage[key as keyof AnthropicUsage] = value;
          }
        }
        if (delta.stop_reason) {
          // A forced structured-output tool is the answer, not a call to run.
          const reason = delta.stop_reason === 'tool_use' && this.toolIndex.size === 0 && this.outputBlocks.size > 0 ? 'stop' : mapAnthropicFinish(delta.stop_reason);
          out.push({ type: 'finish', reason, rawReason: delta.stop_reason });
        }
        break;
      }
      case 'message_stop':
        out.push({ type: 'usage', usage: readAnthropicUsage(this.usage), raw: this.usage });
        this.done = true;
        break;
      case 'error':
        throw errorFromBody(event as WireError, this.provider);
      default:
        // ping, content_block_stop and event types added later carry nothing we need.
        break;
    }
  }
}

export const anthropicProtocol: Protocol = {
  name: 'anthropic',

  buildRequest(request: CanonicalRequest, endpoint: Endpoint): WireRequest {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: request.stream ? 'text/event-stream' : 'application/json',
      'anthropic-version': ANTHROPIC_VERSION,
    };
    if (endpoint.apiKey) headers['x-api-key'] = endpoint.apiKey;
    Object.assign(headers, endpoint.headers);
    return { url: `${endpoint.baseURL}/v1/messages`, headers, body: JSON.stringify(buildAnthropicBody(request)) };
  },

  createStreamReader(endpoint: Endpoint): StreamReader {
    return new AnthropicStreamReader(endpoint.provider);
  },

  parseResponse(body: unknown): ProtocolEvent[] {
    const message = body as WireError & {
      id?: string;
      model?: string;
      content?: WireContentBlock[];
      stop_reason?: string | null;
      usage?: AnthropicUsage;
    };
    if (message.type === 'error') throw errorFromBody(message, 'anthropic');
    const out: ProtocolEvent[] = [{ type: 'start', model: message.model, id: message.id }];
    let toolIndex = 0;
    for (const block of message.content ?? []) {
      if (block.type === 'text' && block.text) {
        out.push({ type: 'text-delta', text: block.text });
        const citations = (block.citations ?? []).map(webCitation).filter((c) => c !== undefined);
        if (citations.length > 0) out.push({ type: 'annotations', annotations: citations });
      } else if (block.type === 'tool_use' && block.name === OUTPUT_TOOL) {
        out.push({ type: 'text-delta', text: JSON.stringify(block.input ?? {}) });
      } else if (block.type === 'thinking') {
        const event: ProtocolEvent = { type: 'reasoning-delta', text: block.thinking ?? '' };
        if (block.signature) event.signature = block.signature;
        out.push(event);
      } else if (block.type === 'tool_use') {
        out.push({ type: 'tool-call-delta', index: toolIndex++, id: block.id, name: block.name, argumentsDelta: JSON.stringify(block.input ?? {}) });
      }
    }
    if (message.stop_reason) {
      const onlyOutput = toolIndex === 0 && (message.content ?? []).some((b) => b.type === 'tool_use' && b.name === OUTPUT_TOOL);
      out.push({ type: 'finish', reason: message.stop_reason === 'tool_use' && onlyOutput ? 'stop' : mapAnthropicFinish(message.stop_reason), rawReason: message.stop_reason });
    }
    if (message.usage) out.push({ type: 'usage', usage: readAnthropicUsage(message.usage), raw: message.usage });
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
