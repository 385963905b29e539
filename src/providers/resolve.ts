/**
 * Model strings to deployments (a model at a provider) and deployments to endpoints
 * (URL, key, headers). The routing grammar (modes, thresholds, fallbacks) builds on this.
 * The rules are written out in docs/model-strings.md.
 */
import { ConfigError, MissingKeyError, ModelStringError, UnknownProviderError, registerSecret } from '../errors.js';
import type { Endpoint } from '../protocols/protocol.js';
import { needsResponsesAPI } from '../catalog/responses-only.js';
import { MODES } from '../routing/grammar.js';
import { suggestTarget } from '../suggest.js';
import { simulatorBaseURL } from '../sim/embedded.js';
import { SIM_DEFAULT_PROVIDER, SIM_MODELS } from '../sim/profiles.js';
import { cloudDeployment, cloudEndpoint, hasCloudCredentials, type CloudName } from './clouds/index.js';
import { BUILTIN_PROVIDERS, defaultBaseURLEnv, type ProviderConfig, type ProviderRegistry } from './registry.js';

/** One model at one provider: what a single attempt talks to. */
export interface Deployment {
  /** The model as the user named it, without the provider (`sim/llama`, `openai/gpt-4o-mini`). */
  model: string;
  /** The provider name in the registry. */
  provider: string;
  /** The provider's own id for the model. */
  providerModel: string;
  /** Body fields this deployment needs (OpenRouter provider pinning, say). */
  extraBody?: Record<string, unknown>;
  /** Through OpenRouter and pinned to one of its hosts: that host's OpenRouter slug. */
  openrouterHost?: string;
}

export type Env = Record<string, string | undefined>;

export interface ResolveContext {
  registry: ProviderRegistry;
  env: Env;
  /** An explicit base URL: the model string is sent as-is to this OpenAI-compatible endpoint. */
  baseURL?: string | undefined;
  apiKey?: string | undefined;
  headers?: Record<string, string> | undefined;
}

/** Name of the provider used when the caller gives an explicit `baseURL`. */
export const CUSTOM_PROVIDER = 'custom';
export const OPENROUTER = 'openrouter';

/**
 * OpenRouter vendor prefixes whose models their maker also serves directly, and how an
 * OpenRouter model id becomes the maker's own id.
 */
export const VENDOR_PROVIDERS: Record<string, { provider: string }> = {
  openai: { provider: 'openai' },
  anthropic: { provider: 'anthropic' },
  google: { provider: 'google' },
  mistralai: { provider: 'mistral' },
  'x-ai': { provider: 'xai' },
  deepseek: { provider: 'deepseek' },
};

/** Provider-specific spelling of model ids that OpenRouter writes differently. */
const NATIVE_MODEL_ID: Record<string, (id: string) => string> = {
  // OpenRouter writes versions with dots (claude-sonnet-4.5); Anthropic with hyphens (claude-sonnet-4-5).
  anthropic: (id) => id.replace(/(\d)\.(\d)/g, '$1-$2'),
};

/**
 * A table's own entry for a name the user wrote: `sim/__proto__`, `constructor/x` or
 * `sim/toString` must not find what every object inherits.
 */
function own<T>(table: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

function checkSyntax(input: string): void {
  if (input.trim() === '') throw new ModelStringError(input, 'it is empty; expected e.g. "openai/gpt-4o-mini" or "sim/llama".');
  const ws = input.search(/\s/);
  if (ws >= 0) throw new ModelStringError(input, 'model strings contain no spaces.', ws);
}

function firstSet(env: Env, names: string[]): string | undefined {
  return names.map((n) => env[n]).find((v) => v !== undefined && v !== '');
}

/** Whether the environment holds a key for a provider (keyless providers always do). */
export function hasKey(config: ProviderConfig, env: Env): boolean {
  if (config.cloud && !config.simulated) return hasCloudCredentials(config.cloud, env);
  return config.keyEnv.length === 0 || config.keyOptional === true || firstSet(env, config.keyEnv) !== undefined;
}

function hasOpenRouterKey(ctx: ResolveContext): boolean {
  return ctx.registry.has(OPENROUTER) && firstSet(ctx.env, ctx.registry.get(OPENROUTER).keyEnv) !== undefined;
}

/** `vendor/model` at `provider` to the provider's own id: the vendor prefix goes when it names that provider. */
function nativeModelId(model: string, provider: string): string {
  const slash = model.indexOf('/');
  let id = model;
  if (slash > 0) {
    const prefix = model.slice(0, slash);
    if (prefix === provider || own(VENDOR_PROVIDERS, prefix)?.provider === provider) id = model.slice(slash + 1);
  }
  return own(NATIVE_MODEL_ID, provider)?.(id) ?? id;
}

/** Through OpenRouter, pinned to one host with no fallback to others. */
function viaOpenRouter(model: string, host?: string): Deployment {
  const deployment: Deployment = { model, provider: OPENROUTER, providerModel: model };
  if (host !== undefined) {
    deployment.openrouterHost = host;
    deployment.extraBody = { provider: { order: [host], allow_fallbacks: false } };
  }
  return deployment;
}

/** Resolve one model string (`vendor/model`, `model@provider`, `sim/llama@sim-cheap`) to a deployment. */
export function resolveModel(input: string, ctx: ResolveContext): Deployment {
  checkSyntax(input);
  const at = input.lastIndexOf('@');
  const model = at >= 0 ? input.slice(0, at) : input;
  const pinned = at >= 0 ? input.slice(at + 1) : undefined;
  if (model === '') throw new ModelStringError(input, 'the model name before "@" is missing.', 0);
  if (pinned === '') throw new ModelStringError(input, 'the provider name after "@" is missing.', input.length);

  if (model.startsWith('sim/')) {
    const name = model.slice(4);
    // OpenRouter-style variants (`sim/llama:online`) reach the simulator as they are.
    const profile = own(SIM_MODELS, name.replace(/:[\w-]+$/, ''));
    if (!profile) {
      throw new ModelStringError(input, `the simulator has no model "${name}"; it serves ${Object.keys(SIM_MODELS).map((m) => `sim/${m}`).join(', ')}.`, 4);
    }
    const provider = pinned ?? SIM_DEFAULT_PROVIDER;
    if (!ctx.registry.has(provider)) throw unknownTarget(provider, ctx);
    return { model, provider, providerModel: name };
  }

  if (pinned !== undefined) return resolvePinned(input, model, pinned, ctx);
  if (ctx.baseURL) return { model, provider: CUSTOM_PROVIDER, providerModel: model };

  const slash = model.indexOf('/');
  if (slash <= 0 || slash === model.length - 1) {
    throw new ModelStringError(
      input,
      'expected "vendor/model" as OpenRouter names it (e.g. "openai/gpt-4o-mini"), "model@provider" (e.g. "llama-3.3-70b-versatile@groq"), "ollama/llama3.2" for a local server, or "sim/llama" for the offline simulator.',
      slash <= 0 ? 0 : slash + 1,
    );
  }
  const prefix = model.slice(0, slash);
  if (prefix === OPENROUTER) return viaOpenRouter(model);
  const vendor = own(VENDOR_PROVIDERS, prefix);
  if (vendor) {
    // A model whose maker serves it: direct when the user holds the maker's key and no OpenRouter key.
    const direct = ctx.registry.has(vendor.provider) ? ctx.registry.get(vendor.provider) : undefined;
    if (direct && hasKey(direct, ctx.env) && !hasOpenRouterKey(ctx)) {
      return { model, provider: direct.name, providerModel: nativeModelId(model, direct.name) };
    }
    return viaOpenRouter(model);
  }
  if (ctx.registry.has(prefix) && !ctx.registry.get(prefix).simulated) {
    // `ollama/llama3.2`, `groq/llama-3.3-70b-versatile`: the prefix names a provider of ours.
    return { model, provider: prefix, providerModel: model.slice(slash + 1) };
  }
  return viaOpenRouter(model);
}

function resolvePinned(input: string, model: string, pinned: string, ctx: ResolveContext): Deployment {
  if (pinned === OPENROUTER) return viaOpenRouter(model);
  if (pinned.startsWith(`${OPENROUTER}/`)) {
    const host = pinned.slice(OPENROUTER.length + 1);
    if (host === '') throw new ModelStringError(input, 'the OpenRouter host after "openrouter/" is missing (e.g. "@openrouter/groq").', input.length);
    return viaOpenRouter(model, host);
  }
  if (ctx.registry.has(pinned)) {
    const config = ctx.registry.get(pinned);
    // No key for the host itself, but an OpenRouter key: ask OpenRouter for that host.
    if (!hasKey(config, ctx.env) && ctx.apiKey === undefined && config.openrouterSlug && model.includes('/') && hasOpenRouterKey(ctx)) {
      return viaOpenRouter(model, config.openrouterSlug);
    }
    if (isCloud(config)) return cloudDeployment(model, config);
    return { model, provider: pinned, providerModel: nativeModelId(model, pinned) };
  }
  // A host we do not know directly (`@novita`): OpenRouter knows many more.
  if (hasOpenRouterKey(ctx)) return viaOpenRouter(model, pinned);
  throw unknownTarget(pinned, ctx);
}

/** The word after `@` is neither a provider nor a mode: list both, with the closest. */
function unknownTarget(word: string, ctx: ResolveContext): UnknownProviderError {
  const providers = ctx.registry.names();
  return new UnknownProviderError(word, providers, { modes: MODES, suggestion: suggestTarget(word, MODES, providers) });
}

/** At most this many endpoints are kept by an endpoint cache (model names come from callers). */
const ENDPOINT_CACHE_LIMIT = 1024;

/**
 * The endpoint (URL, key, headers) for a deployment's provider. With `cache` (one per fixed
 * configuration: the gateway keeps one per loaded config), a configured provider's endpoint is
 * worked out once per model; simulated and cloud ones, whose URL or credentials can change
 * while the process runs, are worked out every time.
 */
export async function endpointFor(deployment: Deployment, ctx: ResolveContext, cache?: Map<string, Endpoint>): Promise<Endpoint> {
  const cacheKey = cache && `${deployment.provider}\0${deployment.providerModel}`;
  const cached = cacheKey === undefined ? undefined : cache?.get(cacheKey);
  if (cached) return cached;
  const endpoint = await workOutEndpoint(deployment, ctx);
  if (cache && cacheKey !== undefined && deployment.provider !== CUSTOM_PROVIDER) {
    const config = ctx.registry.get(deployment.provider);
    if (!config.simulated && !isCloud(config)) {
      if (cache.size >= ENDPOINT_CACHE_LIMIT) cache.clear();
      cache.set(cacheKey, endpoint);
    }
  }
  return endpoint;
}

async function workOutEndpoint(deployment: Deployment, ctx: ResolveContext): Promise<Endpoint> {
  if (deployment.provider === CUSTOM_PROVIDER) {
    registerSecret(ctx.apiKey);
    const headers: Record<string, string> = { ...ctx.headers };
    const endpoint: Endpoint = { provider: CUSTOM_PROVIDER, protocol: 'openai', baseURL: trimSlash(ctx.baseURL ?? ''), headers, compat: {} };
    if (ctx.apiKey) endpoint.apiKey = ctx.apiKey;
    return guardCredentials(endpoint, [ctx.headers]);
  }
  const config = ctx.registry.get(deployment.provider);
  if (isCloud(config)) return cloudEndpoint(config, deployment, ctx, config.simulated ? await simulatorBaseURL(config.name, ctx.env) : undefined);
  const envNames = config.baseURLEnv ?? [defaultBaseURLEnv(config.name)];
  const fromEnv = firstSet(ctx.env, envNames);
  let baseURL = ctx.baseURL ?? fromEnv ?? config.baseURL;
  if (config.simulated && !ctx.baseURL && !fromEnv) baseURL = await simulatorBaseURL(config.name, ctx.env);
  let apiKey = ctx.apiKey;
  if (apiKey === undefined && config.keyEnv.length > 0) {
    apiKey = firstSet(ctx.env, config.keyEnv);
    if (apiKey === undefined && !config.keyOptional) {
      throw new MissingKeyError(config.name, config.keyEnv[0] ?? `${config.name.toUpperCase()}_API_KEY`);
    }
  }
  registerSecret(apiKey);
  const compat = config.compat ?? {};
  // An OpenAI-protocol provider may speak the Responses API, always or where the model needs it.
  const responses = config.protocol === 'openai' && (compat.responsesAPI === 'always' || (compat.responsesAPI === 'when-required' && needsResponsesAPI(deployment.providerModel)));
  const endpoint: Endpoint = {
    provider: config.name,
    protocol: responses ? 'openai-responses' : config.protocol,
    baseURL: trimSlash(baseURL),
    headers: { ...config.headers, ...ctx.headers },
    compat,
  };
  if (apiKey !== undefined) endpoint.apiKey = apiKey;
  // Headers of built-in providers are ours (OpenRouter's attribution); any others the user configured.
  return guardCredentials(endpoint, [ctx.headers, BUILTIN_PROVIDERS.includes(config) ? undefined : config.headers]);
}

/** Headers that configure a request and never carry a credential. */
const PLAIN_HEADERS = new Set(['accept', 'content-type', 'user-agent', 'http-referer', 'x-title', 'anthropic-version', 'anthropic-beta']);

/**
 * Secrets by construction: every header value the user configured, and every credential in
 * the base URL, is registered as a secret (so no message, log row or metric can show it).
 * Credentials in the URL's user-info (`https://user:secret@host`, which fetch refuses) are
 * sent as HTTP Basic authorization instead, and the URL kept without them.
 */
function guardCredentials(endpoint: Endpoint, configured: (Record<string, string> | undefined)[]): Endpoint {
  for (const headers of configured) {
    for (const [name, value] of Object.entries(headers ?? {})) if (!PLAIN_HEADERS.has(name.toLowerCase())) registerSecret(value);
  }
  let url: URL;
  try {
    url = new URL(endpoint.baseURL);
  } catch {
    return endpoint;
  }
  for (const value of url.searchParams.values()) registerSecret(value);
  if (url.username === '' && url.password === '') return endpoint;
  registerSecret(url.username);
  registerSecret(url.password);
  let user: string;
  let password: string;
  try {
    user = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    throw new ConfigError(`The base URL of ${endpoint.provider} has a user name or password with a malformed percent-escape (such as %zz); write a literal % as %25.`);
  }
  registerSecret(user);
  registerSecret(password);
  const basic = Buffer.from(`${user}:${password}`).toString('base64');
  registerSecret(basic);
  url.username = '';
  url.password = '';
  return { ...endpoint, baseURL: trimSlash(url.toString()), headers: { authorization: `Basic ${basic}`, ...endpoint.headers } };
}

function isCloud(config: ProviderConfig): config is ProviderConfig & { cloud: CloudName } {
  return config.cloud !== undefined;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
