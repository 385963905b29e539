/**
 * OpenAI Chat Completions, the protocol OpenRouter, OpenAI and most hosts speak.
 * Canonical messages already have this shape, so requests pass them through; responses
 * and stream chunks are read into canonical events with usage in the shared convention
 * (OpenAI's prompt_tokens already include cached tokens; completion_tokens include reasoning).
 */
import { StreamError } from '../errors.js';
import { readTimings, type WireTimings } from './timings.js';
import type { CanonicalRequest, FinishReason, ProtocolEvent, ProviderTiming, TokenUsage } from '../types.js';
import { addChatCompletionsBreakpoints } from './prompt-cache.js';
import type { Endpoint, Protocol, ProtocolCompat, SSEMessage, StreamReader, WireRequest } from './protocol.js';

interface WireUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  cost?: number;
  prompt_tokens_details?: { cached_tokens?: number; cache_write_tokens?: number } | null;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
  /** DeepSeek's names for cached and uncached prompt tokens. */
  prompt_cache_hit_tokens?: number;
  prompt_cache_miss_tokens?: number;
}

interface WireToolCallDelta {
  index?: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

/**
 * `content` as an array of parts, as Mistral sends it (Magistral's reasoning comes as
 * `thinking` parts holding text parts of their own).
 */
type WireContentPart = { type?: string; text?: string; thinking?: string | { type?: string; text?: string }[] };
type WireContent = string | WireContentPart[] | null;

interface WireChoice {
  index?: number;
  delta?: {
    content?: WireContent;
    reasoning?: string | null;
    reasoning_content?: string | null;
    tool_calls?: WireToolCallDelta[];
    annotations?: unknown[];
  };
  message?: {
    content?: WireContent;
    reasoning?: string | null;
    reasoning_content?: string | null;
    tool_calls?: WireToolCallDelta[];
    annotations?: unknown[];
  };
  finish_reason?: string | null;
  /** Azure: the content filters' verdicts for the choice (`{ hate: { filtered, severity }, ... }`). */
  content_filter_results?: Record<string, { filtered?: boolean }>;
}

interface WireChunk {
  id?: string;
  model?: string;
  provider?: string;
  choices?: WireChoice[];
  usage?: WireUsage | null;
  /** llama.cpp's own measurement of the request (`predicted_per_second`: output tokens/s). */
  timings?: WireTimings | null;
  error?: { message?: string; code?: string | number; type?: string; metadata?: unknown };
}

/** The provider's own output speed from llama.cpp's `timings`, when it is a usable number. */
function timingOf(chunk: WireChunk): ProviderTiming | undefined {
  return readTimings(chunk.timings);
}

const FINISH: Record<string, FinishReason> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool-calls',
  function_call: 'tool-calls',
  content_filter: 'content-filter',
  error: 'error',
};

export function mapOpenAIFinish(raw: string): FinishReason {
  return FINISH[raw] ?? 'other';
}

/** Read an OpenAI-shaped usage object into the canonical convention (`compat` for the host's own counting). */
export function readOpenAIUsage(usage: WireUsage, compat: ProtocolCompat = {}): TokenUsage {
  const reasoning = usage.completion_tokens_details?.reasoning_tokens;
  const completion = (usage.completion_tokens ?? 0) + (compat.completionExcludesReasoning ? reasoning ?? 0 : 0);
  const cachedFromDetails = usage.prompt_tokens_details?.cached_tokens;
  const cached = cachedFromDetails ?? usage.prompt_cache_hit_tokens;
  // Some hosts report only hit/miss counts; their sum is the whole prompt.
  const prompt =
    usage.prompt_tokens ??
    (usage.prompt_cache_hit_tokens ?? 0) + (usage.prompt_cache_miss_tokens ?? 0);
  const out: TokenUsage = {
    promptTokens: prompt,
    completionTokens: completion,
    totalTokens: compat.completionExcludesReasoning ? prompt + completion : usage.total_tokens ?? prompt + completion,
  };
  if (cached !== undefined) out.cachedTokens = cached;
  const cacheWrite = usage.prompt_tokens_details?.cache_write_tokens;
  if (cacheWrite !== undefined) out.cacheWriteTokens = cacheWrite;
  if (reasoning !== undefined) out.reasoningTokens = reasoning;
  return out;
}

function usageEvent(usage: WireUsage, compat: ProtocolCompat, timing?: ProviderTiming): ProtocolEvent {
  const event: ProtocolEvent = { type: 'usage', usage: readOpenAIUsage(usage, compat), raw: usage };
  if (timing) event.timing = timing;
  if (typeof usage.cost === 'number' && Number.isFinite(usage.cost) && usage.cost >= 0) event.cost = usage.cost;
  return event;
}

/** Text and reasoning of a message or delta's `content` and reasoning fields, in order. */
function pushContent(content: WireContent | undefined, reasoning: string | null | undefined, out: ProtocolEvent[]): void {
  if (reasoning) out.push({ type: 'reasoning-delta', text: reasoning });
  if (!content) return;
  if (typeof content === 'string') {
    out.push({ type: 'text-delta', text: content });
    return;
  }
  for (const part of content) {
    if (part.type === 'text' && part.text) out.push({ type: 'text-delta', text: part.text });
    else if (part.type === 'thinking') {
      const thinking = typeof part.thinking === 'string' ? part.thinking : (part.thinking ?? []).map((p) => p.text ?? '').join('');
      if (thinking) out.push({ type: 'reasoning-delta', text: thinking });
    }
  }
}

/** Azure's content filters, when one of them filtered the reply: kept as a `content_filter` annotation. */
function pushFilterResults(choice: WireChoice, out: ProtocolEvent[]): void {
  const results = choice.content_filter_results;
  if (results && Object.values(results).some((r) => r?.filtered === true)) {
    out.push({ type: 'annotations', annotations: [{ type: 'content_filter', content_filter_results: results }] });
  }
}

function streamError(chunk: WireChunk, provider = 'provider'): StreamError {
  const err = chunk.error ?? {};
  const status = typeof err.code === 'number' ? err.code : 500;
  return new StreamError('server', {
    status,
    provider,
    providerMessage: err.message ?? 'error inside the stream',
    providerCode: typeof err.code === 'string' ? err.code : err.type,
  });
}

export function buildOpenAIBody(request: CanonicalRequest, endpoint: Endpoint): Record<string, unknown> {
  const { params } = request;
  const compat = endpoint.compat;
  const body: Record<string, unknown> = { model: request.model, messages: request.messages };
  if (request.stream) {
    body.stream = true;
    if (compat.streamUsage !== false) body.stream_options = { include_usage: true };
  }
  if (params.temperature !== undefined) body.temperature = params.temperature;
  if (params.topP !== undefined) body.top_p = params.topP;
  if (params.maxTokens !== undefined) body[compat.maxTokensField ?? 'max_tokens'] = params.maxTokens;
  if (params.stop !== undefined) body.stop = params.stop;
  if (params.seed !== undefined) body.seed = params.seed;
  if (params.responseFormat !== undefined) body.response_format = params.responseFormat;
  if (params.tools && params.tools.length > 0) {
    body.tools = params.tools.map((t) => ({
      type: 'function',
      function: { name: t.name, description: t.description, parameters: t.parameters },
    }));
  }
  if (params.toolChoice !== undefined) {
    body.tool_choice =
      typeof params.toolChoice === 'string'
        ? params.toolChoice
        : { type: 'function', function: { name: params.toolChoice.name } };
  }
  if (params.reasoning) {
    if (compat.reasoningFormat === 'openai') {
      if (params.reasoning.effort) body.reasoning_effort = params.reasoning.effort;
    } else if (compat.reasoningFormat !== 'none') {
      const r: Record<string, unknown> = {};
      if (params.reasoning.effort) r.effort = params.reasoning.effort;
      if (params.reasoning.maxTokens !== undefined) r.max_tokens = params.reasoning.maxTokens;
      body.reasoning = r;
    }
  }
  if (params.webSearch && compat.webPlugin) {
    const plugin: Record<string, unknown> = { id: 'web' };
    if (typeof params.webSearch === 'object') {
      if (params.webSearch.maxResults !== undefined) plugin.max_results = params.webSearch.maxResults;
      if (params.webSearch.engine !== undefined) plugin.engine = params.webSearch.engine;
    }
    body.plugins = [plugin];
  }
  if (compat.usageAccounting) body.usage = { include: true };
  if (compat.cacheMarkers) addChatCompletionsBreakpoints(body as Parameters<typeof addChatCompletionsBreakpoints>[0], params);
  if (params.extraBody) Object.assign(body, params.extraBody);
  return body;
}

class OpenAIStreamReader implements StreamReader {
  done = false;
  private started = false;
  /** llama.cpp sends `timings` on its last chunks; kept until the usage that goes with it. */
  private timing: ProviderTiming | undefined;
  constructor(
    private readonly provider: string,
    private readonly compat: ProtocolCompat,
  ) {}

  onEvent(message: SSEMessage, out: ProtocolEvent[]): void {
    const data = message.data;
    if (data === '[DONE]') {
      this.done = true;
      return;
    }
    if (data === '') return;
    let chunk: WireChunk;
    try {
      chunk = JSON.parse(data) as WireChunk;
    } catch {
      throw new StreamError('protocol', {
        status: 200,
        provider: this.provider,
        providerMessage: `a stream event was not JSON: ${data.slice(0, 120)}`,
      });
    }
    if (chunk.error) throw streamError(chunk, this.provider);
    if (!this.started) {
      this.started = true;
      out.push({ type: 'start', model: chunk.model, provider: chunk.provider, id: chunk.id });
    }
    const choice = chunk.choices?.[0];
    if (choice) {
      const delta = choice.delta;
      if (delta) {
        pushContent(delta.content, delta.reasoning ?? delta.reasoning_content, out);
        if (delta.tool_calls) {
          for (const call of delta.tool_calls) {
            out.push({
              type: 'tool-call-delta',
              index: call.index ?? 0,
              id: call.id,
              name: call.function?.name,
              argumentsDelta: call.function?.arguments ?? '',
            });
          }
        }
        if (delta.annotations && delta.annotations.length > 0) {
          out.push({ type: 'annotations', annotations: delta.annotations });
        }
      }
      pushFilterResults(choice, out);
      if (choice.finish_reason) {
        out.push({ type: 'finish', reason: mapOpenAIFinish(choice.finish_reason), rawReason: choice.finish_reason });
      }
    }
    this.timing = timingOf(chunk) ?? this.timing;
    if (chunk.usage) out.push(usageEvent(chunk.usage, this.compat, this.timing));
  }
}

export const openaiProtocol: Protocol = {
  name: 'openai',

  buildRequest(request: CanonicalRequest, endpoint: Endpoint): WireRequest {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: request.stream ? 'text/event-stream' : 'application/json' };
    if (endpoint.apiKey) headers.authorization = `Bearer ${endpoint.apiKey}`;
    Object.assign(headers, endpoint.headers);
    const query = endpoint.compat.query ? `?${new URLSearchParams(endpoint.compat.query).toString()}` : '';
    return {
      url: `${endpoint.baseURL}/chat/completions${query}`,
      headers,
      body: JSON.stringify(buildOpenAIBody(request, endpoint)),
    };
  },

  createStreamReader(endpoint: Endpoint): StreamReader {
    return new OpenAIStreamReader(endpoint.provider, endpoint.compat);
  },

  parseResponse(body: unknown, endpoint?: Endpoint): ProtocolEvent[] {
    const chunk = body as WireChunk;
    if (chunk.error) throw streamError(chunk, endpoint?.provider);
    const out: ProtocolEvent[] = [{ type: 'start', model: chunk.model, provider: chunk.provider, id: chunk.id }];
    const choice = chunk.choices?.[0];
    const message = choice?.message;
    if (message) {
      pushContent(message.content, message.reasoning ?? message.reasoning_content, out);
      message.tool_calls?.forEach((call, i) => {
        out.push({
          type: 'tool-call-delta',
          index: call.index ?? i,
          id: call.id,
          name: call.function?.name,
          argumentsDelta: call.function?.arguments ?? '',
        });
      });
      if (message.annotations && message.annotations.length > 0) {
        out.push({ type: 'annotations', annotations: message.annotations });
      }
    }
    if (choice) pushFilterResults(choice, out);
    if (choice?.finish_reason) {
      out.push({ type: 'finish', reason: mapOpenAIFinish(choice.finish_reason), rawReason: choice.finish_reason });
    }
    if (chunk.usage) out.push(usageEvent(chunk.usage, endpoint?.compat ?? {}, timingOf(chunk)));
    return out;
  },

  parseErrorBody(text: string) {
    try {
      const parsed = JSON.parse(text) as { error?: { message?: string; type?: string; code?: unknown; metadata?: { raw?: unknown } } | string; message?: string };
      if (typeof parsed.error === 'string') return { message: parsed.error };
      if (parsed.error) {
        const raw = parsed.error.metadata?.raw;
        const extra = typeof raw === 'string' && raw && raw !== parsed.error.message ? ` (${raw.slice(0, 300)})` : '';
        return {
          message: (parsed.error.message ?? text) + extra,
          code: parsed.error.type ?? (typeof parsed.error.code === 'string' ? parsed.error.code : undefined),
        };
      }
      if (parsed.message) return { message: parsed.message };
    } catch {
      // not JSON: fall through to the raw text
    }
    return { message: text.slice(0, 500) };
  },
};
