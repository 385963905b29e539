/**
 * Model strings to deployments (a model at a provider) and deployments to endpoints
 * (URL, key, headers). The routing grammar (modes, thresholds, fallbacks) builds on this.
 */
import { MissingKeyError, ModelStringError, registerSecret } from '../errors.js';
import type { Endpoint } from '../protocols/protocol.js';
import { simulatorBaseURL } from '../sim/embedded.js';
import { SIM_DEFAULT_PROVIDER, SIM_MODELS } from '../sim/profiles.js';
import { defaultBaseURLEnv, type ProviderRegistry } from './registry.js';

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

function checkSyntax(input: string): void {
  if (input.trim() === '') throw new ModelStringError(input, 'it is empty; expected e.g. "openai/gpt-4o-mini" or "sim/llama".');
  const ws = input.search(/\s/);
  if (ws >= 0) throw new ModelStringError(input, 'model strings contain no spaces.', ws);
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
    const profile = SIM_MODELS[name];
    if (!profile) {
      throw new ModelStringError(input, `the simulator has no model "${name}"; it serves ${Object.keys(SIM_MODELS).map((m) => `sim/${m}`).join(', ')}.`, 4);
    }
    const provider = pinned ?? SIM_DEFAULT_PROVIDER;
    ctx.registry.get(provider);
    return { model, provider, providerModel: name };
  }

  if (pinned !== undefined) {
    ctx.registry.get(pinned);
    return { model, provider: pinned, providerModel: model };
  }
  if (ctx.baseURL) return { model, provider: CUSTOM_PROVIDER, providerModel: model };
  if (!/^[^/]+\/[^/]+/.test(model)) {
    throw new ModelStringError(
      input,
      'expected "vendor/model" as OpenRouter names it (e.g. "openai/gpt-4o-mini"), "model@provider", or "sim/llama" for the offline simulator.',
      0,
    );
  }
  return { model, provider: 'openrouter', providerModel: model };
}

/** The endpoint (URL, key, headers) for a deployment's provider. */
export async function endpointFor(deployment: Deployment, ctx: ResolveContext): Promise<Endpoint> {
  if (deployment.provider === CUSTOM_PROVIDER) {
    registerSecret(ctx.apiKey);
    const headers: Record<string, string> = { ...ctx.headers };
    const endpoint: Endpoint = { provider: CUSTOM_PROVIDER, protocol: 'openai', baseURL: trimSlash(ctx.baseURL ?? ''), headers, compat: {} };
    if (ctx.apiKey) endpoint.apiKey = ctx.apiKey;
    return endpoint;
  }
  const config = ctx.registry.get(deployment.provider);
  const envNames = config.baseURLEnv ?? [defaultBaseURLEnv(config.name)];
  const fromEnv = envNames.map((n) => ctx.env[n]).find((v) => v !== undefined && v !== '');
  let baseURL = ctx.baseURL ?? fromEnv ?? config.baseURL;
  if (config.simulated && !ctx.baseURL && !fromEnv) baseURL = await simulatorBaseURL(config.name, ctx.env);
  let apiKey = ctx.apiKey;
  if (apiKey === undefined && config.keyEnv.length > 0) {
    apiKey = config.keyEnv.map((n) => ctx.env[n]).find((v) => v !== undefined && v !== '');
    if (apiKey === undefined) throw new MissingKeyError(config.name, config.keyEnv[0] ?? `${config.name.toUpperCase()}_API_KEY`);
  }
  registerSecret(apiKey);
  const endpoint: Endpoint = {
    provider: config.name,
    protocol: config.protocol,
    baseURL: trimSlash(baseURL),
    headers: { ...config.headers, ...ctx.headers },
    compat: config.compat ?? {},
  };
  if (apiKey !== undefined) endpoint.apiKey = apiKey;
  return endpoint;
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
