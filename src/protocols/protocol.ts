import type { CanonicalRequest, ProtocolEvent } from '../types.js';

export type ProtocolName = 'openai' | 'anthropic' | 'gemini' | 'bedrock';

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
  /**
   * The host's `completion_tokens` leaves out `completion_tokens_details.reasoning_tokens`
   * (xAI): they are added, so completion tokens count every output token as elsewhere.
   */
  completionExcludesReasoning?: boolean;
  /** Query parameters every request URL carries (Azure's `api-version`). */
  query?: Record<string, string>;
  /**
   * Vertex AI addressing: the base URL is a publisher's models path; Gemini appends
   * `/{model}:generateContent`, Anthropic `/{model}:rawPredict` with the model out of the body
   * and Vertex's `anthropic_version` in it.
   */
  vertex?: boolean;
  /**
   * Bedrock: the cross-region inference profile (`us`, `eu`, `apac`) through which Anthropic
   * models named by their in-region id (`anthropic.claude-...`) are called; newer Claude
   * models are only served through a profile.
   */
  inferenceGeography?: string;
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
  /**
   * Signs or authorizes a built request just before it is sent: SigV4 for Bedrock, an OAuth
   * access token for Vertex. Throws a typed error naming what to set when credentials are missing.
   */
  authorize?: (wire: WireRequest) => Promise<WireRequest>;
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

/** Cuts a stream that is not SSE into messages (Bedrock's binary event stream). */
export interface FrameDecoder {
  push(bytes: Uint8Array): SSEMessage[];
  /** Bytes of a frame not yet whole: the stream was cut if any remain at its end. */
  readonly pending: number;
}

/** A wire protocol: pure translation between canonical requests/events and wire JSON. */
export interface Protocol {
  readonly name: ProtocolName;
  /** The content type of a streamed reply when it is not `text/event-stream`. */
  readonly streamContentType?: string;
  /** Frames of a stream that is not SSE; without it, the stream is read as SSE. */
  createFrameDecoder?(): FrameDecoder;
  buildRequest(request: CanonicalRequest, endpoint: Endpoint): WireRequest;
  createStreamReader(endpoint: Endpoint): StreamReader;
  /** Translate a whole (non-streamed) response body into canonical events (`endpoint` for its provider and compat). */
  parseResponse(body: unknown, endpoint?: Endpoint): ProtocolEvent[];
  /** Pull the provider's message and error type out of an error response body (and its headers). */
  parseErrorBody(text: string, headers?: Headers): { message: string; code?: string | undefined };
}
