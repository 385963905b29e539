/**
 * Amazon Bedrock's Converse API (`POST {baseURL}/model/{modelId}/converse`), streamed with
 * ConverseStream (`/converse-stream`) in AWS's binary event-stream framing. One request
 * shape for every model on Bedrock; the endpoint signs it (SigV4) or sends a Bedrock API key.
 *
 * Requests: system messages become `system` blocks; tool calls `toolUse` blocks and tool
 * results `toolResult` blocks in a user turn (consecutive turns of one role are merged, as
 * Converse wants alternation); images and documents are sent as bytes.
 *
 * Usage: `inputTokens` excludes cache reads and writes, so the canonical promptTokens is
 * input + cacheRead + cacheWrite.
 */
import { InvalidInputError, ProtocolError, apiErrorFromStatus, type APIError } from '../errors.js';
import type { CanonicalRequest, ContentPart, FinishReason, Message, ProtocolEvent, ReasoningDetail, TokenUsage } from '../types.js';
import { usageWithSeparateCache } from '../usage.js';
import { mapAnthropicFinish } from './anthropic.js';
import { EventStreamDecoder } from './eventstream.js';
import { EFFORT_BUDGETS, parseDataURI, parseToolArguments, toTurns, type WireTurn } from './media.js';
import type { Endpoint, FrameDecoder, Protocol, SSEMessage, StreamReader, WireRequest } from './protocol.js';
import { readTimings, type WireTimings } from './timings.js';

export const BEDROCK_STREAM_TYPE = 'application/vnd.amazon.eventstream';

export interface BedrockUsage {
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
  cacheReadInputTokens?: number;
  cacheWriteInputTokens?: number;
}

type Block = Record<string, unknown>;
type ReplayedAssistant = Message & { reasoning_details?: ReasoningDetail[] };

type WireMessage = WireTurn<Block>;

interface WireContentBlock {
  text?: string;
  toolUse?: { toolUseId?: string; name?: string; input?: unknown };
  reasoningContent?: { reasoningText?: { text?: string; signature?: string } };
}

/** Converse's stop reasons are Anthropic's names, plus Bedrock's guardrails and filters. */
const BEDROCK_FINISH: Record<string, FinishReason> = {
  guardrail_intervened: 'content-filter',
  content_filtered: 'content-filter',
};

export function mapBedrockFinish(raw: string): FinishReason {
  return BEDROCK_FINISH[raw] ?? mapAnthropicFinish(raw);
}

/** Bedrock usage into the canonical convention (cache reads and writes counted as input). */
export function readBedrockUsage(usage: BedrockUsage): TokenUsage {
  return usageWithSeparateCache({ input: usage.inputTokens, output: usage.outputTokens, cacheRead: usage.cacheReadInputTokens, cacheWrite: usage.cacheWriteInputTokens });
}

/** HTTP status of Bedrock's exception types, for exceptions sent inside a 200 stream. */
const EXCEPTION_STATUS: Record<string, number> = {
  validationException: 400,
  accessDeniedException: 403,
  resourceNotFoundException: 404,
  throttlingException: 429,
  serviceQuotaExceededException: 429,
  modelTimeoutException: 408,
  internalServerException: 500,
  modelStreamErrorException: 500,
  serviceUnavailableException: 503,
};

function exceptionError(type: string, payload: string, provider: string): APIError {
  let message = payload;
  try {
    message = (JSON.parse(payload) as { message?: string }).message ?? payload;
  } catch {
    // not JSON: the payload is the message
  }
  const key = type.charAt(0).toLowerCase() + type.slice(1);
  return apiErrorFromStatus({ status: EXCEPTION_STATUS[key] ?? 500, provider, providerMessage: message, providerCode: type });
}

/** `image/png` to Converse's `png`; Converse names formats, not media types. */
const IMAGE_FORMATS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpeg', 'image/gif': 'gif', 'image/webp': 'webp' };
const DOCUMENT_FORMATS: Record<string, string> = {
  'application/pdf': 'pdf',
  'text/csv': 'csv',
  'text/plain': 'txt',
  'text/markdown': 'md',
  'text/html': 'html',
  'application/msword': 'doc',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/vnd.ms-excel': 'xls',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
};

/** Document names Converse accepts: letters, digits, spaces, hyphens, parentheses, brackets. */
function documentName(filename: string | undefined, index: number): string {
  const base = (filename ?? `document-${index + 1}`).replace(/\.[^.]+$/, '');
  return base.replace(/[^A-Za-z0-9 ()[\]-]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200) || `document-${index + 1}`;
}

function partToBlock(part: ContentPart, index: number): Block {
  switch (part.type) {
    case 'text':
      return { text: part.text };
    case 'image_url': {
      const data = parseDataURI(part.image_url.url);
      if (!data) throw new InvalidInputError('Bedrock takes images as bytes: give a data: URI, not a URL (or fetch the image first).');
      const format = IMAGE_FORMATS[data.mediaType];
      if (!format) throw new InvalidInputError(`Bedrock accepts png, jpeg, gif and webp images, not ${data.mediaType}.`);
      return { image: { format, source: { bytes: data.data } } };
    }
    case 'file': {
      const data = parseDataURI(part.file.file_data);
      if (!data) throw new InvalidInputError(`Bedrock takes documents as bytes: give a data: URI${part.file.filename ? ` for ${part.file.filename}` : ''}, not a URL.`);
      const image = IMAGE_FORMATS[data.mediaType];
      if (image) return { image: { format: image, source: { bytes: data.data } } };
      const format = DOCUMENT_FORMATS[data.mediaType];
      if (!format) throw new InvalidInputError(`Bedrock accepts pdf, csv, doc, docx, xls, xlsx, html, txt and md documents, not ${data.mediaType}.`);
      return { document: { format, name: documentName(part.file.filename, index), source: { bytes: data.data } } };
    }
    case 'input_audio':
      throw new InvalidInputError('Bedrock Converse does not accept audio input.');
  }
}

/** Canonical messages to Converse's `system` and alternating `messages`. */
export function toBedrockMessages(messages: Message[]): { system: Block[]; messages: WireMessage[] } {
  let documents = 0;
  const { system, turns } = toTurns<Block>(messages, {
    text: (text) => ({ text }),
    part: (p) => partToBlock(p, p.type === 'file' ? documents++ : 0),
    assistantStart(message) {
      const blocks: Block[] = [];
      for (const detail of (message as ReplayedAssistant).reasoning_details ?? []) {
        if (detail.signature) blocks.push({ reasoningContent: { reasoningText: { text: detail.text, signature: detail.signature } } });
      }
      return blocks;
    },
    toolCall: (call) => ({ toolUse: { toolUseId: call.id, name: call.function.name, input: parseToolArguments(call.function.arguments) } }),
    toolResult: (message) => ({ toolResult: { toolUseId: message.tool_call_id, content: [{ text: message.content }] } }),
  });
  return { system: system.map((text) => ({ text })), messages: turns };
}

export function buildBedrockBody(request: CanonicalRequest): Record<string, unknown> {
  const { params } = request;
  const { system, messages } = toBedrockMessages(request.messages);
  const body: Record<string, unknown> = { messages };
  if (system.length > 0) body.system = system;
  const inference: Record<string, unknown> = {};
  if (params.maxTokens !== undefined) inference.maxTokens = params.maxTokens;
  if (params.temperature !== undefined) inference.temperature = params.temperature;
  if (params.topP !== undefined) inference.topP = params.topP;
  if (params.stop !== undefined) inference.stopSequences = typeof params.stop === 'string' ? [params.stop] : params.stop;
  if (Object.keys(inference).length > 0) body.inferenceConfig = inference;
  const format = params.responseFormat;
  const schema = format?.type === 'json_schema' ? (format.json_schema as { schema?: unknown } | undefined)?.schema : undefined;
  if (schema !== undefined || format?.type === 'json_object') {
    // Converse has no JSON mode of its own: the instruction goes in the system prompt.
    const instruction = schema === undefined ? 'Answer with a single JSON value and nothing else.' : `Answer with a single JSON value, and nothing else, that satisfies this JSON Schema:\n${JSON.stringify(schema)}`;
    body.system = [...system, { text: instruction }];
  }
  if (params.tools && params.tools.length > 0) {
    const config: Record<string, unknown> = {
      tools: params.tools.map((t) => {
        const spec: Record<string, unknown> = { name: t.name, inputSchema: { json: t.parameters } };
        if (t.description !== undefined) spec.description = t.description;
        return { toolSpec: spec };
      }),
    };
    const choice = params.toolChoice;
    // Converse has no "none": without a choice the model decides; tools stay listed so history with tool blocks is valid.
    if (choice === 'auto') config.toolChoice = { auto: {} };
    else if (choice === 'required') config.toolChoice = { any: {} };
    else if (typeof choice === 'object') config.toolChoice = { tool: { name: choice.name } };
    body.toolConfig = config;
  }
  if (params.reasoning) {
    // Claude on Bedrock: thinking goes through the model-specific fields.
    const budget = params.reasoning.maxTokens ?? EFFORT_BUDGETS[params.reasoning.effort ?? 'medium'];
    body.additionalModelRequestFields = { thinking: { type: 'enabled', budget_tokens: budget } };
  }
  if (params.extraBody) Object.assign(body, params.extraBody);
  return body;
}

/** Reads ConverseStream events (and a whole Converse response) into canonical events. */
class BedrockReader implements StreamReader {
  done = false;
  /** Content block index to tool-call index. */
  private readonly toolIndex = new Map<number, number>();
  constructor(private readonly provider: string) {}

  onEvent(message: SSEMessage, out: ProtocolEvent[]): void {
    const type = message.event ?? '';
    if (type.startsWith('exception:')) throw exceptionError(type.slice('exception:'.length), message.data, this.provider);
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(message.data || '{}') as Record<string, unknown>;
    } catch {
      throw new ProtocolError(`${this.provider} sent a stream event that is not JSON: ${message.data.slice(0, 120)}`);
    }
    switch (type) {
      case 'messageStart':
        out.push({ type: 'start' });
        break;
      case 'contentBlockStart': {
        const start = (event.start ?? {}) as WireContentBlock;
        if (start.toolUse) this.openTool(event.contentBlockIndex as number, start.toolUse, '', out);
        break;
      }
      case 'contentBlockDelta': {
        const index = event.contentBlockIndex as number;
        const delta = (event.delta ?? {}) as { text?: string; toolUse?: { input?: string }; reasoningContent?: { text?: string; signature?: string } };
        if (delta.text) out.push({ type: 'text-delta', text: delta.text });
        else if (delta.toolUse) {
          const toolIndex = this.toolIndex.get(index);
          if (toolIndex === undefined) throw new ProtocolError(`${this.provider} sent tool input for content block ${index}, which began no tool call.`);
          if (delta.toolUse.input) out.push({ type: 'tool-call-delta', index: toolIndex, argumentsDelta: delta.toolUse.input });
        } else if (delta.reasoningContent) {
          const r = delta.reasoningContent;
          if (r.text) out.push({ type: 'reasoning-delta', text: r.text });
          if (r.signature) out.push({ type: 'reasoning-delta', text: '', signature: r.signature });
        }
        break;
      }
      case 'messageStop': {
        const raw = event.stopReason as string | undefined;
        if (raw) out.push({ type: 'finish', reason: mapBedrockFinish(raw), rawReason: raw });
        break;
      }
      case 'metadata': {
        const usage = event.usage as BedrockUsage | undefined;
        if (usage) {
          const ev: ProtocolEvent = { type: 'usage', usage: readBedrockUsage(usage), raw: usage };
          // The simulator's llama.cpp-style `timings` on the metadata event.
          const timing = readTimings(event.timings as WireTimings | undefined);
          if (timing) ev.timing = timing;
          out.push(ev);
        }
        this.done = true;
        break;
      }
      default:
        // contentBlockStop and event types added later carry nothing we need.
        break;
    }
  }

  private openTool(index: number, tool: NonNullable<WireContentBlock['toolUse']>, args: string, out: ProtocolEvent[]): void {
    const toolIndex = this.toolIndex.size;
    this.toolIndex.set(index, toolIndex);
    out.push({ type: 'tool-call-delta', index: toolIndex, id: tool.toolUseId, name: tool.name, argumentsDelta: args });
  }

  readWhole(body: { output?: { message?: { content?: WireContentBlock[] } }; stopReason?: string; usage?: BedrockUsage }, out: ProtocolEvent[]): void {
    out.push({ type: 'start' });
    (body.output?.message?.content ?? []).forEach((block, index) => {
      if (block.text) out.push({ type: 'text-delta', text: block.text });
      else if (block.toolUse) this.openTool(index, block.toolUse, JSON.stringify(block.toolUse.input ?? {}), out);
      else if (block.reasoningContent?.reasoningText) {
        const r = block.reasoningContent.reasoningText;
        const event: ProtocolEvent = { type: 'reasoning-delta', text: r.text ?? '' };
        if (r.signature) event.signature = r.signature;
        out.push(event);
      }
    });
    if (body.stopReason) out.push({ type: 'finish', reason: mapBedrockFinish(body.stopReason), rawReason: body.stopReason });
    if (body.usage) out.push({ type: 'usage', usage: readBedrockUsage(body.usage), raw: body.usage });
    this.done = true;
  }
}

/** Event-stream frames as the messages the reader takes: exceptions as `exception:<type>`. */
class BedrockFrames implements FrameDecoder {
  private readonly decoder = new EventStreamDecoder();
  push(bytes: Uint8Array): SSEMessage[] {
    return this.decoder.push(bytes).map((f) => ({ event: f.messageType === 'exception' ? `exception:${f.type}` : f.type, data: f.payload }));
  }
  get pending(): number {
    return this.decoder.pending;
  }
}

/** `x-amzn-ErrorType: ValidationException:http://internal.amazon.com/...` to `ValidationException`. */
function errorType(headers: Headers | undefined, body: { __type?: string }): string | undefined {
  const raw = headers?.get('x-amzn-errortype') ?? body.__type;
  return raw?.split(':')[0]?.split('#').pop();
}

export const bedrockProtocol: Protocol = {
  name: 'bedrock',
  streamContentType: BEDROCK_STREAM_TYPE,

  buildRequest(request: CanonicalRequest, endpoint: Endpoint): WireRequest {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: request.stream ? BEDROCK_STREAM_TYPE : 'application/json',
    };
    Object.assign(headers, endpoint.headers);
    const method = request.stream ? 'converse-stream' : 'converse';
    const geography = endpoint.compat.inferenceGeography;
    const model = geography && request.model.startsWith('anthropic.') ? `${geography}.${request.model}` : request.model;
    return {
      url: `${endpoint.baseURL}/model/${encodeURIComponent(model)}/${method}`,
      headers,
      body: JSON.stringify(buildBedrockBody(request)),
    };
  },

  createStreamReader(endpoint: Endpoint): StreamReader {
    return new BedrockReader(endpoint.provider);
  },

  createFrameDecoder(): FrameDecoder {
    return new BedrockFrames();
  },

  parseResponse(body: unknown, endpoint?: Endpoint): ProtocolEvent[] {
    const out: ProtocolEvent[] = [];
    new BedrockReader(endpoint?.provider ?? 'bedrock').readWhole(body as Parameters<BedrockReader['readWhole']>[0], out);
    return out;
  },

  parseErrorBody(text: string, headers?: Headers) {
    try {
      const parsed = JSON.parse(text) as { message?: string; Message?: string; __type?: string };
      const message = parsed.message ?? parsed.Message;
      if (message) return { message, code: errorType(headers, parsed) };
    } catch {
      // not JSON: the raw text is the message
    }
    return { message: text.slice(0, 500), code: errorType(headers, {}) };
  },
};
