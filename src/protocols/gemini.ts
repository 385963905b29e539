/**
 * Google Gemini `generateContent` (`POST {baseURL}/v1beta/models/{model}:generateContent`,
 * streamed with `:streamGenerateContent?alt=sse`). The key travels in `x-goog-api-key`,
 * never in the URL.
 *
 * Gemini sends no end-of-stream marker: a stream is complete once a chunk carried a
 * `finishReason` (or the prompt was blocked). Usage: promptTokenCount already includes
 * cached tokens; output is candidates + thoughts.
 */
import { randomUUID } from 'node:crypto';
import { apiErrorFromStatus, InvalidHistoryError, ProtocolError, type APIError } from '../errors.js';
import type { CanonicalRequest, ContentPart, FinishReason, Message, ProtocolEvent, TokenUsage } from '../types.js';
import { EFFORT_BUDGETS, mediaTypeFromURL, parseDataURI, parseToolArguments, toTurns } from './media.js';
import type { Endpoint, Protocol, SSEMessage, StreamReader, WireRequest } from './protocol.js';
import { readTimings, type WireTimings } from './timings.js';

export interface GeminiUsage {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  thoughtsTokenCount?: number;
  cachedContentTokenCount?: number;
  toolUsePromptTokenCount?: number;
  totalTokenCount?: number;
}

type Part = Record<string, unknown>;
interface Content {
  role: 'user' | 'model';
  parts: Part[];
}

interface WirePart {
  text?: string;
  thought?: boolean;
  thoughtSignature?: string;
  functionCall?: WireFunctionCall;
}

/**
 * A function call; Vertex can stream its arguments in pieces: `partialArgs` set values at
 * JSON paths (a string value with `willContinue` goes on in the next piece), and the call
 * goes on while `willContinue` is true.
 */
interface WireFunctionCall {
  id?: string;
  name?: string;
  args?: unknown;
  partialArgs?: WirePartialArg[];
  willContinue?: boolean;
}

interface WirePartialArg {
  jsonPath?: string;
  stringValue?: string;
  numberValue?: number;
  boolValue?: boolean;
  nullValue?: unknown;
  willContinue?: boolean;
}

/** `$.a.b[0]['c d']` as keys and indexes; undefined when it is not a path of that form. */
function parseJSONPath(path: string): (string | number)[] | undefined {
  if (!path.startsWith('$')) return undefined;
  const keys: (string | number)[] = [];
  const step = /\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]/y;
  step.lastIndex = 1;
  while (step.lastIndex < path.length) {
    const at = step.lastIndex;
    const m = step.exec(path);
    if (!m || step.lastIndex === at) return undefined;
    if (m[1] !== undefined) keys.push(m[1]);
    else if (m[2] !== undefined) keys.push(Number(m[2]));
    else keys.push((m[3] ?? m[4] ?? '').replace(/\\(.)/g, '$1'));
  }
  return keys;
}

/** A function call whose arguments arrive in pieces, put together. */
class PartialCall {
  readonly args: Record<string, unknown> = {};
  /** The path of a string still being continued. */
  private continuing: string | undefined;
  constructor(
    readonly id: string | undefined,
    readonly name: string | undefined,
  ) {}

  apply(arg: WirePartialArg, provider: string): void {
    const keys = arg.jsonPath === undefined ? undefined : parseJSONPath(arg.jsonPath);
    if (!keys || keys.length === 0) throw new ProtocolError(`${provider} streamed a function argument at a path that is not a JSON path: ${JSON.stringify(arg.jsonPath)}`);
    const value =
      arg.stringValue !== undefined ? arg.stringValue : arg.numberValue !== undefined ? arg.numberValue : arg.boolValue !== undefined ? arg.boolValue : null;
    let target: Record<string | number, unknown> = this.args;
    keys.slice(0, -1).forEach((key, i) => {
      const next = keys[i + 1];
      target[key] ??= typeof next === 'number' ? [] : {};
      target = target[key] as Record<string | number, unknown>;
    });
    const last = keys[keys.length - 1] as string | number;
    const previous = target[last];
    target[last] = this.continuing === arg.jsonPath && typeof previous === 'string' && typeof value === 'string' ? previous + value : value;
    this.continuing = arg.stringValue !== undefined && arg.willContinue ? arg.jsonPath : undefined;
  }
}

interface GroundingMetadata {
  groundingChunks?: { web?: { uri?: string; title?: string } }[];
}

interface WireResponse {
  candidates?: { content?: { parts?: WirePart[] }; finishReason?: string; groundingMetadata?: GroundingMetadata }[];
  promptFeedback?: { blockReason?: string };
  usageMetadata?: GeminiUsage;
  timings?: WireTimings;
  modelVersion?: string;
  responseId?: string;
  error?: { code?: number; message?: string; status?: string };
}

const FINISH: Record<string, FinishReason> = {
  STOP: 'stop',
  MAX_TOKENS: 'length',
  SAFETY: 'content-filter',
  RECITATION: 'content-filter',
  BLOCKLIST: 'content-filter',
  PROHIBITED_CONTENT: 'content-filter',
  SPII: 'content-filter',
  IMAGE_SAFETY: 'content-filter',
  MALFORMED_FUNCTION_CALL: 'error',
};

export function mapGeminiFinish(raw: string): FinishReason {
  return FINISH[raw] ?? 'other';
}

/** Gemini usage into the canonical convention (thoughts counted as output). */
export function readGeminiUsage(usage: GeminiUsage): TokenUsage {
  const prompt = (usage.promptTokenCount ?? 0) + (usage.toolUsePromptTokenCount ?? 0);
  const thoughts = usage.thoughtsTokenCount;
  const completion = (usage.candidatesTokenCount ?? 0) + (thoughts ?? 0);
  const out: TokenUsage = { promptTokens: prompt, completionTokens: completion, totalTokens: usage.totalTokenCount ?? prompt + completion };
  if (usage.cachedContentTokenCount !== undefined) out.cachedTokens = usage.cachedContentTokenCount;
  if (thoughts !== undefined) out.reasoningTokens = thoughts;
  return out;
}

function errorFromBody(error: NonNullable<WireResponse['error']>, provider: string): APIError {
  return apiErrorFromStatus({
    status: typeof error.code === 'number' ? error.code : 500,
    provider,
    providerMessage: error.message ?? 'error inside the stream',
    providerCode: error.status,
  });
}

function mediaPart(uri: string, fallbackType: string): Part {
  const data = parseDataURI(uri);
  return data
    ? { inlineData: { mimeType: data.mediaType, data: data.data } }
    : { fileData: { mimeType: mediaTypeFromURL(uri, fallbackType), fileUri: uri } };
}

function partToGemini(part: ContentPart): Part {
  switch (part.type) {
    case 'text':
      return { text: part.text };
    case 'image_url':
      return mediaPart(part.image_url.url, 'image/jpeg');
    case 'file':
      return mediaPart(part.file.file_data, 'application/pdf');
    case 'input_audio':
      return { inlineData: { mimeType: `audio/${part.input_audio.format}`, data: part.input_audio.data } };
  }
}

/** A tool result as the object `functionResponse.response` wants. */
function toolResponse(content: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(content);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    return { result: parsed };
  } catch {
    return { result: content };
  }
}

/** Canonical messages to Gemini's `systemInstruction` and `contents`. */
export function toGeminiContents(messages: Message[]): { systemInstruction: { parts: Part[] } | undefined; contents: Content[] } {
  const toolNames = new Map<string, string>();
  const { system, turns } = toTurns<Part>(messages, {
    text: (text) => ({ text }),
    part: partToGemini,
    toolCall(call) {
      toolNames.set(call.id, call.function.name);
      return { functionCall: { name: call.function.name, args: parseToolArguments(call.function.arguments) } };
    },
    toolResult(message) {
      const name = toolNames.get(message.tool_call_id);
      if (name === undefined) {
        throw new InvalidHistoryError(`A tool result answers tool call "${message.tool_call_id}", but no earlier assistant message made that call; Gemini needs the function's name.`);
      }
      return { functionResponse: { name, response: toolResponse(message.content) } };
    },
  });
  const contents = turns.map((t): Content => ({ role: t.role === 'assistant' ? 'model' : 'user', parts: t.content }));
  return { systemInstruction: system.length > 0 ? { parts: system.map((text) => ({ text })) } : undefined, contents };
}

/** Gemini's schema dialect (OpenAPI subset) rejects these JSON Schema keywords. */
const UNSUPPORTED_SCHEMA_KEYS = new Set(['$schema', 'additionalProperties', '$id', '$comment']);

function cleanSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(cleanSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (!UNSUPPORTED_SCHEMA_KEYS.has(key)) out[key] = cleanSchema(value);
  }
  return out;
}

export function buildGeminiBody(request: CanonicalRequest): Record<string, unknown> {
  const { params } = request;
  const { systemInstruction, contents } = toGeminiContents(request.messages);
  const body: Record<string, unknown> = { contents };
  if (systemInstruction) body.systemInstruction = systemInstruction;
  const config: Record<string, unknown> = {};
  if (params.temperature !== undefined) config.temperature = params.temperature;
  if (params.topP !== undefined) config.topP = params.topP;
  if (params.maxTokens !== undefined) config.maxOutputTokens = params.maxTokens;
  if (params.stop !== undefined) config.stopSequences = typeof params.stop === 'string' ? [params.stop] : params.stop;
  if (params.seed !== undefined) config.seed = params.seed;
  const format = params.responseFormat;
  if (format && (format.type === 'json_object' || format.type === 'json_schema')) {
    config.responseMimeType = 'application/json';
    const schema = (format.json_schema as { schema?: unknown } | undefined)?.schema;
    if (format.type === 'json_schema' && schema !== undefined) config.responseSchema = cleanSchema(schema);
  }
  if (params.reasoning) {
    config.thinkingConfig = {
      thinkingBudget: params.reasoning.maxTokens ?? EFFORT_BUDGETS[params.reasoning.effort ?? 'medium'],
      includeThoughts: true,
    };
  }
  if (Object.keys(config).length > 0) body.generationConfig = config;
  const tools: Record<string, unknown>[] = [];
  if (params.tools && params.tools.length > 0) {
    tools.push({
      functionDeclarations: params.tools.map((t) => {
        const declaration: Record<string, unknown> = { name: t.name, parameters: cleanSchema(t.parameters) };
        if (t.description !== undefined) declaration.description = t.description;
        return declaration;
      }),
    });
  }
  if (params.webSearch) tools.push({ google_search: {} });
  if (tools.length > 0) body.tools = tools;
  if (params.toolChoice !== undefined) {
    const choice = params.toolChoice;
    body.toolConfig = {
      functionCallingConfig:
        typeof choice === 'string'
          ? { mode: choice === 'required' ? 'ANY' : choice === 'none' ? 'NONE' : 'AUTO' }
          : { mode: 'ANY', allowedFunctionNames: [choice.name] },
    };
  }
  if (params.extraBody) Object.assign(body, params.extraBody);
  return body;
}

/** Reads Gemini responses (one per stream chunk, or the whole body) into canonical events. */
class GeminiReader implements StreamReader {
  done = false;
  private started = false;
  private toolCalls = 0;
  private usage: GeminiUsage | undefined;
  /** A function call streamed in pieces (Vertex `partialArgs`), until its last piece. */
  private partial: PartialCall | undefined;
  constructor(private readonly provider: string) {}

  onEvent(message: SSEMessage, out: ProtocolEvent[]): void {
    if (message.data === '') return;
    let parsed: WireResponse | WireResponse[];
    try {
      parsed = JSON.parse(message.data) as WireResponse | WireResponse[];
    } catch {
      throw new ProtocolError(`${this.provider} sent a stream event that is not JSON: ${message.data.slice(0, 120)}`);
    }
    for (const chunk of Array.isArray(parsed) ? parsed : [parsed]) this.read(chunk, out);
  }

  private functionCall(call: WireFunctionCall, out: ProtocolEvent[]): void {
    if (!this.partial && !call.willContinue && !call.partialArgs) {
      this.pushCall(call.id, call.name, call.args ?? {}, out);
      return;
    }
    // A call streamed in pieces: the first names it, the last has willContinue false.
    if (this.partial && call.name && this.partial.name && call.name !== this.partial.name) {
      throw new ProtocolError(`${this.provider} began function call "${call.name}" before "${this.partial.name}" had all its arguments.`);
    }
    const partial = (this.partial ??= new PartialCall(call.id, call.name));
    if (call.args !== null && typeof call.args === 'object') Object.assign(partial.args, call.args);
    for (const arg of call.partialArgs ?? []) partial.apply(arg, this.provider);
    if (call.willContinue) return;
    this.partial = undefined;
    this.pushCall(partial.id ?? call.id, partial.name ?? call.name, partial.args, out);
  }

  private pushCall(id: string | undefined, name: string | undefined, args: unknown, out: ProtocolEvent[]): void {
    out.push({
      type: 'tool-call-delta',
      index: this.toolCalls++,
      id: id ?? `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`,
      name,
      argumentsDelta: JSON.stringify(args),
    });
  }

  read(chunk: WireResponse, out: ProtocolEvent[]): void {
    if (chunk.error) throw errorFromBody(chunk.error, this.provider);
    if (!this.started) {
      this.started = true;
      out.push({ type: 'start', model: chunk.modelVersion, id: chunk.responseId });
    }
    // usageMetadata is cumulative and often repeated on every chunk: keep the latest.
    if (chunk.usageMetadata) this.usage = chunk.usageMetadata;
    const candidate = chunk.candidates?.[0];
    for (const part of candidate?.content?.parts ?? []) {
      if (part.functionCall) {
        this.functionCall(part.functionCall, out);
      } else if (part.text !== undefined && (part.text !== '' || part.thoughtSignature)) {
        if (part.thought) {
          const event: ProtocolEvent = { type: 'reasoning-delta', text: part.text };
          if (part.thoughtSignature) event.signature = part.thoughtSignature;
          out.push(event);
        } else if (part.text !== '') {
          out.push({ type: 'text-delta', text: part.text });
        }
      }
    }
    const chunks = candidate?.groundingMetadata?.groundingChunks;
    if (chunks && chunks.length > 0) {
      // Google Search grounding: each web source in the url_citation shape.
      const annotations = chunks
        .filter((c) => c.web?.uri)
        .map((c) => ({ type: 'url_citation', url_citation: { url: c.web?.uri, title: c.web?.title } }));
      if (annotations.length > 0) out.push({ type: 'annotations', annotations });
    }
    const blockReason = chunk.promptFeedback?.blockReason;
    const raw = candidate?.finishReason ?? blockReason;
    if (raw && raw !== 'FINISH_REASON_UNSPECIFIED') {
      if (this.partial) throw new ProtocolError(`${this.provider} ended the reply before function call "${this.partial.name ?? ''}" had all its arguments.`);
      // Gemini ends a turn that calls functions with STOP; callers want to know tools were called.
      const reason = blockReason && !candidate?.finishReason ? 'content-filter' : raw === 'STOP' && this.toolCalls > 0 ? 'tool-calls' : mapGeminiFinish(raw);
      out.push({ type: 'finish', reason, rawReason: raw });
      if (this.usage) {
        const event: ProtocolEvent = { type: 'usage', usage: readGeminiUsage(this.usage), raw: this.usage };
        // The simulator's llama.cpp-style `timings` on the last chunk.
        const timing = readTimings(chunk.timings);
        if (timing) event.timing = timing;
        out.push(event);
      }
      this.done = true;
    }
  }
}

export const geminiProtocol: Protocol = {
  name: 'gemini',

  buildRequest(request: CanonicalRequest, endpoint: Endpoint): WireRequest {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: request.stream ? 'text/event-stream' : 'application/json',
    };
    if (endpoint.apiKey) headers['x-goog-api-key'] = endpoint.apiKey;
    Object.assign(headers, endpoint.headers);
    const model = request.model.replace(/^models\//, '');
    const method = request.stream ? 'streamGenerateContent?alt=sse' : 'generateContent';
    // Vertex: the base URL is already the publisher's models path.
    const models = endpoint.compat.vertex ? endpoint.baseURL : `${endpoint.baseURL}/v1beta/models`;
    return {
      url: `${models}/${model}:${method}`,
      headers,
      body: JSON.stringify(buildGeminiBody(request)),
    };
  },

  createStreamReader(endpoint: Endpoint): StreamReader {
    return new GeminiReader(endpoint.provider);
  },

  parseResponse(body: unknown): ProtocolEvent[] {
    const out: ProtocolEvent[] = [];
    const reader = new GeminiReader('google');
    for (const chunk of Array.isArray(body) ? (body as WireResponse[]) : [body as WireResponse]) reader.read(chunk, out);
    return out;
  },

  parseErrorBody(text: string) {
    try {
      const parsed = JSON.parse(text) as WireResponse | WireResponse[];
      const error = (Array.isArray(parsed) ? parsed[0] : parsed)?.error;
      if (error?.message) return { message: error.message, code: error.status };
    } catch {
      // not JSON: the raw text is the message
    }
    return { message: text.slice(0, 500) };
  },
};
