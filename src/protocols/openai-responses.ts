/**
 * OpenAI Responses API, client half (`POST {baseURL}/responses`). Requests replay the whole
 * history as input items (system and user messages, `function_call` and
 * `function_call_output` items) with `store: false`, so no state is kept at OpenAI; streams
 * are typed events (`response.output_text.delta`, `response.function_call_arguments.delta`,
 * ... `response.completed`). The API has no stop sequences or seed: those parameters are
 * refused rather than dropped.
 */
import { InvalidInputError, StreamError } from '../errors.js';
import type { CanonicalRequest, ContentPart, FinishReason, ProtocolEvent, TokenUsage } from '../types.js';
import { openaiProtocol } from './openai.js';
import type { Endpoint, Protocol, SSEMessage, StreamReader, WireRequest } from './protocol.js';

export interface ResponsesUsage {
  input_tokens?: number;
  input_tokens_details?: { cached_tokens?: number } | null;
  output_tokens?: number;
  output_tokens_details?: { reasoning_tokens?: number } | null;
  total_tokens?: number;
}

interface OutputItem {
  type?: string;
  id?: string;
  call_id?: string;
  name?: string;
  arguments?: string;
  content?: { type?: string; text?: string; refusal?: string; annotations?: unknown[] }[];
  summary?: { type?: string; text?: string }[];
}

interface WireResponse {
  id?: string;
  model?: string;
  status?: string;
  output?: OutputItem[];
  usage?: ResponsesUsage | null;
  incomplete_details?: { reason?: string } | null;
  error?: { code?: string; message?: string } | null;
}

/** Responses usage into the canonical convention (input includes cached; output includes reasoning). */
export function readResponsesUsage(usage: ResponsesUsage): TokenUsage {
  const prompt = usage.input_tokens ?? 0;
  const completion = usage.output_tokens ?? 0;
  const out: TokenUsage = { promptTokens: prompt, completionTokens: completion, totalTokens: usage.total_tokens ?? prompt + completion };
  const cached = usage.input_tokens_details?.cached_tokens;
  if (cached !== undefined) out.cachedTokens = cached;
  const reasoning = usage.output_tokens_details?.reasoning_tokens;
  if (reasoning !== undefined) out.reasoningTokens = reasoning;
  return out;
}

/** A Responses annotation (`{ type: 'url_citation', url, title, ... }`) in the canonical url_citation shape. */
export function canonicalAnnotation(annotation: unknown): unknown {
  const a = annotation as { type?: string; url?: string; title?: string; start_index?: number; end_index?: number };
  if (a?.type !== 'url_citation') return annotation;
  return { type: 'url_citation', url_citation: { url: a.url, title: a.title, start_index: a.start_index, end_index: a.end_index } };
}

/** The finish reason of a finished response. */
export function responsesFinish(response: WireResponse, toolCalls: number): { reason: FinishReason; raw: string } {
  const raw = response.status === 'incomplete' ? (response.incomplete_details?.reason ?? 'incomplete') : (response.status ?? 'completed');
  if (raw === 'max_output_tokens') return { reason: 'length', raw };
  if (raw === 'content_filter') return { reason: 'content-filter', raw };
  if (response.status === 'failed') return { reason: 'error', raw };
  return { reason: toolCalls > 0 ? 'tool-calls' : 'stop', raw };
}

function failure(error: WireResponse['error'], provider: string): StreamError {
  return new StreamError('server', { status: 500, provider, providerMessage: error?.message ?? 'the response failed', providerCode: error?.code });
}

function inputPart(part: ContentPart): Record<string, unknown> {
  switch (part.type) {
    case 'text':
      return { type: 'input_text', text: part.text };
    case 'image_url': {
      const out: Record<string, unknown> = { type: 'input_image', image_url: part.image_url.url };
      if (part.image_url.detail) out.detail = part.image_url.detail;
      return out;
    }
    case 'file': {
      const url = part.file.file_data;
      const out: Record<string, unknown> = url.startsWith('data:') ? { type: 'input_file', file_data: url } : { type: 'input_file', file_url: url };
      if (part.file.filename !== undefined) out.filename = part.file.filename;
      return out;
    }
    case 'input_audio':
      throw new InvalidInputError('The OpenAI Responses API does not take audio input; use a Chat Completions model for audio.');
  }
}

export function buildResponsesBody(request: CanonicalRequest): Record<string, unknown> {
  const { params } = request;
  if (params.stop !== undefined) throw new InvalidInputError('The OpenAI Responses API has no stop sequences; remove `stop` or use a Chat Completions model.');
  const input: Record<string, unknown>[] = [];
  for (const m of request.messages) {
    switch (m.role) {
      case 'system':
        input.push({ role: 'system', content: m.content });
        break;
      case 'user':
        input.push({ role: 'user', content: typeof m.content === 'string' ? m.content : m.content.map(inputPart) });
        break;
      case 'assistant':
        if (m.content) input.push({ role: 'assistant', content: m.content });
        for (const call of m.tool_calls ?? []) input.push({ type: 'function_call', call_id: call.id, name: call.function.name, arguments: call.function.arguments });
        break;
      case 'tool':
        input.push({ type: 'function_call_output', call_id: m.tool_call_id, output: m.content });
        break;
    }
  }
  const body: Record<string, unknown> = { model: request.model, input, store: false };
  if (request.stream) body.stream = true;
  if (params.temperature !== undefined) body.temperature = params.temperature;
  if (params.topP !== undefined) body.top_p = params.topP;
  if (params.maxTokens !== undefined) body.max_output_tokens = params.maxTokens;
  const tools: Record<string, unknown>[] = (params.tools ?? []).map((t) => {
    const tool: Record<string, unknown> = { type: 'function', name: t.name, parameters: t.parameters, strict: false };
    if (t.description !== undefined) tool.description = t.description;
    return tool;
  });
  if (params.webSearch) tools.push({ type: 'web_search' });
  if (tools.length > 0) body.tools = tools;
  if (params.toolChoice !== undefined) body.tool_choice = typeof params.toolChoice === 'string' ? params.toolChoice : { type: 'function', name: params.toolChoice.name };
  const format = params.responseFormat;
  if (format?.type === 'json_schema') {
    const spec = (format.json_schema ?? {}) as { name?: unknown; schema?: unknown; strict?: unknown };
    const out: Record<string, unknown> = { type: 'json_schema', name: typeof spec.name === 'string' ? spec.name : 'response', schema: spec.schema };
    if (typeof spec.strict === 'boolean') out.strict = spec.strict;
    body.text = { format: out };
  } else if (format?.type === 'json_object') body.text = { format: { type: 'json_object' } };
  if (params.reasoning) {
    const reasoning: Record<string, unknown> = { summary: 'auto' };
    if (params.reasoning.effort) reasoning.effort = params.reasoning.effort;
    body.reasoning = reasoning;
  }
  if (params.extraBody) Object.assign(body, params.extraBody);
  return body;
}

/** Events of one whole response, in output order. */
function responseEvents(response: WireResponse): ProtocolEvent[] {
  const out: ProtocolEvent[] = [{ type: 'start', model: response.model, id: response.id }];
  let calls = 0;
  for (const item of response.output ?? []) {
    if (item.type === 'reasoning') {
      const text = (item.summary ?? []).map((s) => s.text ?? '').join('');
      if (text) out.push({ type: 'reasoning-delta', text });
    } else if (item.type === 'message') {
      for (const part of item.content ?? []) {
        if (part.type === 'output_text' && part.text) out.push({ type: 'text-delta', text: part.text });
        if (part.annotations?.length) out.push({ type: 'annotations', annotations: part.annotations.map(canonicalAnnotation) });
      }
    } else if (item.type === 'function_call') {
      out.push({ type: 'tool-call-delta', index: calls++, id: item.call_id, name: item.name, argumentsDelta: item.arguments ?? '' });
    }
  }
  const finish = responsesFinish(response, calls);
  out.push({ type: 'finish', reason: finish.reason, rawReason: finish.raw });
  if (response.usage) out.push({ type: 'usage', usage: readResponsesUsage(response.usage), raw: response.usage });
  return out;
}

class ResponsesStreamReader implements StreamReader {
  done = false;
  /** Output item id to tool-call index. */
  private readonly calls = new Map<string, number>();
  constructor(private readonly provider: string) {}

  onEvent(message: SSEMessage, out: ProtocolEvent[]): void {
    if (message.data === '' || message.data === '[DONE]') return;
    let event: Record<string, unknown> & { type?: string };
    try {
      event = JSON.parse(message.data) as typeof event;
    } catch {
      throw new StreamError('protocol', { status: 200, provider: this.provider, providerMessage: `a stream event was not JSON: ${message.data.slice(0, 120)}` });
    }
    switch (event.type ?? message.event) {
      case 'response.created': {
        const response = (event.response ?? {}) as WireResponse;
        out.push({ type: 'start', model: response.model, id: response.id });
        break;
      }
      case 'response.output_text.delta':
        if (typeof event.delta === 'string' && event.delta) out.push({ type: 'text-delta', text: event.delta });
        break;
      case 'response.reasoning_summary_text.delta':
        if (typeof event.delta === 'string' && event.delta) out.push({ type: 'reasoning-delta', text: event.delta });
        break;
      case 'response.output_item.added': {
        const item = (event.item ?? {}) as OutputItem;
        if (item.type === 'function_call') {
          const index = this.calls.size;
          this.calls.set(item.id ?? String(index), index);
          out.push({ type: 'tool-call-delta', index, id: item.call_id, name: item.name, argumentsDelta: item.arguments ?? '' });
        }
        break;
      }
      case 'response.function_call_arguments.delta': {
        const index = this.calls.get(String(event.item_id));
        if (index !== undefined && typeof event.delta === 'string' && event.delta) out.push({ type: 'tool-call-delta', index, argumentsDelta: event.delta });
        break;
      }
      case 'response.output_text.annotation.added':
        out.push({ type: 'annotations', annotations: [canonicalAnnotation(event.annotation)] });
        break;
      case 'response.completed':
      case 'response.incomplete': {
        const response = (event.response ?? {}) as WireResponse;
        const finish = responsesFinish(response, this.calls.size);
        out.push({ type: 'finish', reason: finish.reason, rawReason: finish.raw });
        if (response.usage) out.push({ type: 'usage', usage: readResponsesUsage(response.usage), raw: response.usage });
        this.done = true;
        break;
      }
      case 'response.failed':
        throw failure(((event.response ?? {}) as WireResponse).error, this.provider);
      case 'error':
        throw new StreamError('server', { status: 500, provider: this.provider, providerMessage: String(event.message ?? 'error inside the stream'), providerCode: typeof event.code === 'string' ? event.code : undefined });
      default:
        // in_progress, content_part.*, *.done and event types added later carry nothing new.
        break;
    }
  }
}

export const openaiResponsesProtocol: Protocol = {
  name: 'openai-responses',

  buildRequest(request: CanonicalRequest, endpoint: Endpoint): WireRequest {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: request.stream ? 'text/event-stream' : 'application/json' };
    if (endpoint.apiKey) headers.authorization = `Bearer ${endpoint.apiKey}`;
    Object.assign(headers, endpoint.headers);
    return { url: `${endpoint.baseURL}/responses`, headers, body: JSON.stringify(buildResponsesBody(request)) };
  },

  createStreamReader: (endpoint) => new ResponsesStreamReader(endpoint.provider),

  parseResponse(body: unknown): ProtocolEvent[] {
    const response = body as WireResponse & { error?: { message?: string; code?: string } | null };
    if (response.status === 'failed') throw failure(response.error, 'openai');
    return responseEvents(response);
  },

  parseErrorBody: (text) => openaiProtocol.parseErrorBody(text),
};
