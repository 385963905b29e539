/** Options shared by Call and Chat, and their translation into what a turn needs. */
import { createRegistry } from './providers/config.js';
import { loadEnv } from './providers/env.js';
import { mergeLimits, type Limits } from './limits.js';
import type { ProviderRegistry } from './providers/registry.js';
import type { Env } from './providers/resolve.js';
import { catalogCandidates, catalogRetired } from './catalog/candidates.js';
import { setCatalogCandidates } from './routing/candidates.js';
import type { RoutingOptions } from './routing/router.js';
import type { TurnOptions } from './turn.js';
import type { RequestParams } from './types.js';
import { prepareOutput } from './tools/output.js';
import type { SchemaInput } from './tools/schema.js';
import { prepareTools, type ToolInput } from './tools/tool.js';
import { resolveCache, type CacheSetting } from './cache/response-cache.js';

/** Tools and structured output, for a client or one request. */
export interface ToolOptions {
  /**
   * Tools the model may call. Tools with `execute` run in a loop until the model answers in
   * text; bare definitions (no `execute`) end the turn with the calls in the reply message.
   */
  tools?: ToolInput[];
  /** Most rounds of tool calls in one turn (default 5); then one request without tools asks for the answer. */
  maxSteps?: number;
}

/** Structured output for one request. */
export interface SchemaOptions {
  /** A zod schema or JSON Schema the reply must satisfy; `send`/`run` then return the validated object. */
  schema?: SchemaInput;
  /** The schema's name on the wire (default `response`). */
  schemaName?: string;
}

export interface ClientOptions extends Omit<RequestParams, 'tools'>, ToolOptions {
  /** API key for the provider (otherwise read from its environment variable). */
  apiKey?: string;
  /** An OpenAI-compatible endpoint to send every model string to, as-is. */
  baseURL?: string;
  /** Extra HTTP headers for every request. */
  headers?: Record<string, string>;
  /** Milliseconds one request may take before it fails with a TimeoutError. */
  timeout?: number;
  /** Aborts every request made with these options. */
  signal?: AbortSignal;
  /** Time and size limits: first byte, idle, reply size, media size and loading time (see the README). */
  limits?: Limits;
  /** Providers to resolve model strings against (defaults to the built-in registry). */
  registry?: ProviderRegistry;
  /** Environment to read keys and base URLs from (defaults to process.env plus `.env`). */
  env?: Env;
  /** A prompt too long for the model's context: refuse it (default) or drop the oldest turns from what is sent. */
  fitContext?: 'error' | 'drop-oldest';
  /** Routing: metrics store, policy, retries, breakers, deadline (see the README's routing section). */
  routing?: RoutingOptions;
  /** Answer identical requests from the response cache: `true`, or `{ ttl, namespace, store, anyTemperature }`. */
  cache?: CacheSetting;
}

/** Per-request options for `send`, `stream` and `run`. */
export interface RequestOptions extends Omit<RequestParams, 'tools'>, ToolOptions, SchemaOptions {
  signal?: AbortSignal;
  timeout?: number;
  /** Limits for this request, over the client's. */
  limits?: Limits;
  fitContext?: 'error' | 'drop-oldest';
  /** This request's response cache: `false` skips it, `true` uses the client's, an object chooses. */
  cache?: CacheSetting;
}

const CLIENT_ONLY = new Set(['apiKey', 'baseURL', 'headers', 'timeout', 'signal', 'limits', 'registry', 'env', 'system', 'fitContext', 'routing', 'tools', 'maxSteps', 'schema', 'schemaName', 'cache']);

/** The request parameters among a bag of options. */
export function pickParams(options: object): Omit<RequestParams, 'tools'> {
  const params: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (!CLIENT_ONLY.has(key) && value !== undefined) params[key] = value;
  }
  return params as Omit<RequestParams, 'tools'>;
}

const collectedRequests = new WeakSet<RequestOptions>();

/**
 * Mark a request whose replies are read whole (`send`, `run`) rather than streamed to the
 * caller: no partial reply reaches anyone, so the router may fall back even after a
 * provider failed midway through its answer.
 */
export function collectedRequest(options: RequestOptions): RequestOptions {
  const copy = { ...options };
  collectedRequests.add(copy);
  return copy;
}

/** Combine client options and one request's options into a turn's options. */
export function turnOptions(client: ClientOptions, request: RequestOptions = {}, signal?: AbortSignal): TurnOptions {
  const params: RequestParams = { ...pickParams(client), ...pickParams(request) };
  const tools = request.tools ?? client.tools;
  return {
    tools: tools && tools.length > 0 ? prepareTools(tools) : undefined,
    maxSteps: request.maxSteps ?? client.maxSteps,
    output: request.schema === undefined ? undefined : prepareOutput(request.schema, request.schemaName),
    ...client.routing,
    registry: client.registry ?? processRegistry(),
    env: client.env ?? processEnv(),
    fitContext: request.fitContext ?? client.fitContext,
    collected: collectedRequests.has(request),
    baseURL: client.baseURL,
    apiKey: client.apiKey,
    headers: client.headers,
    params,
    timeoutMs: request.timeout ?? client.timeout,
    limits: mergeLimits(client.limits, request.limits),
    signal: signal ?? request.signal ?? client.signal,
    cache: resolveCache(client.cache, request.cache),
  };
}

let envLoaded = false;
/** process.env, with `.env` from the working directory read into it once (set variables win). */
export function processEnv(): Env {
  if (!envLoaded) {
    envLoaded = true;
    loadEnv(process.cwd(), process.env);
  }
  return process.env;
}

let registry: ProviderRegistry | undefined;
/** The built-in providers plus those of the configuration file, read once per process. */
export function processRegistry(): ProviderRegistry {
  registry ??= createRegistry(process.cwd(), processEnv());
  return registry;
}

// Modes (`@lowest-cost`, ...) on catalog models choose among the providers the user can reach.
setCatalogCandidates((model) => catalogCandidates(model, processRegistry(), processEnv()), catalogRetired);
