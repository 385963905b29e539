/**
 * Gemini generateContent, server half: reads `:generateContent` / `:streamGenerateContent`
 * (and `:countTokens`) bodies into the canonical request, with the model and streaming taken
 * from the path. Request fields are accepted in camelCase or snake_case, as Google's JSON
 * parser does, and schemas in either dialect: Google's OpenAPI subset (`type: "OBJECT"`,
 * `nullable`) in `parameters` / `responseSchema`, or JSON Schema in `parametersJsonSchema` /
 * `responseJsonSchema`. Responses are GenerateContentResponse objects; a stream sends one per
 * SSE event and has no terminator (the last carries finishReason and usageMetadata).
 * Errors use `{ error: { code, message, status } }`.
 */
import type { SwitchboardError } from '../errors.js';
import type { AssistantMessage, ContentPart, FinishReason, Message, ProtocolEvent, ReasoningDetail, RequestParams, TokenUsage, ToolCall, ToolDefinition } from '../types.js';
import { writeTimings } from './timings.js';
import { WireRequestError, type ListedModel, type ProtocolServer, type ResponseMeta, type ServerRequest, type ServerRequestContext, type StreamEnd, type StreamWriter } from './protocol.js';
import { argumentsObject, asRecord, collectEvents, errorMessage, errorStatus, retryHeaders, unknownField, type CollectedResponse } from './server-common.js';

function invalid(message: string): WireRequestError {
  return new WireRequestError(400, 'INVALID_ARGUMENT', message);
}

/** Field names in camelCase and in snake_case, as Google's JSON parser takes them. */
function bothCases(names: readonly string[]): ReadonlySet<string> {
  return new Set(names.flatMap((name) => [name, name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)]));
}

/**
 * The fields of GenerateContentRequest and of the messages inside it that Google's parser
 * knows; anything else is refused as Google refuses it (`Invalid JSON payload received.
 * Unknown name "foo": Cannot find field.`). Known fields not read here (`safetySettings`,
 * `cachedContent`, `topK`, penalties, `responseModalities`, `speechConfig`, code execution
 * and other built-in tools, `videoMetadata`, ...) are accepted and ignored.
 */
const REQUEST_FIELDS = bothCases(['model', 'contents', 'tools', 'toolConfig', 'safetySettings', 'systemInstruction', 'generationConfig', 'cachedContent']);
const COUNT_REQUEST_FIELDS = bothCases(['model', 'contents', 'generateContentRequest']);
const CONTENT_FIELDS = bothCases(['role', 'parts']);
const SAFETY_FIELDS = bothCases(['category', 'threshold', 'method']);
const PART_FIELDS = bothCases(['text', 'inlineData', 'functionCall', 'functionResponse', 'fileData', 'executableCode', 'codeExecutionResult', 'thought', 'thoughtSignature', 'videoMetadata', 'mediaResolution', 'partMetadata']);
const CONFIG_FIELDS = bothCases([
  'stopSequences', 'responseMimeType', 'responseSchema', 'responseJsonSchema', 'responseModalities', 'candidateCount', 'maxOutputTokens', 'temperature',
  'topP', 'topK', 'seed', 'presencePenalty', 'frequencyPenalty', 'responseLogprobs', 'logprobs', 'enableEnhancedCivicAnswers', 'speechConfig',
  'thinkingConfig', 'imageConfig', 'mediaResolution',
]);
const TOOL_FIELDS = bothCases(['functionDeclarations', 'googleSearchRetrieval', 'codeExecution', 'googleSearch', 'computerUse', 'urlContext', 'fileSearch', 'googleMaps']);
const DECLARATION_FIELDS = bothCases(['name', 'description', 'behavior', 'parameters', 'parametersJsonSchema', 'response', 'responseJsonSchema']);

/** Google's refusal of a field it does not know, at `where[index]` (`contents[0].parts[1]`); the path is built only to throw. */
function refuseExtra(record: Record<string, unknown>, known: ReadonlySet<string>, where?: string, index?: number): void {
  const extra = unknownField(record, known);
  if (extra === undefined) return;
  const path = where === undefined ? '' : index === undefined ? where : `${where}[${index}]`;
  const message = `Invalid JSON payload received. Unknown name ${JSON.stringify(extra)}${path === '' ? '' : ` at '${path}'`}: Cannot find field.`;
  throw new WireRequestError(400, 'INVALID_ARGUMENT', message, path);
}

/**
 * Message-typed fields (the proto message each holds) read or accepted here, and the repeated
 * ones: a value of another JSON type is refused as Google's parser refuses it, not read as absent
 * (`"systemInstruction": "Be brief"` would otherwise be sent with no system prompt at all).
 */
const MESSAGE_FIELDS: ReadonlyMap<string, string> = new Map(
  (
    [
      ['systemInstruction', 'Content'],
      ['generationConfig', 'GenerationConfig'],
      ['toolConfig', 'ToolConfig'],
      ['functionCallingConfig', 'FunctionCallingConfig'],
      ['thinkingConfig', 'ThinkingConfig'],
      ['generateContentRequest', 'GenerateContentRequest'],
    ] as const
  ).flatMap(([camel, proto]) => [[camel, proto], [camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), proto]] as const),
);
const REPEATED_FIELDS = bothCases(['safetySettings', 'stopSequences', 'parts']);
const STRING_FIELDS = bothCases(['cachedContent', 'mode', 'category', 'threshold']);

/** Google's refusal of a field of `record` whose JSON type its proto field cannot hold. */
function refuseWrongTypes(record: Record<string, unknown>, where: string): void {
  for (const key in record) {
    const value = record[key];
    if (value === null || value === undefined) continue;
    const path = `${where === '' ? '' : `${where}.`}${key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
    const proto = MESSAGE_FIELDS.get(key);
    if (proto !== undefined && !asRecord(value)) {
      if (Array.isArray(value)) throw invalid(`Invalid JSON payload received. Unknown name ${JSON.stringify(key)}${where === '' ? '' : ` at '${where}'`}: Proto field is not repeating, cannot start list.`);
      throw invalid(`Invalid JSON payload received. Invalid value at '${path}' (type.googleapis.com/google.ai.generativelanguage.v1beta.${proto}), ${JSON.stringify(value)}`);
    }
    if (REPEATED_FIELDS.has(key) && !Array.isArray(value)) throw invalid(`Invalid JSON payload received. Invalid value at '${path}' (a list), ${JSON.stringify(value)}`);
    if (STRING_FIELDS.has(key) && typeof value !== 'string') throw invalid(`Invalid JSON payload received. Invalid value at '${path}' (TYPE_STRING), ${JSON.stringify(value)}`);
  }
}

/** A field under its camelCase or snake_case name. */
function field(record: Record<string, unknown> | undefined, camel: string): unknown {
  if (!record) return undefined;
  if (record[camel] !== undefined) return record[camel];
  return record[camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)];
}

/** Google's schema dialect (OpenAPI 3.0 subset, upper-case types, `nullable`) as JSON Schema. */
export function jsonSchemaFromGemini(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(jsonSchemaFromGemini);
  const record = asRecord(schema);
  if (!record) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (key === 'type' && typeof value === 'string') out.type = value.toLowerCase();
    else if (key === 'properties' && asRecord(value)) out.properties = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, jsonSchemaFromGemini(v)]));
    else if (key === 'items' || key === 'anyOf' || key === 'any_of' || key === 'not' || key === 'additionalProperties') out[key === 'any_of' ? 'anyOf' : key] = jsonSchemaFromGemini(value);
    else if (key === 'propertyOrdering' || key === 'property_ordering' || key === 'nullable') continue;
    else out[key] = value;
  }
  if (record.nullable === true && typeof out.type === 'string') out.type = [out.type, 'null'];
  return out;
}

function schemaOf(record: Record<string, unknown> | undefined, openapiField: string, jsonField: string): Record<string, unknown> | undefined {
  const json = asRecord(field(record, jsonField));
  if (json) return json;
  const openapi = asRecord(field(record, openapiField));
  return openapi ? (jsonSchemaFromGemini(openapi) as Record<string, unknown>) : undefined;
}

function mediaPart(mime: string, url: string, data?: string): ContentPart {
  if (mime.startsWith('image/')) return { type: 'image_url', image_url: { url } };
  if (mime.startsWith('audio/') && data !== undefined) return { type: 'input_audio', input_audio: { data, format: mime.slice(6) } };
  return { type: 'file', file: { file_data: url } };
}

/** Reads `contents` in order, giving function calls ids (Gemini's are optional) that their responses then match by name. */
class ContentsReader {
  readonly messages: Message[] = [];
  private calls = 0;
  /** Calls not yet answered, oldest first. */
  private readonly pending: { id: string; name: string }[] = [];

  read(raw: unknown, i: number): void {
    const content = asRecord(raw);
    if (content) refuseExtra(content, CONTENT_FIELDS, 'contents', i);
    const role = content?.role ?? 'user';
    if (role !== 'user' && role !== 'model' && role !== 'function') throw invalid(`* GenerateContentRequest.contents[${i}].role: Please use a valid role: user, model.`);
    const parts = content?.parts;
    if (!Array.isArray(parts)) throw invalid(`* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`);
    if (role === 'model') return this.model(parts, i);
    const user: ContentPart[] = [];
    parts.forEach((p, j) => {
      const part = asRecord(p);
      const where = `contents[${i}].parts[${j}]`;
      if (part) refuseExtra(part, PART_FIELDS, where);
      const inline = asRecord(field(part, 'inlineData'));
      const file = asRecord(field(part, 'fileData'));
      const response = asRecord(field(part, 'functionResponse'));
      if (typeof part?.text === 'string') {
        if (part.thought !== true) user.push({ type: 'text', text: part.text });
      } else if (response) this.response(response, where);
      else if (inline) {
        const mime = field(inline, 'mimeType');
        if (typeof mime !== 'string' || typeof inline.data !== 'string') throw invalid(`* GenerateContentRequest.${where}.inline_data: mime_type and data are required`);
        user.push(mediaPart(mime, `data:${mime};base64,${inline.data}`, inline.data));
      } else if (file) {
        const uri = field(file, 'fileUri');
        if (typeof uri !== 'string') throw invalid(`* GenerateContentRequest.${where}.file_data.file_uri: Field required`);
        const mime = field(file, 'mimeType');
        user.push(mediaPart(typeof mime === 'string' ? mime : 'application/octet-stream', uri));
      } else throw invalid(`* GenerateContentRequest.${where}: unsupported part (expected text, inlineData, fileData or functionResponse)`);
    });
    if (user.length === 0) return;
    const only = user[0];
    this.messages.push({ role: 'user', content: user.length === 1 && only?.type === 'text' ? only.text : user });
  }

  private model(parts: unknown[], i: number): void {
    const texts: string[] = [];
    const calls: ToolCall[] = [];
    const reasoning: ReasoningDetail[] = [];
    parts.forEach((p, j) => {
      const part = asRecord(p);
      if (part) refuseExtra(part, PART_FIELDS, `contents[${i}].parts`, j);
      const call = asRecord(field(part, 'functionCall'));
      if (call) {
        if (typeof call.name !== 'string') throw invalid(`* GenerateContentRequest.contents[${i}].parts[${j}].function_call.name: Field required`);
        const id = typeof call.id === 'string' ? call.id : `call_${this.calls}`;
        this.calls++;
        this.pending.push({ id, name: call.name });
        calls.push({ id, type: 'function', function: { name: call.name, arguments: JSON.stringify(call.args ?? {}) } });
      } else if (typeof part?.text === 'string') {
        if (part.thought === true) {
          const detail: ReasoningDetail = { text: part.text };
          const signature = field(part, 'thoughtSignature');
          if (typeof signature === 'string') detail.signature = signature;
          reasoning.push(detail);
        } else texts.push(part.text);
      }
    });
    const out: AssistantMessage & { reasoning_details?: ReasoningDetail[] } = { role: 'assistant', content: texts.length > 0 ? texts.join('') : null };
    if (calls.length > 0) out.tool_calls = calls;
    if (reasoning.length > 0) out.reasoning_details = reasoning;
    this.messages.push(out);
  }

  private response(response: Record<string, unknown>, where: string): void {
    if (typeof response.name !== 'string') throw invalid(`* GenerateContentRequest.${where}.function_response.name: Field required`);
    const byId = typeof response.id === 'string' ? this.pending.findIndex((c) => c.id === response.id) : -1;
    const index = byId >= 0 ? byId : this.pending.findIndex((c) => c.name === response.name);
    const id = index >= 0 ? (this.pending.splice(index, 1)[0]?.id as string) : typeof response.id === 'string' ? response.id : `call_${this.calls++}`;
    // `{ result }` is how a plain result travels; an object result is its JSON.
    const body = asRecord(response.response) ?? {};
    const keys = Object.keys(body);
    const content = keys.length === 1 && keys[0] === 'result' ? (typeof body.result === 'string' ? body.result : JSON.stringify(body.result)) : JSON.stringify(body);
    this.messages.push({ role: 'tool', tool_call_id: id, content });
  }
}

function readTools(value: unknown, params: RequestParams): void {
  if (value === undefined) return;
  if (!Array.isArray(value)) throw invalid('* GenerateContentRequest.tools: Proto field is not repeating, cannot start list.');
  const tools: ToolDefinition[] = [];
  for (let t = 0; t < value.length; t++) {
    const tool = asRecord(value[t]);
    if (tool) refuseExtra(tool, TOOL_FIELDS, 'tools', t);
    if (field(tool, 'googleSearch') !== undefined || field(tool, 'googleSearchRetrieval') !== undefined) params.webSearch = true;
    const declarations = field(tool, 'functionDeclarations');
    if (!Array.isArray(declarations)) continue;
    declarations.forEach((d, i) => {
      const decl = asRecord(d);
      if (typeof decl?.name !== 'string') throw invalid(`* GenerateContentRequest.tools[${t}].function_declarations[${i}].name: Field required`);
      refuseExtra(decl, DECLARATION_FIELDS, `tools[${t}].function_declarations`, i);
      const out: ToolDefinition = { name: decl.name, parameters: schemaOf(decl, 'parameters', 'parametersJsonSchema') ?? { type: 'object', properties: {} } };
      if (typeof decl.description === 'string') out.description = decl.description;
      tools.push(out);
    });
  }
  if (tools.length > 0) params.tools = tools;
}

function readConfig(config: Record<string, unknown> | undefined, params: RequestParams): number | undefined {
  if (!config) return undefined;
  refuseExtra(config, CONFIG_FIELDS, 'generation_config');
  const number = (name: string): number | undefined => {
    const value = field(config, name);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(`* GenerateContentRequest.generation_config.${name}: Invalid value (expected a number)`);
    return value;
  };
  const temperature = number('temperature');
  if (temperature !== undefined) params.temperature = temperature;
  const topP = number('topP');
  if (topP !== undefined) params.topP = topP;
  const maxTokens = number('maxOutputTokens');
  if (maxTokens !== undefined) {
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw invalid('* GenerateContentRequest.generation_config.max_output_tokens: must be a positive integer');
    params.maxTokens = maxTokens;
  }
  const seed = number('seed');
  if (seed !== undefined) params.seed = seed;
  const stop = field(config, 'stopSequences');
  if (stop !== undefined) {
    if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string')) throw invalid('* GenerateContentRequest.generation_config.stop_sequences: expected a list of strings');
    if (stop.length > 5) throw invalid('* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences');
    if (stop.length > 0) params.stop = stop as string[];
  }
  const schema = schemaOf(config, 'responseSchema', 'responseJsonSchema');
  if (schema) params.responseFormat = { type: 'json_schema', json_schema: { name: 'response', schema } };
  else if (field(config, 'responseMimeType') === 'application/json') params.responseFormat = { type: 'json_object' };
  const thinking = asRecord(field(config, 'thinkingConfig'));
  if (thinking && field(thinking, 'includeThoughts') === true) {
    const budget = field(thinking, 'thinkingBudget');
    params.reasoning = typeof budget === 'number' ? { maxTokens: budget } : {};
  }
  const candidates = number('candidateCount');
  if (candidates !== undefined && (!Number.isInteger(candidates) || candidates < 1 || candidates > 8)) throw invalid('* GenerateContentRequest.generation_config.candidate_count: must be from 1 to 8');
  return candidates;
}

const CALLING_MODES: ReadonlySet<unknown> = new Set(['MODE_UNSPECIFIED', 'AUTO', 'ANY', 'NONE', 'VALIDATED']);

/** `safetySettings` are not applied here (the upstream's defaults hold) but a malformed one is refused, as Google refuses it. */
function readSafetySettings(settings: unknown[] | undefined, prefix: string): void {
  settings?.forEach((raw, i) => {
    const setting = asRecord(raw);
    const where = `${prefix}safety_settings[${i}]`;
    if (!setting) throw invalid(`Invalid JSON payload received. Invalid value at '${where}' (type.googleapis.com/google.ai.generativelanguage.v1beta.SafetySetting), ${JSON.stringify(raw)}`);
    refuseExtra(setting, SAFETY_FIELDS, `${prefix}safety_settings`, i);
    refuseWrongTypes(setting, where);
  });
}

function parseRequest(body: unknown, ctx: ServerRequestContext): ServerRequest {
  const record = asRecord(body);
  if (!record) throw invalid('Invalid JSON payload received. The request body must be an object.');
  const model = (ctx.pathModel ?? '').replace(/^models\//, '');
  if (model === '') throw invalid('* GenerateContentRequest.model: unexpected model name format');
  // countTokens also takes `{ generateContentRequest: { contents, ... } }`.
  refuseExtra(record, ctx.counting ? COUNT_REQUEST_FIELDS : REQUEST_FIELDS);
  refuseWrongTypes(record, '');
  const inner = ctx.counting ? asRecord(field(record, 'generateContentRequest')) : undefined;
  if (inner) {
    refuseExtra(inner, REQUEST_FIELDS, 'generate_content_request');
    refuseWrongTypes(inner, 'generate_content_request');
  }
  const source = inner ?? record;
  const prefix = inner ? 'generate_content_request.' : '';
  const contents = source.contents;
  if (!Array.isArray(contents) || contents.length === 0) throw invalid('* GenerateContentRequest.contents: contents is not specified');
  const messages: Message[] = [];
  const instruction = asRecord(field(source, 'systemInstruction'));
  if (instruction) {
    refuseExtra(instruction, CONTENT_FIELDS, 'system_instruction');
    refuseWrongTypes(instruction, `${prefix}system_instruction`);
    const parts = (instruction.parts ?? []) as unknown[];
    parts.forEach((p, j) => {
      const part = asRecord(p);
      const t = part?.text;
      if (!part || (t !== undefined && typeof t !== 'string')) throw invalid(`* GenerateContentRequest.system_instruction.parts[${j}]: a system instruction part is { text: string }`);
      if (typeof t === 'string' && t !== '') messages.push({ role: 'system', content: t });
    });
  }
  const reader = new ContentsReader();
  contents.forEach((c, i) => reader.read(c, i));
  messages.push(...reader.messages);
  const params: RequestParams = {};
  const config = asRecord(field(source, 'generationConfig'));
  if (config) refuseWrongTypes(config, `${prefix}generation_config`);
  const candidates = readConfig(config, params);
  readTools(source.tools, params);
  readSafetySettings(field(source, 'safetySettings') as unknown[] | undefined, prefix);
  const toolConfig = asRecord(field(source, 'toolConfig'));
  if (toolConfig) refuseWrongTypes(toolConfig, `${prefix}tool_config`);
  const calling = asRecord(field(toolConfig, 'functionCallingConfig'));
  if (calling) refuseWrongTypes(calling, `${prefix}tool_config.function_calling_config`);
  if (calling?.mode !== undefined && !CALLING_MODES.has(calling.mode)) {
    throw invalid(`Invalid JSON payload received. Invalid value at '${prefix}tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), ${JSON.stringify(calling.mode)}`);
  }
  const allowed = field(calling, 'allowedFunctionNames');
  if (calling?.mode === 'NONE') params.toolChoice = 'none';
  else if (calling?.mode === 'ANY') params.toolChoice = Array.isArray(allowed) && allowed.length === 1 && typeof allowed[0] === 'string' ? { name: allowed[0] } : 'required';
  else if (calling?.mode === 'AUTO') params.toolChoice = 'auto';
  const stream = ctx.pathStream === true;
  const out: ServerRequest = { model, stream, request: { model, messages, params, stream } };
  if (candidates !== undefined && candidates > 1) out.choices = candidates;
  return out;
}

const FINISH: Record<FinishReason, string> = {
  stop: 'STOP',
  // Gemini ends a turn that calls functions with STOP.
  'tool-calls': 'STOP',
  length: 'MAX_TOKENS',
  'content-filter': 'SAFETY',
  error: 'OTHER',
  other: 'OTHER',
};

function usageMetadata(usage: TokenUsage | undefined): Record<string, number> {
  const prompt = usage?.promptTokens ?? 0;
  const completion = usage?.completionTokens ?? 0;
  const thoughts = usage?.reasoningTokens ?? 0;
  // Gemini counts thoughts apart from the candidates.
  const out: Record<string, number> = { promptTokenCount: prompt, candidatesTokenCount: completion - thoughts, totalTokenCount: prompt + completion };
  if (thoughts > 0) out.thoughtsTokenCount = thoughts;
  if (usage?.cachedTokens) out.cachedContentTokenCount = usage.cachedTokens;
  return out;
}

/** Google Search grounding for url_citation annotations. */
function grounding(annotations: readonly unknown[]): Record<string, unknown> | undefined {
  const chunks = annotations.flatMap((a) => {
    const c = asRecord(asRecord(a)?.url_citation);
    return c ? [{ web: { uri: c.url, title: c.title } }] : [];
  });
  return chunks.length > 0 ? { groundingChunks: chunks } : undefined;
}

function functionCallParts(calls: CollectedResponse['toolCalls']): Record<string, unknown>[] {
  return calls.map((c) => ({ functionCall: { name: c.name, args: argumentsObject(c.arguments) } }));
}

function response(meta: ResponseMeta, parts: Record<string, unknown>[], final?: { finish: FinishReason; usage?: TokenUsage; annotations: readonly unknown[] }): Record<string, unknown> {
  const candidate: Record<string, unknown> = { content: { parts, role: 'model' } };
  if (final) {
    candidate.finishReason = FINISH[final.finish];
    const metadata = grounding(final.annotations);
    if (metadata) candidate.groundingMetadata = metadata;
  }
  candidate.index = 0;
  const out: Record<string, unknown> = { candidates: [candidate] };
  if (final) out.usageMetadata = usageMetadata(final.usage);
  out.modelVersion = meta.model;
  out.responseId = meta.id;
  return out;
}

const ERROR_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  501: 'NOT_IMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

function errorObject(error: SwitchboardError | WireRequestError, status: number): Record<string, unknown> {
  const statusName = error instanceof WireRequestError ? error.type : (ERROR_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT'));
  const out: Record<string, unknown> = { code: status, message: errorMessage(error), status: statusName };
  if (error instanceof WireRequestError && error.code) out.details = [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: error.code, domain: 'googleapis.com' }];
  else if (error instanceof WireRequestError && error.param !== undefined) {
    // A payload Google's parser refused: the field it names, as a BadRequest violation.
    out.details = [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [error.param === '' ? { description: error.message } : { field: error.param, description: error.message }] }];
  }
  return { error: out };
}

class GenerateContentWriter implements StreamWriter {
  readonly contentType = 'text/event-stream';
  private readonly calls: CollectedResponse['toolCalls'] = [];
  private readonly annotations: unknown[] = [];
  /** The chunk around one text part, serialised once (the hot path). */
  private readonly textHead = '{"candidates":[{"content":{"parts":[{"text":';
  private readonly textTail: string;

  constructor(private readonly meta: ResponseMeta) {
    this.textTail = `}],"role":"model"},"index":0}],"modelVersion":${JSON.stringify(meta.model)},"responseId":${JSON.stringify(meta.id)}}`;
  }

  start(): string {
    return '';
  }

  write(events: readonly ProtocolEvent[]): string {
    // The hot path: one text delta per call.
    const only = events.length === 1 ? events[0] : undefined;
    if (only?.type === 'text-delta') return `data: ${this.textHead}${JSON.stringify(only.text)}${this.textTail}\r\n\r\n`;
    let frames = '';
    for (const event of events) {
      if (event.type === 'text-delta') frames += `data: ${this.textHead}${JSON.stringify(event.text)}${this.textTail}\r\n\r\n`;
      else if (event.type === 'reasoning-delta') {
        const part: Record<string, unknown> = { text: event.text, thought: true };
        if (event.signature !== undefined) part.thoughtSignature = event.signature;
        frames += `data: ${JSON.stringify(response(this.meta, [part]))}\r\n\r\n`;
      } else if (event.type === 'tool-call-delta') {
        // Gemini sends each function call whole: collect the pieces, send them with the last chunk.
        const call = (this.calls[event.index] ??= { id: '', name: '', arguments: '' });
        if (event.id) call.id = event.id;
        if (event.name) call.name = event.name;
        call.arguments += event.argumentsDelta;
      } else if (event.type === 'annotations') this.annotations.push(...event.annotations);
    }
    return frames;
  }

  end(result: StreamEnd): string {
    const calls = this.calls.filter((c) => c !== undefined);
    const parts = calls.length > 0 ? functionCallParts(calls) : [{ text: '' }];
    const last = response(this.meta, parts, { finish: result.finishReason, usage: result.usage, annotations: this.annotations });
    if (result.timing) last.timings = writeTimings(result.timing);
    return `data: ${JSON.stringify(last)}\r\n\r\n`;
  }

  error(error: SwitchboardError | WireRequestError): string {
    return `data: ${JSON.stringify(errorObject(error, errorStatus(error)))}\r\n\r\n`;
  }

  keepAlive(): string {
    return ': keep-alive\r\n\r\n';
  }
}

/** The parts of a whole candidate: thoughts, text, function calls. */
function wholeParts(r: CollectedResponse): Record<string, unknown>[] {
  const parts: Record<string, unknown>[] = r.reasoning.map((d) => (d.signature === undefined ? { text: d.text, thought: true } : { text: d.text, thought: true, thoughtSignature: d.signature }));
  if (r.text !== '' || r.toolCalls.length === 0) parts.push({ text: r.text });
  parts.push(...functionCallParts(r.toolCalls));
  return parts;
}

export const geminiServer: ProtocolServer = {
  name: 'gemini',

  parseRequest,

  createStreamWriter: (meta) => new GenerateContentWriter(meta),

  writeResponse(events, meta, end) {
    const r = collectEvents(events, end);
    return response(meta, wholeParts(r), { finish: r.finishReason, usage: r.usage, annotations: r.annotations });
  },

  writeChoices(choices, meta, total) {
    const body = response(meta, [], { finish: 'stop', usage: total.usage, annotations: [] });
    body.candidates = choices.map((choice, index) => {
      const r = collectEvents(choice.events, choice.end);
      const candidate = (response(meta, wholeParts(r), { finish: r.finishReason, annotations: r.annotations }).candidates as Record<string, unknown>[])[0] as Record<string, unknown>;
      candidate.index = index;
      return candidate;
    });
    return body;
  },

  writeError(error) {
    const status = errorStatus(error);
    return { status, headers: retryHeaders(error), body: errorObject(error, status) };
  },

  writeModelList(models: readonly ListedModel[]) {
    return {
      models: models.map((m) => ({
        name: `models/${m.id}`,
        version: '001',
        displayName: m.displayName ?? m.id,
        inputTokenLimit: m.contextLength ?? 0,
        outputTokenLimit: m.maxOutputTokens ?? 8192,
        supportedGenerationMethods: ['generateContent', 'countTokens', 'streamGenerateContent'],
      })),
    };
  },

  writeTokenCount: (tokens) => ({ totalTokens: tokens }),
};
