/**
 * OpenAI Responses API, server half: reads `POST /v1/responses` bodies (a string or input
 * items; `instructions`; function tools; `text.format`; `reasoning`) into the canonical
 * request, and writes canonical events back as a `response` object or as its typed stream
 * events, each with a `sequence_number`: response.created, response.in_progress, output items
 * with their parts and deltas, then response.completed (or response.incomplete at the token
 * cap). An error mid-stream is an `error` event followed by response.failed.
 *
 * `previous_response_id` is passed on in ServerRequest.previousResponseId: only whoever keeps
 * earlier responses (the simulator does, in memory) can resolve it.
 */
import type { SwitchboardError } from '../errors.js';
import type { ContentPart, FinishReason, Message, ProtocolEvent, RequestParams, TokenUsage, ToolDefinition } from '../types.js';
import { openaiErrorObject, openaiServer } from './openai-server.js';
import { WireRequestError, type ProtocolServer, type ResponseMeta, type ServerRequest, type StreamEnd, type StreamWriter } from './protocol.js';
import { asRecord, collectEvents, errorStatus, openAITypeMessage, readStreamFlag, unknownField, wrongType, type FieldTypes, type JsonType } from './server-common.js';

function invalid(message: string, param?: string): WireRequestError {
  return new WireRequestError(400, 'invalid_request_error', message, param);
}

/**
 * Request fields the Responses API accepts; anything else is refused as OpenAI refuses it
 * (`Unknown parameter: 'foo'.`, code `unknown_parameter`). Of these, `conversation`,
 * `background: true` and `prompt` (stored prompt templates) need state this server does not
 * keep and are refused; `include`, `metadata`, `store`, `truncation`, `service_tier`,
 * `parallel_tool_calls`, `max_tool_calls`, `user` and the cache and safety labels are
 * accepted and ignored.
 */
const REQUEST_FIELDS: ReadonlySet<string> = new Set([
  'model', 'input', 'instructions', 'stream', 'stream_options', 'temperature', 'top_p', 'max_output_tokens', 'tools', 'tool_choice', 'text',
  'reasoning', 'previous_response_id', 'store', 'include', 'metadata', 'parallel_tool_calls', 'max_tool_calls', 'service_tier', 'truncation',
  'user', 'prompt_cache_key', 'prompt_cache_retention', 'safety_identifier', 'top_logprobs', 'background', 'conversation', 'prompt',
]);
/** Fields of the input items read here (other item types pass as they are). */
const ITEM_FIELDS: ReadonlyMap<unknown, ReadonlySet<string>> = new Map([
  ['message', new Set(['type', 'role', 'content', 'id', 'status'])],
  ['function_call', new Set(['type', 'id', 'call_id', 'name', 'arguments', 'status'])],
  ['function_call_output', new Set(['type', 'id', 'call_id', 'output', 'status'])],
]);
const PART_FIELDS: ReadonlySet<string> = new Set(['type', 'text', 'annotations', 'logprobs', 'image_url', 'file_id', 'detail', 'file_data', 'file_url', 'filename']);
const FUNCTION_TOOL_FIELDS: ReadonlySet<string> = new Set(['type', 'name', 'description', 'parameters', 'strict']);

/** The JSON types of the top-level fields (null reads as absent); a field of another type is refused, not quietly ignored. */
const FIELD_TYPES: FieldTypes = new Map<string, readonly JsonType[]>([
  ...(['text', 'reasoning', 'metadata', 'stream_options'] as const).map((f) => [f, ['object']] as const),
  ...(['instructions', 'previous_response_id', 'service_tier', 'truncation', 'user', 'prompt_cache_key', 'prompt_cache_retention', 'safety_identifier'] as const).map((f) => [f, ['string']] as const),
  ...(['store', 'parallel_tool_calls', 'background'] as const).map((f) => [f, ['boolean']] as const),
  ...(['max_tool_calls', 'top_logprobs'] as const).map((f) => [f, ['number']] as const),
  ['include', ['array']],
  ['tools', ['array']],
  ['input', ['string', 'array']],
  ['tool_choice', ['string', 'object']],
]);

/** The top level of a body in one pass over its keys: unknown fields and fields of the wrong JSON type. */
function refuseTopLevel(record: Record<string, unknown>): void {
  refuseExtra(record, REQUEST_FIELDS);
  for (const key in record) {
    const expected = wrongType(FIELD_TYPES, key, record[key]);
    if (expected) throw invalid(openAITypeMessage(key, expected, record[key]), key);
  }
}

/** OpenAI's refusal of a parameter it does not know, `where` being its path (`input[1].metadata`). */
function refuseExtra(record: Record<string, unknown>, known: ReadonlySet<string>, where?: string): void {
  const extra = unknownField(record, known);
  if (extra === undefined) return;
  const param = where === undefined ? extra : `${where}.${extra}`;
  throw new WireRequestError(400, 'invalid_request_error', `Unknown parameter: '${param}'.`, param, 'unknown_parameter');
}

/** What a stateless server says to a request that leans on stored state. */
export function statelessRefusal(param: string, what = param): WireRequestError {
  return invalid(`${what} needs responses stored on the server, which this server does not keep; send the whole conversation in input instead (and store: false).`, param);
}

function inputPart(raw: unknown, where: string): ContentPart {
  const part = asRecord(raw);
  if (part) refuseExtra(part, PART_FIELDS, where);
  switch (part?.type) {
    case 'input_text':
    case 'output_text':
      if (typeof part.text !== 'string') throw invalid(`${where}.text must be a string`, where);
      return { type: 'text', text: part.text };
    case 'input_image': {
      const url = typeof part.image_url === 'string' ? part.image_url : undefined;
      if (!url) throw invalid(`${where}.image_url is required (uploaded file ids are not supported)`, where);
      const out: ContentPart = { type: 'image_url', image_url: { url } };
      if (part.detail === 'low' || part.detail === 'high' || part.detail === 'auto') out.image_url.detail = part.detail;
      return out;
    }
    case 'input_file': {
      const data = typeof part.file_data === 'string' ? part.file_data : typeof part.file_url === 'string' ? part.file_url : undefined;
      if (!data) throw invalid(`${where} needs file_data or file_url (uploaded file ids are not supported)`, where);
      const out: ContentPart = { type: 'file', file: { file_data: data } };
      if (typeof part.filename === 'string') out.file.filename = part.filename;
      return out;
    }
    default:
      throw invalid(`${where}.type: unsupported content type ${JSON.stringify(part?.type)}; expected input_text, input_image or input_file`, where);
  }
}

function messageText(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalid(`${where}.content must be a string or a list of content parts`, where);
  return content.map((p, i) => {
    const part = inputPart(p, `${where}.content[${i}]`);
    if (part.type !== 'text') throw invalid(`${where}.content[${i}]: only text here`, where);
    return part.text;
  }).join('');
}

/** Input items into canonical messages; consecutive function calls join one assistant message. */
function readInput(input: unknown): Message[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  if (!Array.isArray(input) || input.length === 0) throw invalid("'input' must be a string or a non-empty list of input items", 'input');
  const messages: Message[] = [];
  input.forEach((raw, i) => {
    const item = asRecord(raw);
    const where = `input[${i}]`;
    const type = item?.type ?? 'message';
    const known = ITEM_FIELDS.get(type);
    if (item && known) refuseExtra(item, known, where);
    if (type === 'message') {
      const role = item?.role;
      if (role === 'system' || role === 'developer') messages.push({ role: 'system', content: messageText(item?.content, where) });
      else if (role === 'user') {
        const content = item?.content;
        if (typeof content === 'string') messages.push({ role: 'user', content });
        else if (Array.isArray(content)) {
          const parts = content.map((p, j) => inputPart(p, `${where}.content[${j}]`));
          const only = parts[0];
          messages.push({ role: 'user', content: parts.length === 1 && only?.type === 'text' ? only.text : parts });
        } else throw invalid(`${where}.content must be a string or a list of content parts`, `${where}.content`);
      } else if (role === 'assistant') messages.push({ role: 'assistant', content: messageText(item?.content, where) });
      else throw invalid(`${where}.role must be one of user, assistant, system, developer`, `${where}.role`);
    } else if (type === 'function_call') {
      if (typeof item?.call_id !== 'string' || typeof item.name !== 'string' || typeof item.arguments !== 'string') throw invalid(`${where}: a function_call needs call_id, name and arguments`, where);
      const call = { id: item.call_id, type: 'function' as const, function: { name: item.name, arguments: item.arguments } };
      const last = messages[messages.length - 1];
      if (last?.role === 'assistant') (last.tool_calls ??= []).push(call);
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (type === 'function_call_output') {
      if (typeof item?.call_id !== 'string') throw invalid(`${where}.call_id is required`, where);
      const output = typeof item.output === 'string' ? item.output : JSON.stringify(item.output ?? '');
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: output });
    } else if (type === 'item_reference') {
      // A reference names an item stored on the server; dropping it would lose that turn unseen.
      throw statelessRefusal(where, `${where} (an item_reference)`);
    } else if (type === 'reasoning') {
      // A reasoning item carries nothing a canonical history holds (its text is the model's own, encrypted or summarised).
    } else throw invalid(`${where}.type: unsupported input item type ${JSON.stringify(type)}`, where);
  });
  return messages;
}

function readTools(value: unknown, params: RequestParams): void {
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) throw invalid('tools must be a list', 'tools');
  const tools: ToolDefinition[] = [];
  value.forEach((raw, i) => {
    const tool = asRecord(raw);
    if (typeof tool?.type === 'string' && tool.type.startsWith('web_search')) {
      params.webSearch = true;
      return;
    }
    if (tool?.type !== 'function' || typeof tool.name !== 'string') throw invalid(`tools[${i}]: only function tools ({ type: "function", name, parameters }) and web_search are supported`, `tools[${i}]`);
    refuseExtra(tool, FUNCTION_TOOL_FIELDS, `tools[${i}]`);
    const out: ToolDefinition = { name: tool.name, parameters: asRecord(tool.parameters) ?? { type: 'object', properties: {} } };
    if (typeof tool.description === 'string') out.description = tool.description;
    tools.push(out);
  });
  if (tools.length > 0) params.tools = tools;
}

function parseRequest(body: unknown): ServerRequest {
  const record = asRecord(body);
  if (!record) throw invalid('The request body must be a JSON object.');
  refuseTopLevel(record);
  if (record.conversation !== undefined && record.conversation !== null) throw statelessRefusal('conversation');
  if (record.prompt !== undefined && record.prompt !== null) throw statelessRefusal('prompt');
  if (record.background === true) throw invalid('background responses are not supported by this server: it keeps no responses to poll; send the request with stream: true or wait for the answer.', 'background');
  if (typeof record.model !== 'string' || record.model === '') throw invalid('Missing required parameter: \'model\'.', 'model');
  const messages = readInput(record.input);
  if (typeof record.instructions === 'string' && record.instructions !== '') messages.unshift({ role: 'system', content: record.instructions });
  const params: RequestParams = {};
  for (const [field, key, max] of [['temperature', 'temperature', 2], ['top_p', 'topP', 1]] as const) {
    const value = record[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || value < 0 || value > max) throw invalid(`${field} must be a number from 0 to ${max}`, field);
    params[key] = value;
  }
  const max = record.max_output_tokens;
  if (max !== undefined && max !== null) {
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 16) throw invalid('max_output_tokens must be an integer of at least 16', 'max_output_tokens');
    params.maxTokens = max;
  }
  readTools(record.tools, params);
  const choice = record.tool_choice;
  if (choice === 'auto' || choice === 'none' || choice === 'required') params.toolChoice = choice;
  else if (typeof choice === 'string') throw invalid(`Invalid value: '${choice}'. Supported values are: 'none', 'auto', and 'required'.`, 'tool_choice');
  else if (choice !== undefined && choice !== null) {
    const named = choice as Record<string, unknown>;
    if (named.type !== 'function') throw invalid(`tool_choice of type ${JSON.stringify(named.type ?? null)} is not supported by this server; name a function ({ type: 'function', name }) or send auto, none or required.`, 'tool_choice');
    if (typeof named.name !== 'string') throw invalid("Missing required parameter: 'tool_choice.name'.", 'tool_choice.name');
    params.toolChoice = { name: named.name };
  }
  const text = record.text as Record<string, unknown> | null | undefined;
  const rawFormat = text?.format;
  if (rawFormat !== undefined && rawFormat !== null && !asRecord(rawFormat)) throw invalid(openAITypeMessage('text.format', ['object'], rawFormat), 'text.format');
  const format = asRecord(rawFormat);
  if (format && format.type !== 'text' && format.type !== 'json_schema' && format.type !== 'json_object') {
    throw invalid(`Invalid value: ${JSON.stringify(format.type ?? null)}. Supported values are: 'text', 'json_schema' and 'json_object'.`, 'text.format.type');
  }
  if (format?.type === 'json_schema') {
    const schema = asRecord(format.schema);
    if (!schema) throw invalid('text.format.schema is required for json_schema', 'text.format.schema');
    const spec: Record<string, unknown> = { name: typeof format.name === 'string' ? format.name : 'response', schema };
    if (typeof format.strict === 'boolean') spec.strict = format.strict;
    params.responseFormat = { type: 'json_schema', json_schema: spec };
  } else if (format?.type === 'json_object') params.responseFormat = { type: 'json_object' };
  const reasoning = asRecord(record.reasoning);
  if (reasoning) {
    const out: NonNullable<RequestParams['reasoning']> = {};
    if (reasoning.effort === 'low' || reasoning.effort === 'medium' || reasoning.effort === 'high') out.effort = reasoning.effort;
    params.reasoning = out;
  }
  const stream = readStreamFlag(record, (got) => invalid(`Invalid type for 'stream': expected a boolean, but got ${got} instead.`, 'stream'));
  const out: ServerRequest = { model: record.model, stream, request: { model: record.model, messages, params, stream } };
  if (typeof record.previous_response_id === 'string' && record.previous_response_id !== '') out.previousResponseId = record.previous_response_id;
  return out;
}

/** Usage as the Responses API writes it. */
function responsesUsage(usage: TokenUsage | undefined): Record<string, unknown> {
  const u = usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens ?? 0 },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0 },
    total_tokens: u.totalTokens,
  };
}

/** A canonical url_citation annotation in the Responses shape. */
function responsesAnnotation(annotation: unknown): Record<string, unknown> | undefined {
  const a = asRecord(annotation);
  const c = asRecord(a?.url_citation);
  if (a?.type !== 'url_citation' || !c) return undefined;
  return { type: 'url_citation', url: c.url, title: c.title ?? '', start_index: c.start_index ?? 0, end_index: c.end_index ?? 0 };
}

type Item = Record<string, unknown> & { type: string; id: string };

/** The `response` object, at any point of its life. */
function responseObject(meta: ResponseMeta, status: string, output: Item[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: `resp_${meta.id}`,
    object: 'response',
    created_at: meta.created,
    status,
    error: null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    model: meta.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage: null,
    user: null,
    metadata: {},
    ...extra,
  };
}

/** How a response ends: its status and, when cut short, why. */
function ending(finish: FinishReason): Record<string, unknown> {
  if (finish === 'length') return { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } };
  if (finish === 'content-filter') return { status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
  return { status: 'completed' };
}

class ResponsesWriter implements StreamWriter {
  readonly contentType = 'text/event-stream; charset=utf-8';
  private sequence = 0;
  private readonly output: Item[] = [];
  /** The item being written, and for a message its text so far. */
  private open: Item | undefined;
  private text = '';
  private readonly annotations: Record<string, unknown>[] = [];
  private readonly calls = new Map<number, Item>();
  /** The text delta frame up to the delta, for the open message (the hot path). */
  private textPrefix = '';

  constructor(private readonly meta: ResponseMeta) {}

  private event(type: string, data: Record<string, unknown>): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: this.sequence++, ...data })}\n\n`;
  }

  start(): string {
    const response = responseObject(this.meta, 'in_progress', []);
    return this.event('response.created', { response }) + this.event('response.in_progress', { response });
  }

  private add(item: Item): string {
    const frames = this.close();
    this.open = item;
    this.output.push(item);
    return frames + this.event('response.output_item.added', { output_index: this.output.length - 1, item: { ...item, ...(item.type === 'message' ? { content: [] } : {}) } });
  }

  private close(): string {
    const item = this.open;
    if (!item) return '';
    this.open = undefined;
    const output_index = this.output.length - 1;
    let frames = '';
    if (item.type === 'message') {
      const part = { type: 'output_text', text: this.text, annotations: this.annotations.splice(0) };
      item.content = [part];
      frames += this.event('response.output_text.done', { item_id: item.id, output_index, content_index: 0, text: this.text, logprobs: [] });
      frames += this.event('response.content_part.done', { item_id: item.id, output_index, content_index: 0, part });
      this.text = '';
    } else if (item.type === 'reasoning') {
      const text = (item.summary as { text: string }[])[0]?.text ?? '';
      frames += this.event('response.reasoning_summary_text.done', { item_id: item.id, output_index, summary_index: 0, text });
      frames += this.event('response.reasoning_summary_part.done', { item_id: item.id, output_index, summary_index: 0, part: { type: 'summary_text', text } });
    } else if (item.type === 'function_call') {
      frames += this.event('response.function_call_arguments.done', { item_id: item.id, output_index, arguments: item.arguments });
    }
    item.status = 'completed';
    if (item.type === 'reasoning') delete item.status;
    return frames + this.event('response.output_item.done', { output_index, item });
  }

  private openMessage(): string {
    if (this.open?.type === 'message') return '';
    const id = `msg_${this.meta.id}${this.output.length}`;
    const frames = this.add({ type: 'message', id, status: 'in_progress', role: 'assistant', content: [] });
    const output_index = this.output.length - 1;
    this.textPrefix = `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":"${id}","output_index":${output_index},"content_index":0,"logprobs":[],"sequence_number":`;
    return frames + this.event('response.content_part.added', { item_id: id, output_index, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
  }

  write(events: readonly ProtocolEvent[]): string {
    let frames = '';
    for (const event of events) {
      switch (event.type) {
        case 'text-delta':
          frames += this.openMessage();
          this.text += event.text;
          frames += `${this.textPrefix}${this.sequence++},"delta":${JSON.stringify(event.text)}}\n\n`;
          break;
        case 'reasoning-delta': {
          if (this.open?.type !== 'reasoning') {
            frames += this.add({ type: 'reasoning', id: `rs_${this.meta.id}${this.output.length}`, summary: [] });
            frames += this.event('response.reasoning_summary_part.added', { item_id: this.open?.id, output_index: this.output.length - 1, summary_index: 0, part: { type: 'summary_text', text: '' } });
            (this.open as Item).summary = [{ type: 'summary_text', text: '' }];
          }
          if (event.text === '') break;
          const summary = (this.open as Item).summary as { text: string }[];
          (summary[0] as { text: string }).text += event.text;
          frames += this.event('response.reasoning_summary_text.delta', { item_id: this.open?.id, output_index: this.output.length - 1, summary_index: 0, delta: event.text });
          break;
        }
        case 'tool-call-delta': {
          let call = this.calls.get(event.index);
          if (!call) {
            call = { type: 'function_call', id: `fc_${this.meta.id}${event.index}`, call_id: event.id ?? `call_${this.meta.id}${event.index}`, name: event.name ?? '', arguments: '', status: 'in_progress' };
            this.calls.set(event.index, call);
            frames += this.add(call);
          }
          if (event.argumentsDelta !== '') {
            call.arguments = `${String(call.arguments)}${event.argumentsDelta}`;
            frames += this.event('response.function_call_arguments.delta', { item_id: call.id, output_index: this.output.indexOf(call), delta: event.argumentsDelta });
          }
          break;
        }
        case 'annotations':
          frames += this.openMessage();
          for (const a of event.annotations) {
            const annotation = responsesAnnotation(a);
            if (!annotation) continue;
            frames += this.event('response.output_text.annotation.added', { item_id: this.open?.id, output_index: this.output.length - 1, content_index: 0, annotation_index: this.annotations.length, annotation });
            this.annotations.push(annotation);
          }
          break;
        default:
          break;
      }
    }
    return frames;
  }

  end(result: StreamEnd): string {
    const frames = this.close();
    const end = ending(result.finishReason);
    const response = responseObject(this.meta, end.status as string, this.output, { ...end, usage: responsesUsage(result.usage) });
    return frames + this.event(end.status === 'completed' ? 'response.completed' : 'response.incomplete', { response });
  }

  error(error: SwitchboardError | WireRequestError): string {
    const status = errorStatus(error);
    const object = openaiErrorObject(error, status);
    // The codes a failed response documents: server_error, rate_limit_exceeded, invalid_prompt, ...
    const code = status === 429 ? 'rate_limit_exceeded' : status >= 500 ? 'server_error' : typeof object.code === 'string' ? object.code : 'invalid_prompt';
    return (
      this.event('error', { code, message: object.message, param: null }) +
      this.event('response.failed', { response: responseObject(this.meta, 'failed', this.output, { error: { code, message: object.message } }) })
    );
  }

  keepAlive(): string {
    return ': keep-alive\n\n';
  }
}

export const openaiResponsesServer: ProtocolServer = {
  name: 'openai-responses',

  parseRequest: (body) => parseRequest(body),

  createStreamWriter: (meta) => new ResponsesWriter(meta),

  writeResponse(events, meta, end) {
    const r = collectEvents(events, end);
    const output: Item[] = [];
    const reasoning = r.reasoning.map((d) => d.text).join('');
    if (reasoning) output.push({ type: 'reasoning', id: `rs_${meta.id}0`, summary: [{ type: 'summary_text', text: reasoning }] });
    if (r.text !== '' || r.toolCalls.length === 0) {
      const annotations = r.annotations.map(responsesAnnotation).filter((a) => a !== undefined);
      output.push({ type: 'message', id: `msg_${meta.id}${output.length}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: r.text, annotations }] });
    }
    r.toolCalls.forEach((c, i) => output.push({ type: 'function_call', id: `fc_${meta.id}${i}`, call_id: c.id, name: c.name, arguments: c.arguments, status: 'completed' }));
    return responseObject(meta, 'completed', output, { ...ending(r.finishReason), usage: responsesUsage(r.usage) });
  },

  writeError: (error) => openaiServer.writeError(error),

  writeModelList: (models) => openaiServer.writeModelList(models),

  writeTokenCount: (tokens) => ({ object: 'response.input_tokens', input_tokens: tokens }),
};
