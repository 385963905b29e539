/**
 * The enterprise clouds: providers whose address and credentials are more than a base URL and
 * a key. Each turns a model string into the cloud's own model id and builds the endpoint with
 * an `authorize` hook (SigV4, OAuth) or its own headers. Which cloud a provider is lives in
 * its registry entry (`cloud`), so simulated and configured copies work the same way.
 */
import { defaultCatalog } from '../../catalog/catalog.js';
import type { Endpoint } from '../../protocols/protocol.js';
import type { ProviderConfig } from '../registry.js';
import type { Deployment, Env, ResolveContext } from '../resolve.js';
import { bedrockAuth, bedrockAuthorizer, bedrockBaseURL, hasBedrockCredentials, inferenceGeography } from './aws.js';
import { azureAuthHeaders, azureDeploymentBase, azureResourceURL, hasAzureCredentials, type AzureSettings } from './azure.js';
import { hasVertexCredentials, vertexAuthorizer, vertexLocation, vertexModelsURL, vertexTokens } from './vertex.js';

export type CloudName = 'azure' | 'bedrock' | 'vertex';

/** A cloud's settings from the config file (`"azure": { "deployments": ... }`, `"vertex": { "project": ... }`). */
export interface CloudSettings extends AzureSettings {
  project?: string;
  location?: string;
  region?: string;
}

function set(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** Whether the environment holds this cloud's credentials (for routing candidates). */
export function hasCloudCredentials(cloud: CloudName, env: Env): boolean {
  if (cloud === 'azure') return hasAzureCredentials(env);
  if (cloud === 'bedrock') return hasBedrockCredentials(env);
  return hasVertexCredentials(env);
}

/** Bedrock cross-region inference profile prefixes; a model id with one is priced as in-region. */
const GEO_PREFIX = /^(us|eu|apac|jp|au|ca|us-gov)\./;

/**
 * `name@cloud` to a deployment. Azure: the name is the deployment, its model (for prices) from
 * the config's `deployments`. Bedrock and Vertex: a catalog name (`claude-sonnet-4-5`,
 * `anthropic/claude-sonnet-4.5`) becomes the cloud's id; an id of the cloud's own passes as is.
 */
export function cloudDeployment(model: string, config: ProviderConfig & { cloud: CloudName }): Deployment {
  const settings = config.cloudSettings ?? {};
  if (config.cloud === 'azure') return { model: settings.deployments?.[model] ?? model, provider: config.name, providerModel: model };
  const priced = priceProvider(config);
  const catalog = defaultCatalog();
  const own = catalog.atProvider(priced, model.replace(GEO_PREFIX, ''));
  if (own) return { model: own.provider.model, provider: config.name, providerModel: model };
  const entry = catalog.get(model);
  const at = entry?.providers.find((p) => p.provider === priced);
  if (!at) return { model, provider: config.name, providerModel: model };
  return { model: at.model, provider: config.name, providerModel: at.model };
}

/** The catalog provider whose prices a cloud provider uses (`sim-bedrock` is priced as `bedrock`). */
export function priceProvider(config: ProviderConfig & { cloud: CloudName }): string {
  return config.simulated ? config.cloud : config.name;
}

/**
 * What a simulated cloud is called with: credentials in the cloud's real shape (the simulator
 * checks their shape, as it has no secrets to check them against).
 */
const SIMULATED_CREDENTIALS: Env = {
  AZURE_OPENAI_API_KEY: 'sim-azure-key-0123456789abcdef',
  AWS_ACCESS_KEY_ID: 'AKIASIMULATOR0000000',
  AWS_SECRET_ACCESS_KEY: 'simulatorSecretAccessKey/0123456789abcdef',
  AWS_REGION: 'us-east-1',
  VERTEX_ACCESS_TOKEN: 'ya29.simulated-access-token',
  GOOGLE_CLOUD_PROJECT: 'sim-project',
  GOOGLE_CLOUD_LOCATION: 'us-central1',
};

/** The endpoint of one deployment at a cloud: address, headers and the authorize hook. */
export async function cloudEndpoint(config: ProviderConfig & { cloud: CloudName }, deployment: Deployment, ctx: ResolveContext, simulatorURL?: string): Promise<Endpoint> {
  const env = config.simulated ? SIMULATED_CREDENTIALS : ctx.env;
  const settings = config.cloudSettings ?? {};
  const override = simulatorURL ?? set(env, `${config.name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_BASE_URL`);
  const headers = { ...config.headers, ...ctx.headers };
  if (config.cloud === 'azure') {
    const resource = override ?? azureResourceURL(env, settings);
    const { baseURL, query } = azureDeploymentBase(resource, deployment.providerModel, set(env, 'AZURE_OPENAI_API_VERSION') ?? settings.apiVersion);
    const compat = { ...config.compat, ...(query ? { query } : {}) };
    return { provider: config.name, protocol: 'openai', baseURL, headers: { ...azureAuthHeaders(env), ...headers }, compat };
  }
  if (config.cloud === 'bedrock') {
    const { auth, region } = await bedrockAuth(env);
    const effective = region ?? settings.region;
    const baseURL = override ?? bedrockBaseURL(effective);
    const compat = { ...config.compat, inferenceGeography: inferenceGeography(effective) };
    return { provider: config.name, protocol: 'bedrock', baseURL, headers, compat, authorize: bedrockAuthorizer(auth, effective ?? 'us-east-1') };
  }
  const tokens = vertexTokens(env);
  const where = vertexLocation(env, settings, tokens);
  const claude = /(^|\/)claude/.test(deployment.providerModel);
  return {
    provider: config.name,
    protocol: claude ? 'anthropic' : 'gemini',
    baseURL: vertexModelsURL(where, claude ? 'anthropic' : 'google', override),
    headers,
    compat: { ...config.compat, vertex: true },
    authorize: vertexAuthorizer(tokens),
  };
}
