/**
 * OpenAI Chat Completions, server half: reads `POST /v1/chat/completions` bodies into the
 * canonical request (canonical messages already have this shape, so they are validated and
 * copied), and writes canonical events back as a `chat.completion` object or as
 * `chat.completion.chunk` SSE frames ending in `data: [DONE]`. Errors use OpenAI's
 * `{ error: { message, type, param, code } }`; an error mid-stream is one such frame.
 */
import type { SwitchboardError } from '../errors.js';
import type { AssistantMessage, ContentPart, FinishReason, Message, ProtocolEvent, RequestParams, TokenUsage, ToolCall, ToolDefinition } from '../types.js';
import { writeTimings } from './timings.js';
import { WireRequestError, type ListedModel, type ProtocolServer, type ResponseMeta, type ServerRequest, type StreamEnd, type StreamWriter } from './protocol.js';
import { asRecord, collectEvents, errorMessage, errorStatus, openAITypeMessage, readStreamFlag, retryHeaders, unknownField, wrongType, type CollectedResponse, type FieldTypes, type JsonType } from './server-common.js';

function invalid(message: string, param?: string): WireRequestError {
  return new WireRequestError(400, 'invalid_request_error', message, param);
}

/**
 * Request fields OpenAI's Chat Completions accepts, plus OpenRouter's `reasoning`, `plugins`
 * and `usage` (read here, and sent by the library's own client half). Anything else is
 * refused as OpenAI refuses it. Of the known fields, those in REFUSED are refused with the
 * reason; the rest not read here (penalties, `logit_bias`, `user`, `metadata`, `store`,
 * `service_tier`, `parallel_tool_calls`, `prediction`, `prompt_cache_key`, `verbosity`, ...)
 * only tune or label a request and are accepted and ignored.
 */
const REQUEST_FIELDS: ReadonlySet<string> = new Set([
  'model', 'messages', 'stream', 'stream_options', 'n', 'temperature', 'top_p', 'max_tokens', 'max_completion_tokens', 'stop', 'seed',
  'response_format', 'tools', 'tool_choice', 'reasoning_effort', 'web_search_options',
  'frequency_penalty', 'presence_penalty', 'logit_bias', 'logprobs', 'top_logprobs', 'user', 'metadata', 'store', 'service_tier',
  'parallel_tool_calls', 'prediction', 'prompt_cache_key', 'prompt_cache_retention', 'safety_identifier', 'verbosity',
  'modalities', 'audio', 'functions', 'function_call',
  'reasoning', 'plugins', 'usage',
]);
const MESSAGE_FIELDS: ReadonlySet<string> = new Set(['role', 'content', 'name', 'tool_calls', 'tool_call_id', 'refusal', 'reasoning', 'reasoning_details']);
/** Content part fields (`cache_control` is OpenRouter's prompt-cache marker). */
const PART_FIELDS: ReadonlySet<string> = new Set(['type', 'text', 'image_url', 'file', 'input_audio', 'cache_control']);
const TOOL_FIELDS: ReadonlySet<string> = new Set(['type', 'function']);
const FUNCTION_FIELDS: ReadonlySet<string> = new Set(['name', 'description', 'parameters', 'strict']);

/** Known fields the gateway cannot honour: refused when set, so a client never gets less than it asked for silently. */
const REFUSED: ReadonlyMap<string, { on: (value: unknown) => boolean; reason: string }> = new Map([
  ['logprobs', { on: (v: unknown) => v === true, reason: 'logprobs are not supported by this server; remove logprobs' }],
  ['top_logprobs', { on: (v: unknown) => v !== null, reason: 'logprobs are not supported by this server; remove top_logprobs' }],
  ['audio', { on: (v: unknown) => v !== null, reason: 'audio output is not supported by this server; remove audio' }],
  ['modalities', { on: (v: unknown) => Array.isArray(v) && v.some((m) => m !== 'text'), reason: 'only text output is supported by this server; remove modalities' }],
  ['functions', { on: (v: unknown) => v !== null, reason: 'functions is deprecated and not supported; send tools instead' }],
  ['function_call', { on: (v: unknown) => v !== null, reason: 'function_call is deprecated and not supported; send tool_choice instead' }],
]);

/** The JSON types of the top-level fields (null reads as absent); a field of another type is refused, not quietly ignored. */
const FIELD_TYPES: FieldTypes = new Map<string, readonly JsonType[]>([
  ...(['response_format', 'stream_options', 'logit_bias', 'metadata', 'web_search_options', 'prediction', 'reasoning'] as const).map((f) => [f, ['object']] as const),
  ...(['user', 'service_tier', 'prompt_cache_key', 'prompt_cache_retention', 'safety_identifier', 'verbosity', 'reasoning_effort'] as const).map((f) => [f, ['string']] as const),
  ...(['store', 'parallel_tool_calls'] as const).map((f) => [f, ['boolean']] as const),
  ...(['frequency_penalty', 'presence_penalty', 'n'] as const).map((f) => [f, ['number']] as const),
  ['tools', ['array']],
  ['plugins', ['array']],
  ['tool_choice', ['string', 'object']],
]);

/** The top level of a body in one pass over its keys: unknown fields, fields of the wrong JSON type, and the REFUSED ones that are set. */
function refuseTopLevel(record: Record<string, unknown>): void {
  for (const key in record) {
    if (!REQUEST_FIELDS.has(key)) throw invalid(`Unrecognized request argument supplied: ${key}`);
    const value = record[key];
    const expected = wrongType(FIELD_TYPES, key, value);
    if (expected) throw invalid(openAITypeMessage(key, expected, value), key);
    const refused = REFUSED.get(key);
    if (refused && value !== undefined && refused.on(value)) throw invalid(refused.reason, key);
  }
}

/** OpenAI's refusal of a property it does not know inside `where` (`messages[0]`, named `messages.0` as OpenAI does). */
function refuseExtra(record: Record<string, unknown>, known: ReadonlySet<string>, where: string): void {
  const extra = unknownField(record, known);
  if (extra !== undefined) throw invalid(`Additional properties are not allowed ('${extra}' was unexpected) - '${where.replace(/\[(\d+)\]/g, '.$1')}'`);
}

function readPart(raw: unknown, where: string): ContentPart {
  const part = asRecord(raw);
  if (part) refuseExtra(part, PART_FIELDS, where);
  switch (part?.type) {
    case 'text':
      if (typeof part.text !== 'string') throw invalid(`${where}.text must be a string`, where);
      return { type: 'text', text: part.text };
    case 'image_url': {
      const image = asRecord(part.image_url);
      if (typeof image?.url !== 'string') throw invalid(`${where}.image_url.url is required`, where);
      const out: ContentPart = { type: 'image_url', image_url: { url: image.url } };
      if (image.detail === 'auto' || image.detail === 'low' || image.detail === 'high') out.image_url.detail = image.detail;
      return out;
    }
    case 'file': {
      const file = asRecord(part.file);
      if (typeof file?.file_data !== 'string') throw invalid(`${where}.file.file_data is required (uploaded file ids are not supported)`, where);
      const out: ContentPart = { type: 'file', file: { file_data: file.file_data } };
      if (typeof file.filename === 'string') out.file.filename = file.filename;
      return out;
    }
    case 'input_audio': {
      const audio = asRecord(part.input_audio);
      if (typeof audio?.data !== 'string' || typeof audio.format !== 'string') throw invalid(`${where}.input_audio needs data and format`, where);
      return { type: 'input_audio', input_audio: { data: audio.data, format: audio.format } };
    }
    default:
      throw invalid(`${where}.type: unsupported content part type ${JSON.stringify(part?.type)}; expected text, image_url, file or input_audio`, where);
  }
}

/** System and tool content may be parts too; their text is what counts. */
function readText(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (!Array.isArray(content)) throw invalid(`${where}.content must be a string or an array of content parts`, `${where}.content`);
  return content.map((p, i) => {
    const part = readPart(p, `${where}.content[${i}]`);
    if (part.type !== 'text') throw invalid(`${where}.content[${i}]: only text parts are allowed here`, `${where}.content`);
    return part.text;
  }).join('');
}

function readToolCalls(value: unknown, where: string): ToolCall[] {
  if (!Array.isArray(value)) throw invalid(`${where}.tool_calls must be an array`, `${where}.tool_calls`);
  return value.map((raw, i) => {
    const call = asRecord(raw);
    const fn = asRecord(call?.function);
    if (typeof call?.id !== 'string' || typeof fn?.name !== 'string' || typeof fn.arguments !== 'string') {
      throw invalid(`${where}.tool_calls[${i}] needs id, function.name and function.arguments (a string)`, `${where}.tool_calls`);
    }
    return { id: call.id, type: 'function', function: { name: fn.name, arguments: fn.arguments } };
  });
}

function readMessage(raw: unknown, i: number): Message {
  const where = `messages[${i}]`;
  const message = asRecord(raw);
  if (message) refuseExtra(message, MESSAGE_FIELDS, where);
  switch (message?.role) {
    case 'system':
    case 'developer':
      return { role: 'system', content: readText(message.content, where) };
    case 'user': {
      const content = message.content;
      if (typeof content === 'string') return { role: 'user', content };
      if (!Array.isArray(content)) throw invalid(`${where}.content must be a string or an array of content parts`, `${where}.content`);
      return { role: 'user', content: content.map((p, j) => readPart(p, `${where}.content[${j}]`)) };
    }
    case 'assistant': {
      const out: AssistantMessage = { role: 'assistant', content: message.content === null || message.content === undefined ? null : readText(message.content, where) };
      if (message.tool_calls !== undefined && message.tool_calls !== null) {
        const calls = readToolCalls(message.tool_calls, where);
        if (calls.length > 0) out.tool_calls = calls;
      }
      return out;
    }
    case 'tool':
      if (typeof message.tool_call_id !== 'string') throw invalid(`${where}.tool_call_id is required for a tool message`, `${where}.tool_call_id`);
      return { role: 'tool', tool_call_id: message.tool_call_id, content: readText(message.content, where) };
    default:
      throw invalid(`${where}.role must be one of system, developer, user, assistant, tool (got ${JSON.stringify(message?.role)})`, `${where}.role`);
  }
}

function readTools(value: unknown): ToolDefinition[] {
  if (!Array.isArray(value)) throw invalid('tools must be an array', 'tools');
  return value.map((raw, i) => {
    const tool = asRecord(raw);
    const fn = asRecord(tool?.function);
    if (tool?.type !== 'function' || typeof fn?.name !== 'string') throw invalid(`tools[${i}] must be { type: "function", function: { name, parameters } }`, `tools[${i}]`);
    refuseExtra(tool, TOOL_FIELDS, `tools[${i}]`);
    refuseExtra(fn, FUNCTION_FIELDS, `tools[${i}].function`);
    const out: ToolDefinition = { name: fn.name, parameters: asRecord(fn.parameters) ?? { type: 'object', properties: {} } };
    if (typeof fn.description === 'string') out.description = fn.description;
    return out;
  });
}

function readNumber(record: Record<string, unknown>, field: string, min: number, max: number, integer = false): number | undefined {
  const value = record[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw invalid(`${field} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${JSON.stringify(value)})`, field);
  }
  return value;
}

/** Request parameters shared by Chat Completions bodies (the Responses API reads its own). */
function readParams(record: Record<string, unknown>): RequestParams {
  const params: RequestParams = {};
  const temperature = readNumber(record, 'temperature', 0, 2);
  if (temperature !== undefined) params.temperature = temperature;
  const topP = readNumber(record, 'top_p', 0, 1);
  if (topP !== undefined) params.topP = topP;
  const maxField = record.max_completion_tokens !== undefined && record.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = readNumber(record, maxField, 1, Number.MAX_SAFE_INTEGER, true);
  if (maxTokens !== undefined) params.maxTokens = maxTokens;
  const stop = record.stop;
  if (typeof stop === 'string') params.stop = stop;
  else if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) {
    if (stop.length > 4) throw invalid('stop takes at most 4 sequences', 'stop');
    params.stop = stop as string[];
  } else if (stop !== undefined && stop !== null) throw invalid('stop must be a string or an array of strings', 'stop');
  const seed = readNumber(record, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true);
  if (seed !== undefined) params.seed = seed;
  const format = asRecord(record.response_format);
  if (format && format.type !== 'text') {
    if (format.type === 'json_schema' && !asRecord(asRecord(format.json_schema)?.schema)) throw invalid('response_format.json_schema.schema is required', 'response_format');
    if (format.type !== 'json_object' && format.type !== 'json_schema') throw invalid(`response_format.type must be text, json_object or json_schema`, 'response_format.type');
    params.responseFormat = format;
  }
  if (record.tools !== undefined && record.tools !== null) {
    const tools = readTools(record.tools);
    if (tools.length > 0) params.tools = tools;
  }
  const choice = record.tool_choice;
  if (choice === 'auto' || choice === 'none' || choice === 'required') params.toolChoice = choice;
  else if (choice !== undefined && choice !== null) {
    const name = asRecord(asRecord(choice)?.function)?.name;
    if (typeof name !== 'string') throw invalid('tool_choice must be auto, none, required or { type: "function", function: { name } }', 'tool_choice');
    params.toolChoice = { name };
  }
  const effort = record.reasoning_effort ?? asRecord(record.reasoning)?.effort;
  const budget = asRecord(record.reasoning)?.max_tokens;
  if (effort !== undefined || budget !== undefined) {
    const reasoning: NonNullable<RequestParams['reasoning']> = {};
    if (effort === 'low' || effort === 'medium' || effort === 'high') reasoning.effort = effort;
    if (typeof budget === 'number') reasoning.maxTokens = budget;
    params.reasoning = reasoning;
  }
  if (record.web_search_options !== undefined && record.web_search_options !== null) params.webSearch = true;
  const web = Array.isArray(record.plugins) ? record.plugins.map(asRecord).find((p) => p?.id === 'web') : undefined;
  if (web) {
    const search: { maxResults?: number; engine?: string } = {};
    if (typeof web.max_results === 'number') search.maxResults = web.max_results;
    if (typeof web.engine === 'string') search.engine = web.engine;
    params.webSearch = Object.keys(search).length > 0 ? search : true;
  }
  return params;
}

function parseRequest(body: unknown): ServerRequest {
  const record = asRecord(body);
  if (!record) throw invalid('The request body must be a JSON object.');
  refuseTopLevel(record);
  if (typeof record.model !== 'string' || record.model === '') throw invalid('you must provide a model parameter', 'model');
  if (!Array.isArray(record.messages) || record.messages.length === 0) throw invalid("'messages' must be a non-empty array", 'messages');
  const stream = readStreamFlag(record, (got) => invalid(`Invalid type for 'stream': expected a boolean, but got ${got} instead.`, 'stream'));
  const out: ServerRequest = {
    model: record.model,
    stream,
    request: { model: record.model, messages: record.messages.map(readMessage), params: readParams(record), stream },
  };
  if (stream && asRecord(record.stream_options)?.include_usage === true) out.includeUsage = true;
  const n = readNumber(record, 'n', 1, 128, true);
  if (n !== undefined && n > 1) out.choices = n;
  return out;
}

const FINISH: Record<FinishReason, string> = {
  stop: 'stop',
  length: 'length',
  'tool-calls': 'tool_calls',
  'content-filter': 'content_filter',
  error: 'error',
  other: 'stop',
};

/** Usage as OpenAI writes it: every documented detail field present, OpenRouter's `cost` beside them when known. */
export function openaiUsage(usage: TokenUsage | undefined, cost?: number | null): Record<string, unknown> {
  const u = usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
  const prompt: Record<string, number> = { cached_tokens: u.cachedTokens ?? 0, audio_tokens: 0 };
  if (u.cacheWriteTokens !== undefined) prompt.cache_write_tokens = u.cacheWriteTokens;
  const out: Record<string, unknown> = {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.totalTokens,
    prompt_tokens_details: prompt,
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
  if (typeof cost === 'number') out.cost = cost;
  return out;
}

const ERROR_TYPES: Record<number, { type: string; code: string | null }> = {
  400: { type: 'invalid_request_error', code: null },
  401: { type: 'invalid_request_error', code: 'invalid_api_key' },
  403: { type: 'permission_error', code: 'unsupported_country_region_territory' },
  404: { type: 'invalid_request_error', code: 'model_not_found' },
  429: { type: 'requests', code: 'rate_limit_exceeded' },
  500: { type: 'server_error', code: null },
  503: { type: 'server_error', code: 'service_unavailable' },
};

/** OpenAI's error object for a typed error. */
export function openaiErrorObject(error: SwitchboardError | WireRequestError, status: number): Record<string, unknown> {
  const fallback = ERROR_TYPES[status] ?? ERROR_TYPES[status >= 500 ? 500 : 400] ?? { type: 'server_error', code: null };
  if (error instanceof WireRequestError) return { message: error.message, type: error.type, param: error.param ?? null, code: error.code ?? fallback.code };
  // A refusal that names its own OpenAI type (a spent budget is `insufficient_quota`, as OpenAI's own).
  const wireType = (error as { wireType?: unknown }).wireType;
  if (typeof wireType === 'string') return { message: errorMessage(error), type: wireType, param: null, code: wireType };
  return { message: errorMessage(error), type: fallback.type, param: null, code: fallback.code };
}

class ChatCompletionsWriter implements StreamWriter {
  readonly contentType = 'text/event-stream; charset=utf-8';
  /** Every chunk starts with the same fields, serialised once. */
  private readonly prefix: string;
  /** `,"usage":null` when the final chunk will carry usage, as OpenAI marks the others. */
  private readonly usageNull: string;
  private readonly toolCalls = new Set<number>();
  /** A content chunk around its text, for the hot path. */
  private readonly textHead: string;
  private readonly textTail: string;

  constructor(private readonly meta: ResponseMeta) {
    const provider = meta.provider === undefined ? '' : `,"provider":${JSON.stringify(meta.provider)}`;
    this.prefix = `data: {"id":"chatcmpl-${meta.id}","object":"chat.completion.chunk","created":${meta.created},"model":${JSON.stringify(meta.model)}${provider},"system_fingerprint":null,"choices":[{"index":0,"delta":`;
    this.usageNull = meta.includeUsage ? ',"usage":null' : '';
    this.textHead = `${this.prefix}{"content":`;
    this.textTail = `},"logprobs":null,"finish_reason":null}]${this.usageNull}}\n\n`;
  }

  private chunk(delta: string, finish = 'null', extra = ''): string {
    return `${this.prefix}${delta},"logprobs":null,"finish_reason":${finish}}]${this.usageNull}${extra}}\n\n`;
  }

  start(): string {
    return this.chunk('{"role":"assistant","content":"","refusal":null}');
  }

  write(events: readonly ProtocolEvent[]): string {
    // The hot path: one text delta per call.
    const only = events.length === 1 ? events[0] : undefined;
    if (only?.type === 'text-delta') return this.textHead + JSON.stringify(only.text) + this.textTail;
    let frames = '';
    for (const event of events) {
      switch (event.type) {
        case 'text-delta':
          frames += this.chunk(`{"content":${JSON.stringify(event.text)}}`);
          break;
        case 'reasoning-delta':
          if (event.text !== '') frames += this.chunk(`{"reasoning":${JSON.stringify(event.text)}}`);
          break;
        case 'tool-call-delta': {
          const call: Record<string, unknown> = { index: event.index };
          if (!this.toolCalls.has(event.index)) {
            this.toolCalls.add(event.index);
            call.id = event.id ?? `call_${this.meta.id}_${event.index}`;
            call.type = 'function';
            call.function = { name: event.name ?? '', arguments: event.argumentsDelta };
          } else call.function = { arguments: event.argumentsDelta };
          frames += this.chunk(`{"tool_calls":[${JSON.stringify(call)}]}`);
          break;
        }
        case 'annotations':
          frames += this.chunk(`{"annotations":${JSON.stringify(event.annotations)}}`);
          break;
        default:
          // start, finish and usage are written by start() and end().
          break;
      }
    }
    return frames;
  }

  end(result: StreamEnd): string {
    // llama.cpp puts its `timings` on the chunk that finishes the reply.
    const timings = result.timing ? `,"timings":${JSON.stringify(writeTimings(result.timing))}` : '';
    let frames = this.chunk('{}', `"${FINISH[result.finishReason]}"`, timings);
    if (this.meta.includeUsage) {
      const provider = this.meta.provider === undefined ? '' : `,"provider":${JSON.stringify(this.meta.provider)}`;
      frames += `data: {"id":"chatcmpl-${this.meta.id}","object":"chat.completion.chunk","created":${this.meta.created},"model":${JSON.stringify(this.meta.model)}${provider},"system_fingerprint":null,"choices":[],"usage":${JSON.stringify(openaiUsage(result.usage, result.cost))}}\n\n`;
    }
    return `${frames}data: [DONE]\n\n`;
  }

  error(error: SwitchboardError | WireRequestError): string {
    return `data: ${JSON.stringify({ error: openaiErrorObject(error, errorStatus(error)) })}\n\n`;
  }

  keepAlive(): string {
    return ': keep-alive\n\n';
  }
}

/** One choice of a chat.completion. */
function chatChoice(r: CollectedResponse, index: number): Record<string, unknown> {
  const message: Record<string, unknown> = {
    role: 'assistant',
    content: r.text === '' && r.toolCalls.length > 0 ? null : r.text,
    refusal: null,
  };
  const reasoning = r.reasoning.map((d) => d.text).join('');
  if (reasoning) message.reasoning = reasoning;
  if (r.toolCalls.length > 0) message.tool_calls = r.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  message.annotations = r.annotations;
  return { index, message, logprobs: null, finish_reason: FINISH[r.finishReason] };
}

/** A whole chat.completion with one choice per collected response. */
function writeChatCompletion(choices: CollectedResponse[], meta: ResponseMeta, total: { usage?: TokenUsage | undefined; cost?: number | null | undefined }): Record<string, unknown> {
  const body: Record<string, unknown> = { id: `chatcmpl-${meta.id}`, object: 'chat.completion', created: meta.created, model: meta.model };
  if (meta.provider !== undefined) body.provider = meta.provider;
  body.system_fingerprint = null;
  body.choices = choices.map(chatChoice);
  body.usage = openaiUsage(total.usage, total.cost);
  return body;
}

export const openaiServer: ProtocolServer = {
  name: 'openai',

  parseRequest: (body) => parseRequest(body),

  createStreamWriter: (meta) => new ChatCompletionsWriter(meta),

  writeResponse(events, meta, end) {
    const r = collectEvents(events, end);
    return writeChatCompletion([r], meta, { usage: r.usage, cost: r.cost });
  },

  writeChoices(choices, meta, total) {
    return writeChatCompletion(choices.map((c) => collectEvents(c.events, c.end)), meta, total);
  },

  writeError(error) {
    const status = errorStatus(error);
    return { status, headers: retryHeaders(error), body: { error: openaiErrorObject(error, status) } };
  },

  writeModelList(models: readonly ListedModel[]) {
    return {
      object: 'list',
      data: models.map((m) => {
        const out: Record<string, unknown> = { id: m.id, object: 'model', created: m.created ?? 0, owned_by: m.ownedBy ?? 'system' };
        if (m.contextLength !== undefined) out.context_length = m.contextLength;
        // OpenRouter's convention: dollars per token, as strings.
        if (m.pricing) out.pricing = { prompt: String(m.pricing.input / 1e6), completion: String(m.pricing.output / 1e6) };
        return out;
      }),
    };
  },
};
