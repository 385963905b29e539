import type { CanonicalRequest, ProtocolEvent } from '../types.js';

export type ProtocolName = 'openai' | 'anthropic' | 'gemini';

/**
 * Differences between vendors that share one wire protocol, kept as data rather than
 * `if (provider === ...)` branches through the protocol code.
 */
export interface ProtocolCompat {
  /** Ask for usage in the last streamed chunk with `stream_options.include_usage` (OpenAI protocol). */
  streamUsage?: boolean;
  /** The body field that caps output tokens (`max_tokens` or `max_completion_tokens`). */
  maxTokensField?: 'max_tokens' | 'max_completion_tokens';
  /** How reasoning options are sent: OpenRouter's `reasoning` object or OpenAI's `reasoning_effort`. */
  reasoningFormat?: 'openrouter' | 'openai' | 'none';
  /** OpenRouter: web search through the `web` plugin (`plugins: [{ id: 'web' }]`). */
  webPlugin?: boolean;
  /** OpenRouter: ask for usage accounting (cost) in the response. */
  usageAccounting?: boolean;
  /** OpenRouter: `cache_control` breakpoints on Anthropic and Gemini models (see prompt-cache.ts). */
  cacheMarkers?: boolean;
}

/** One provider's address, credentials and quirks: what a protocol needs to send a request. */
export interface Endpoint {
  /** Provider name, e.g. `openrouter`, `sim-fast`. */
  provider: string;
  protocol: ProtocolName;
  /** Base URL without a trailing slash, e.g. `https://openrouter.ai/api/v1`. */
  baseURL: string;
  apiKey?: string;
  headers: Record<string, string>;
  compat: ProtocolCompat;
}

export interface WireRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** One server-sent event, as the SSE parser delivers it. */
export interface SSEMessage {
  event?: string | undefined;
  data: string;
}

/**
 * Reads one streamed response. `onEvent` appends canonical events to `out`; it throws a
 * typed error when the provider sends an error inside the stream. `done` turns true once
 * the protocol's terminator has been seen: a stream that closes before that is cut.
 */
export interface StreamReader {
  onEvent(message: SSEMessage, out: ProtocolEvent[]): void;
  readonly done: boolean;
}

/** A wire protocol: pure translation between canonical requests/events and wire JSON. */
export interface Protocol {
  readonly name: ProtocolName;
  buildRequest(request: CanonicalRequest, endpoint: Endpoint): WireRequest;
  createStreamReader(endpoint: Endpoint): StreamReader;
  /** Translate a whole (non-streamed) response body into canonical events. */
  parseResponse(body: unknown): ProtocolEvent[];
  /** Pull the provider's message and error type out of an error response body. */
  parseErrorBody(text: string): { message: string; code?: string | undefined };
}
