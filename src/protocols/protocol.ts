import type { SwitchboardError } from '../errors.js';
import type { CanonicalRequest, FinishReason, ProtocolEvent, TokenUsage } from '../types.js';
import type { GenerationTiming } from './timings.js';

/** Wire protocols: OpenAI Chat Completions, OpenAI Responses, Anthropic Messages, Gemini generateContent, Bedrock Converse. */
export type ProtocolName = 'openai' | 'openai-responses' | 'anthropic' | 'gemini' | 'bedrock';

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
  /**
   * OpenAI protocol: speak the Responses API instead of Chat Completions, for every model
   * (`always`) or for the models the catalog lists as Responses-only (`when-required`).
   */
  responsesAPI?: 'always' | 'when-required';
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

// ---------------------------------------------------------------------------------------------
// Server halves: the same wire formats read from the other side (a request arrives, a response
// goes out). Used by the simulator and the gateway. Pure translation: no HTTP, no routing, no I/O.

/** Protocols a server half can speak (every client protocol). */
export type ServerProtocolName = ProtocolName;

/** What a server half needs besides the body. */
export interface ServerRequestContext {
  /** Model named in the path (Gemini `/v1beta/models/{model}:generateContent`). */
  pathModel?: string;
  /** Whether the path asked for a stream (Gemini `:streamGenerateContent`). */
  pathStream?: boolean;
  /** Parse for a token-counting endpoint: generation-only requirements (`max_tokens`) are waived. */
  counting?: boolean;
  headers: Record<string, string | string[] | undefined>;
}

/** A parsed, validated wire request. `model` is the string the client sent, untouched. */
export interface ServerRequest {
  model: string;
  stream: boolean;
  request: CanonicalRequest;
  /** OpenAI `stream_options.include_usage`: a final chunk with usage (and `usage: null` before it). */
  includeUsage?: boolean;
  /** Candidates asked for (OpenAI `n`, Gemini `candidateCount`); 1 when absent. */
  choices?: number;
  /** Responses API: the earlier response this one continues (resolved by whoever keeps responses). */
  previousResponseId?: string;
}

/** A refused request, in the provider's own vocabulary: HTTP status, error type, offending field. */
export class WireRequestError extends Error {
  constructor(
    readonly status: number,
    /** The provider's error type (`invalid_request_error`, `INVALID_ARGUMENT`, ...). */
    readonly type: string,
    message: string,
    readonly param?: string,
    /** OpenAI's `code` (`invalid_api_key`, `model_not_found`) or Gemini's reason; optional. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'WireRequestError';
  }
}

/** What a response is about, known before its first event. */
export interface ResponseMeta {
  /** The response id without any protocol prefix (the writer adds `chatcmpl-`, `msg_`, ...). */
  id: string;
  model: string;
  /** Unix seconds. */
  created: number;
  provider?: string;
  /** Input tokens, when known up front (Anthropic reports them in `message_start`). */
  promptTokens?: number;
  /** OpenAI: send the final usage chunk (and `usage: null` on every chunk before it). */
  includeUsage?: boolean;
}

/** How a response ended, for the frames after the last event. */
export interface StreamEnd {
  usage?: TokenUsage;
  /** US dollars, when known (OpenRouter-style `usage.cost`). */
  cost?: number | null;
  finishReason: FinishReason;
  /** The provider's own finish reason to send back (`stop_sequence`), when it differs from the mapping. */
  rawFinishReason?: string;
  /** The stop sequence that ended the reply (Anthropic `stop_sequence`). */
  stopSequence?: string;
  /** The server's own generation timing, written as llama.cpp's `timings` on the last event (the simulator's `timings` option). */
  timing?: GenerationTiming;
}

/** One candidate reply of several. */
export interface ResponseChoice {
  events: readonly ProtocolEvent[];
  end?: StreamEnd;
}

/** Turns canonical events into one protocol's stream, frame by frame (strings ready to write). */
export interface StreamWriter {
  /** `text/event-stream` (or `application/json` for a Gemini stream without `alt=sse`). */
  readonly contentType: string;
  /**
   * How to write the frames: `latin1` means each character is one byte of a binary frame
   * (Bedrock's event stream), to be written with that encoding. Absent: UTF-8 text.
   */
  readonly encoding?: 'latin1';
  /** Frames to send before any event ('' if none). */
  start(): string;
  write(events: readonly ProtocolEvent[]): string;
  /** The final frames: finish reason, usage, the terminator (`[DONE]`, `message_stop`). */
  end(result: StreamEnd): string;
  /** The protocol's mid-stream error frame; never followed by a clean terminator. */
  error(error: SwitchboardError | WireRequestError): string;
  /** An SSE comment the protocol's clients ignore. */
  keepAlive(): string;
}

/** A whole error response: status, headers (Retry-After) and body in the provider's shape. */
export interface WireErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** A model as a listing endpoint describes it. */
export interface ListedModel {
  id: string;
  displayName?: string;
  contextLength?: number;
  maxOutputTokens?: number;
  /** Unix seconds. */
  created?: number;
  ownedBy?: string;
  /** Dollars per million tokens (input, output), when known. */
  pricing?: { input: number; output: number };
}

export interface ProtocolServer {
  readonly name: ServerProtocolName;
  /** Read and validate a wire request; throws WireRequestError. */
  parseRequest(body: unknown, ctx: ServerRequestContext): ServerRequest;
  createStreamWriter(meta: ResponseMeta): StreamWriter;
  /** The whole (non-streamed) JSON body for a response's events. */
  /** `end` overrides the finish reason and usage the events carry (a stop sequence, say). */
  writeResponse(events: readonly ProtocolEvent[], meta: ResponseMeta, end?: StreamEnd): unknown;
  /**
   * Several candidates in one whole body (OpenAI `n`, Gemini `candidateCount`), where the
   * protocol has them; `total` is the usage (prompt counted once) and cost of all of them.
   */
  writeChoices?(choices: readonly ResponseChoice[], meta: ResponseMeta, total: { usage: TokenUsage; cost?: number | null }): unknown;
  writeError(error: SwitchboardError | WireRequestError): WireErrorResponse;
  /** The body of the protocol's model-listing endpoint. */
  writeModelList(models: readonly ListedModel[]): unknown;
  /** The body of the protocol's token-counting endpoint (undefined when it has none). */
  writeTokenCount?(tokens: number): unknown;
}
