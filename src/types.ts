/**
 * The canonical vocabulary every layer speaks.
 *
 * History is plain JSON in the OpenAI Chat Completions message shape: users print it,
 * store it and send it elsewhere. Protocol modules translate it to and from their wire
 * formats; nothing provider-specific lives here.
 */

export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface TextPart {
  type: 'text';
  text: string;
}
export interface ImagePart {
  type: 'image_url';
  /** `url` is an http(s) URL or a `data:` URI. */
  image_url: { url: string; detail?: 'auto' | 'low' | 'high' };
}
export interface FilePart {
  type: 'file';
  /** `file_data` is a `data:` URI (base64) or an http(s) URL. */
  file: { filename?: string; file_data: string };
}
export interface AudioPart {
  type: 'input_audio';
  /** `data` is base64 without a `data:` prefix; `format` as OpenAI names it (`wav`, `mp3`, ...). */
  input_audio: { data: string; format: string };
}
export type ContentPart = TextPart | ImagePart | FilePart | AudioPart;

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface SystemMessage {
  role: 'system';
  content: string;
}
export interface UserMessage {
  role: 'user';
  content: string | ContentPart[];
}
export interface AssistantMessage {
  role: 'assistant';
  content: string | null;
  tool_calls?: ToolCall[];
}
export interface ToolMessage {
  role: 'tool';
  tool_call_id: string;
  content: string;
}
export type Message = SystemMessage | UserMessage | AssistantMessage | ToolMessage;

/**
 * Token counts for one turn or summed over turns. The same meaning for every provider:
 * `promptTokens` counts every input token (cached and cache-written included) and
 * `completionTokens` every output token (reasoning included); the breakdowns sit beside them.
 */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Input tokens read from the provider's prompt cache (part of promptTokens). */
  cachedTokens?: number;
  /** Input tokens written to the provider's prompt cache (part of promptTokens). */
  cacheWriteTokens?: number;
  /** Of the cache writes, those kept for an hour (Anthropic's `ttl: "1h"`, billed at its own rate). */
  cacheWrite1hTokens?: number;
  /** Output tokens spent on reasoning (part of completionTokens). */
  reasoningTokens?: number;
}

/** Token counts plus cost in US dollars; `cost` is null only when no price is known. */
export interface Usage extends TokenUsage {
  cost: number | null;
  /**
   * What caching saved against the uncached price, in US dollars: a response-cache hit saves
   * its whole original cost; a provider prompt cache the discount on cached input, less the
   * surcharge on cache writes (so a turn that only writes the cache saves a negative amount).
   * Absent when nothing was cached.
   */
  savedCost?: number;
}

export type FinishReason =
  | 'stop'
  | 'length'
  | 'tool-calls'
  | 'content-filter'
  | 'error'
  | 'other';

/** Events a protocol module yields while reading one response. */
export type ProtocolEvent =
  | { type: 'start'; model?: string; provider?: string; id?: string }
  | { type: 'text-delta'; text: string }
  | { type: 'reasoning-delta'; text: string; signature?: string }
  | {
      type: 'tool-call-delta';
      index: number;
      id?: string;
      name?: string;
      argumentsDelta: string;
    }
  | { type: 'usage'; usage: TokenUsage; cost?: number; raw?: unknown; timing?: ProviderTiming }
  | { type: 'finish'; reason: FinishReason; rawReason?: string }
  | { type: 'annotations'; annotations: unknown[] }
  /**
   * A content block only the provider that sent it understands (Anthropic's server tools:
   * `server_tool_use` and its `web_search_tool_result`, ...). Kept as sent, apart from client
   * tool calls, so it can be replayed to the same provider within a turn.
   */
  | { type: 'provider-block'; block: Record<string, unknown> };

/** Timing a provider measured itself (llama.cpp's `timings`): better than ours, which includes the network. */
export interface ProviderTiming {
  /** Output tokens per second while generating. */
  tokensPerSecond?: number;
}

/** Request parameters passed through to the provider. */
export interface RequestParams {
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  stop?: string | string[];
  seed?: number;
  /** OpenAI's `response_format` (`{ type: 'json_object' }` or `{ type: 'json_schema', json_schema }`). */
  responseFormat?: Record<string, unknown>;
  tools?: ToolDefinition[];
  toolChoice?: 'auto' | 'none' | 'required' | { name: string };
  /** Reasoning effort or budget, translated to each provider's own form. */
  reasoning?: { effort?: 'low' | 'medium' | 'high'; maxTokens?: number };
  /**
   * Web search: OpenRouter's `web` plugin (the same as a `:online` model), Anthropic's
   * `web_search` server tool. Citations come back in `TurnResult.citations`.
   */
  webSearch?: boolean | { maxResults?: number; engine?: string };
  /**
   * Provider prompt caching (protocols/prompt-cache.ts): on by default, `cache_control`
   * breakpoints where a provider needs them (Anthropic; OpenRouter's Anthropic and Gemini
   * models). `{ ttl: '1h' }` keeps entries an hour (writes cost 2x input instead of 1.25x);
   * `false` sends no markers.
   */
  promptCaching?: boolean | { ttl?: '5m' | '1h' };
  /**
   * The prompt-cache breakpoints a request carried, as a server half read them (Anthropic's
   * `cache_control`): after the tools, after the system prompt, or after the message at this
   * index of `messages`. The simulator caches by them; client halves place their own.
   */
  cacheBreakpoints?: CacheBreakpoint[];
  /** Provider-specific body fields, merged into the wire request last. */
  extraBody?: Record<string, unknown>;
}

export interface CacheBreakpoint {
  after: 'tools' | 'system' | number;
  ttl: '5m' | '1h';
}

/** A tool as the wire sees it: a name, a description and a JSON Schema for its input. */
export interface ToolDefinition {
  name: string;
  description?: string;
  parameters: Record<string, unknown>;
}

/** Everything a protocol needs to build one wire request. */
export interface CanonicalRequest {
  /** The provider's own model id. */
  model: string;
  messages: Message[];
  params: RequestParams;
  stream: boolean;
}

/** What answered a turn and how it went: per-turn metadata kept beside the history. */
export interface TurnResult {
  /** The model string the caller asked for (the key in multi-model results). */
  model: string;
  /** The provider's own model id that answered (as the provider reported it, when it did). */
  resolvedModel: string;
  /** The provider that answered (for OpenRouter, the upstream host it chose when reported). */
  provider: string;
  text: string;
  message: AssistantMessage;
  reasoning?: string;
  finishReason: FinishReason;
  rawFinishReason?: string;
  usage: Usage;
  /** Milliseconds from sending the request to the first content token. */
  ttftMs: number | null;
  /** Milliseconds from sending the request to the end of the reply. */
  latencyMs: number;
  /** Output tokens per second after the first token. */
  tokensPerSecond: number | null;
  startedAt: string;
  /** Answered from the response cache: no request was sent, `usage.cost` is 0 and `usage.savedCost` what it saved. */
  cached?: boolean;
  /** The provider's raw annotations (all types, as sent). */
  annotations?: unknown[];
  /** Web citations normalized from the annotations; annotation types not known are skipped. */
  citations?: Citation[];
  /** Reasoning blocks with their signatures, for replaying to the same provider (Anthropic thinking). */
  reasoningDetails?: ReasoningDetail[];
  /** Blocks of the provider's own tools (Anthropic web search, code execution), for replaying to `provider` only. */
  providerBlocks?: ProviderBlocks;
  /**
   * Every message the turn added after the user message, in order: with tools, the assistant
   * messages with `tool_calls` and the `tool` results, then the final answer. Absent when it is `[message]`.
   */
  messages?: Message[];
  /** With tools or structured output: each request of the turn (the totals above sum them). */
  steps?: TurnStep[];
  /** With `schema`: the validated object. */
  object?: unknown;
}

/** One request inside a turn that ran tools or retried structured output. */
export interface TurnStep {
  /** 1-based. */
  step: number;
  /** Why this request was made: the first one, after tool results, the final answer once steps ran out, or a retry after invalid structured output. */
  kind: 'initial' | 'tool-results' | 'final-answer' | 'structured-retry';
  provider: string;
  resolvedModel: string;
  message: AssistantMessage;
  /** Tool results sent back after this step. */
  toolResults?: ToolMessage[];
  reasoning?: string;
  finishReason: FinishReason;
  usage: Usage;
  latencyMs: number;
}

/** A web source a reply cited. */
export interface Citation {
  url: string;
  title?: string;
  /** The cited passage or the search result's snippet, when the provider sent one. */
  excerpt?: string;
  /** Character range in the reply text the citation covers, when given. */
  startIndex?: number;
  endIndex?: number;
}

/** Content blocks as one provider sent them; sent back only to that provider, dropped for any other. */
export interface ProviderBlocks {
  provider: string;
  blocks: Record<string, unknown>[];
}

/** A reasoning block as the provider sent it; `signature` lets the same provider verify it when replayed. */
export interface ReasoningDetail {
  text: string;
  signature?: string;
}

/** Events of `chat.stream()` and `call.stream()`, tagged with the model string they belong to. */
export type StreamEvent =
  | { type: 'text-delta'; model: string; text: string }
  | { type: 'reasoning-delta'; model: string; text: string }
  /** The model asked for a tool call (arguments as the model sent them, a JSON string). */
  | { type: 'tool-call'; model: string; step: number; id: string; name: string; arguments: string }
  /** A tool ran (or failed: `isError`, with the error text in `content`, which goes back to the model). */
  | { type: 'tool-result'; model: string; step: number; id: string; name: string; result: unknown; content: string; isError: boolean }
  | { type: 'finish'; model: string; result: TurnResult }
  | { type: 'error'; model: string; error: Error };
