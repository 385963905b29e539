/**
 * The server half of Bedrock's Converse API: reads a Converse request (the model and whether
 * it streams come from the path, `/model/{modelId}/converse` or `/converse-stream`), writes
 * ConverseStream as binary event-stream frames and Converse as JSON, and errors as Bedrock
 * sends them (`x-amzn-errortype` and `{ message }`; inside a stream, an exception frame).
 *
 * Frames are binary; the writer hands them out as `latin1` strings (one character per byte),
 * which its `encoding` tells the caller to write as such.
 */
import { APIError, type SwitchboardError } from '../errors.js';
import type { ContentPart, Message, ProtocolEvent, RequestParams, TokenUsage, ToolCall } from '../types.js';
import { encodeEvent, encodeException } from './eventstream.js';
import { BEDROCK_STREAM_TYPE } from './bedrock.js';
import { writeTimings } from './timings.js';
import { WireRequestError, type ListedModel, type ProtocolServer, type ResponseMeta, type ServerRequest, type ServerRequestContext, type StreamEnd, type StreamWriter } from './protocol.js';
import { argumentsObject, asRecord, collectEvents, errorMessage, errorStatus, retryHeaders, stopReason } from './server-common.js';

function invalid(message: string): WireRequestError {
  return new WireRequestError(400, 'ValidationException', message);
}

const IMAGE_TYPES: Record<string, string> = { png: 'image/png', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp' };
const DOCUMENT_TYPES: Record<string, string> = {
  pdf: 'application/pdf', csv: 'text/csv', txt: 'text/plain', md: 'text/markdown', html: 'text/html', doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', xls: 'application/vnd.ms-excel',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

function bytesOf(source: unknown, where: string): string {
  const bytes = asRecord(source)?.bytes;
  if (typeof bytes !== 'string' || bytes === '') throw invalid(`${where}.source.bytes: a base64 string is required`);
  return bytes;
}

function toolResultText(content: unknown, where: string): string {
  if (!Array.isArray(content)) throw invalid(`${where}.content: a list of content blocks is required`);
  return content
    .map((c: unknown, i) => {
      const block = asRecord(c);
      if (typeof block?.text === 'string') return block.text;
      if (block?.json !== undefined) return JSON.stringify(block.json);
      throw invalid(`${where}.content.${i}: a text or json block is required`);
    })
    .join('');
}

/** One Converse message as canonical messages (a user turn with tool results becomes tool messages). */
function readMessage(raw: unknown, i: number): Message[] {
  const where = `messages.${i}`;
  const m = asRecord(raw);
  if (!m || (m.role !== 'user' && m.role !== 'assistant')) throw invalid(`${where}.role: Member must satisfy enum value set: [user, assistant]`);
  if (!Array.isArray(m.content) || m.content.length === 0) throw invalid(`${where}.content: Member must have length greater than or equal to 1`);
  const parts: ContentPart[] = [];
  const tools: Message[] = [];
  const calls: ToolCall[] = [];
  const reasoning: { text: string; signature?: string }[] = [];
  m.content.forEach((b: unknown, j) => {
    const at = `${where}.content.${j}`;
    const block = asRecord(b);
    if (typeof block?.text === 'string') parts.push({ type: 'text', text: block.text });
    else if (block?.image) {
      const image = asRecord(block.image);
      const type = IMAGE_TYPES[String(image?.format)];
      if (!type) throw invalid(`${at}.image.format: Member must satisfy enum value set: [png, jpeg, gif, webp]`);
      parts.push({ type: 'image_url', image_url: { url: `data:${type};base64,${bytesOf(image?.source, `${at}.image`)}` } });
    } else if (block?.document) {
      const doc = asRecord(block.document);
      const type = DOCUMENT_TYPES[String(doc?.format)];
      if (!type) throw invalid(`${at}.document.format: Member must satisfy enum value set: [${Object.keys(DOCUMENT_TYPES).join(', ')}]`);
      if (typeof doc?.name !== 'string' || doc.name === '') throw invalid(`${at}.document.name: a name is required`);
      parts.push({ type: 'file', file: { filename: doc.name, file_data: `data:${type};base64,${bytesOf(doc.source, `${at}.document`)}` } });
    } else if (block?.toolUse) {
      const use = asRecord(block.toolUse);
      if (typeof use?.toolUseId !== 'string' || typeof use.name !== 'string') throw invalid(`${at}.toolUse: toolUseId and name are required`);
      calls.push({ id: use.toolUseId, type: 'function', function: { name: use.name, arguments: JSON.stringify(use.input ?? {}) } });
    } else if (block?.toolResult) {
      const result = asRecord(block.toolResult);
      if (typeof result?.toolUseId !== 'string') throw invalid(`${at}.toolResult.toolUseId: a tool use id is required`);
      tools.push({ role: 'tool', tool_call_id: result.toolUseId, content: toolResultText(result.content, `${at}.toolResult`) });
    } else if (block?.reasoningContent) {
      const text = asRecord(asRecord(block.reasoningContent)?.reasoningText);
      const detail: { text: string; signature?: string } = { text: typeof text?.text === 'string' ? text.text : '' };
      if (typeof text?.signature === 'string') detail.signature = text.signature;
      reasoning.push(detail);
    } else throw invalid(`${at}: an unknown content block (expected text, image, document, toolUse, toolResult or reasoningContent)`);
  });
  if (m.role === 'user') {
    if (parts.length === 0) return tools;
    const allText = parts.every((p) => p.type === 'text');
    return [...tools, { role: 'user', content: allText ? parts.map((p) => (p as { text: string }).text).join('') : parts }];
  }
  const text = parts.map((p) => (p.type === 'text' ? p.text : '')).join('');
  const message: Message & { reasoning_details?: typeof reasoning } = { role: 'assistant', content: text === '' && calls.length > 0 ? null : text };
  if (calls.length > 0) message.tool_calls = calls;
  if (reasoning.some((r) => r.signature !== undefined)) message.reasoning_details = reasoning;
  return [message];
}

function readNumber(record: Record<string, unknown>, field: string, min: number, max: number): number | undefined {
  const value = record[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || value < min || value > max) throw invalid(`inferenceConfig.${field}: Member must be between ${min} and ${max}`);
  return value;
}

function parseRequest(body: unknown, ctx: ServerRequestContext): ServerRequest {
  const model = ctx.pathModel;
  if (!model) throw invalid('The model id is missing from the path (/model/{modelId}/converse).');
  const record = asRecord(body);
  if (!record) throw invalid('The request body must be a JSON object.');
  if (!Array.isArray(record.messages) || record.messages.length === 0) throw invalid('messages: Member must have length greater than or equal to 1');
  const messages: Message[] = [];
  if (record.system !== undefined) {
    if (!Array.isArray(record.system)) throw invalid('system: a list of system content blocks is required');
    const text = record.system.map((s: unknown) => asRecord(s)?.text).filter((t): t is string => typeof t === 'string').join('\n\n');
    if (text !== '') messages.push({ role: 'system', content: text });
  }
  record.messages.forEach((m, i) => messages.push(...readMessage(m, i)));
  const params: RequestParams = {};
  const inference = asRecord(record.inferenceConfig);
  if (inference) {
    if (inference.maxTokens !== undefined) {
      if (typeof inference.maxTokens !== 'number' || !Number.isInteger(inference.maxTokens) || inference.maxTokens < 1) throw invalid('inferenceConfig.maxTokens: Member must be greater than or equal to 1');
      params.maxTokens = inference.maxTokens;
    }
    const temperature = readNumber(inference, 'temperature', 0, 1);
    if (temperature !== undefined) params.temperature = temperature;
    const topP = readNumber(inference, 'topP', 0, 1);
    if (topP !== undefined) params.topP = topP;
    const stop = inference.stopSequences;
    if (stop !== undefined) {
      if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string')) throw invalid('inferenceConfig.stopSequences: a list of strings is required');
      if (stop.length > 0) params.stop = stop as string[];
    }
  }
  const toolConfig = asRecord(record.toolConfig);
  if (toolConfig) {
    if (!Array.isArray(toolConfig.tools)) throw invalid('toolConfig.tools: a list of tools is required');
    params.tools = toolConfig.tools.map((t: unknown, i) => {
      const spec = asRecord(asRecord(t)?.toolSpec);
      const schema = asRecord(asRecord(spec?.inputSchema)?.json);
      if (typeof spec?.name !== 'string' || !schema) throw invalid(`toolConfig.tools.${i}.toolSpec: name and inputSchema.json are required`);
      return typeof spec.description === 'string' ? { name: spec.name, description: spec.description, parameters: schema } : { name: spec.name, parameters: schema };
    });
    const choice = asRecord(toolConfig.toolChoice);
    if (choice?.auto) params.toolChoice = 'auto';
    else if (choice?.any) params.toolChoice = 'required';
    else if (typeof asRecord(choice?.tool)?.name === 'string') params.toolChoice = { name: asRecord(choice?.tool)?.name as string };
  }
  const thinking = asRecord(asRecord(record.additionalModelRequestFields)?.thinking);
  if (thinking?.type === 'enabled' && typeof thinking.budget_tokens === 'number') params.reasoning = { maxTokens: thinking.budget_tokens };
  const stream = ctx.pathStream === true;
  return { model, stream, request: { model, messages, params, stream } };
}

/** Canonical usage in Bedrock's convention: inputTokens without the cache reads and writes. */
function bedrockUsage(usage: TokenUsage | undefined): Record<string, number> {
  const u = usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
  const out: Record<string, number> = {
    inputTokens: u.promptTokens - (u.cachedTokens ?? 0) - (u.cacheWriteTokens ?? 0),
    outputTokens: u.completionTokens,
    totalTokens: u.promptTokens + u.completionTokens,
  };
  if (u.cachedTokens !== undefined) out.cacheReadInputTokens = u.cachedTokens;
  if (u.cacheWriteTokens !== undefined) out.cacheWriteInputTokens = u.cacheWriteTokens;
  return out;
}

/** Bedrock's exception name for a status (the header value; streams use the camel-cased form). */
function exceptionType(status: number): string {
  if (status === 400) return 'ValidationException';
  if (status === 401 || status === 403) return 'AccessDeniedException';
  if (status === 404) return 'ResourceNotFoundException';
  if (status === 408) return 'ModelTimeoutException';
  if (status === 429) return 'ThrottlingException';
  if (status === 503) return 'ServiceUnavailableException';
  return 'InternalServerException';
}

function errorType(error: SwitchboardError | WireRequestError, status: number): string {
  if (error instanceof WireRequestError) return error.type;
  if (error instanceof APIError && error.providerCode && /Exception$/.test(error.providerCode)) return error.providerCode;
  return exceptionType(status);
}

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
const event = (type: string, payload: unknown): string => latin1(encodeEvent(type, payload));

class ConverseStreamWriter implements StreamWriter {
  readonly contentType = BEDROCK_STREAM_TYPE;
  readonly encoding = 'latin1' as const;
  private index = -1;
  private open: 'text' | 'tool' | 'reasoning' | undefined;
  private toolIndex = -1;

  start(): string {
    return event('messageStart', { role: 'assistant' });
  }

  private next(kind: 'text' | 'tool' | 'reasoning'): string {
    const frames = this.close();
    this.index++;
    this.open = kind;
    return frames;
  }

  private close(): string {
    if (this.open === undefined) return '';
    this.open = undefined;
    return event('contentBlockStop', { contentBlockIndex: this.index });
  }

  private delta(delta: Record<string, unknown>): string {
    return event('contentBlockDelta', { contentBlockIndex: this.index, delta });
  }

  write(events: readonly ProtocolEvent[]): string {
    let frames = '';
    for (const e of events) {
      if (e.type === 'text-delta') {
        if (this.open !== 'text') frames += this.next('text');
        frames += this.delta({ text: e.text });
      } else if (e.type === 'reasoning-delta') {
        if (this.open !== 'reasoning') frames += this.next('reasoning');
        if (e.text !== '') frames += this.delta({ reasoningContent: { text: e.text } });
        if (e.signature !== undefined) frames += this.delta({ reasoningContent: { signature: e.signature } });
      } else if (e.type === 'tool-call-delta') {
        if (this.open !== 'tool' || this.toolIndex !== e.index) {
          frames += this.next('tool');
          this.toolIndex = e.index;
          frames += event('contentBlockStart', { contentBlockIndex: this.index, start: { toolUse: { toolUseId: e.id ?? `tooluse_${e.index}`, name: e.name ?? '' } } });
        }
        if (e.argumentsDelta !== '') frames += this.delta({ toolUse: { input: e.argumentsDelta } });
      }
    }
    return frames;
  }

  end(result: StreamEnd): string {
    return this.close() + event('messageStop', { stopReason: stopReason(result, 'content_filtered') }) + event('metadata', { usage: bedrockUsage(result.usage), metrics: { latencyMs: 0 }, ...(result.timing ? { timings: writeTimings(result.timing) } : {}) });
  }

  error(error: SwitchboardError | WireRequestError): string {
    const type = errorType(error, errorStatus(error));
    return latin1(encodeException(type.charAt(0).toLowerCase() + type.slice(1), errorMessage(error)));
  }

  keepAlive(): string {
    // The event stream has no comment frames; an idle connection simply waits.
    return '';
  }
}

export const bedrockServer: ProtocolServer = {
  name: 'bedrock',

  parseRequest,

  createStreamWriter: (_meta: ResponseMeta) => new ConverseStreamWriter(),

  writeResponse(events, _meta, end) {
    const r = collectEvents(events, end);
    const content: Record<string, unknown>[] = r.reasoning.map((d) => ({ reasoningContent: { reasoningText: d.signature === undefined ? { text: d.text } : { text: d.text, signature: d.signature } } }));
    if (r.text !== '' || r.toolCalls.length === 0) content.push({ text: r.text });
    for (const c of r.toolCalls) content.push({ toolUse: { toolUseId: c.id, name: c.name, input: argumentsObject(c.arguments) } });
    return {
      output: { message: { role: 'assistant', content } },
      stopReason: stopReason({ finishReason: r.finishReason, rawFinishReason: r.rawFinishReason, stopSequence: end?.stopSequence }, 'content_filtered'),
      usage: bedrockUsage(r.usage),
      metrics: { latencyMs: 0 },
    };
  },

  writeError(error) {
    const status = errorStatus(error);
    return { status, headers: { ...retryHeaders(error), 'x-amzn-errortype': errorType(error, status) }, body: { message: errorMessage(error) } };
  },

  /** ListFoundationModels, as the Bedrock control plane answers it. */
  writeModelList(models: readonly ListedModel[]) {
    return {
      modelSummaries: models.map((m) => ({
        modelId: m.id,
        modelArn: `arn:aws:bedrock:us-east-1::foundation-model/${m.id}`,
        modelName: m.displayName ?? m.id,
        providerName: m.ownedBy ?? 'switchboard',
        inputModalities: ['TEXT'],
        outputModalities: ['TEXT'],
        responseStreamingSupported: true,
        inferenceTypesSupported: ['ON_DEMAND'],
      })),
    };
  },

  /** CountTokens (`POST /model/{modelId}/count-tokens`). */
  writeTokenCount: (tokens) => ({ inputTokens: tokens }),
};
