/**
 * Azure OpenAI's address and credentials. The resource endpoint is AZURE_OPENAI_ENDPOINT
 * (`https://my-resource.openai.azure.com`) or built from AZURE_RESOURCE_NAME; the key goes in
 * the `api-key` header (AZURE_OPENAI_API_KEY), or a Microsoft Entra ID token as a bearer token
 * (AZURE_OPENAI_AD_TOKEN). A model string names the deployment (`my-gpt4o@azure`).
 *
 * Paths: the v1 API (`/openai/v1/chat/completions`, the deployment in `model`) unless an API
 * version is set (AZURE_OPENAI_API_VERSION or the config's `apiVersion`), which selects the
 * deployment paths (`/openai/deployments/{deployment}/chat/completions?api-version=...`).
 */
import { ConfigError, MissingCredentialsError, registerSecret } from '../../errors.js';
import type { Env } from '../resolve.js';

export interface AzureSettings {
  /** Deployment name to the catalog model it runs, for prices (`{ "my-gpt4o": "openai/gpt-4o" }`). */
  deployments?: Record<string, string>;
  apiVersion?: string;
  endpoint?: string;
}

function set(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

export function hasAzureCredentials(env: Env): boolean {
  return (set(env, 'AZURE_OPENAI_API_KEY') ?? set(env, 'AZURE_OPENAI_AD_TOKEN')) !== undefined && (set(env, 'AZURE_OPENAI_ENDPOINT') ?? set(env, 'AZURE_RESOURCE_NAME')) !== undefined;
}

/** The resource's base URL, checked before anything is sent. */
export function azureResourceURL(env: Env, settings: AzureSettings): string {
  const endpoint = set(env, 'AZURE_OPENAI_ENDPOINT') ?? settings.endpoint;
  if (endpoint !== undefined) {
    if (!/^https?:\/\/[^/]+/.test(endpoint)) throw new ConfigError(`AZURE_OPENAI_ENDPOINT must be the resource's URL, like https://my-resource.openai.azure.com; got "${endpoint}".`);
    return endpoint.replace(/\/+$/, '').replace(/\/openai(\/v1)?$/, '');
  }
  const name = set(env, 'AZURE_RESOURCE_NAME');
  if (name === undefined) throw new ConfigError('Azure OpenAI needs its resource: set AZURE_OPENAI_ENDPOINT (https://my-resource.openai.azure.com) or AZURE_RESOURCE_NAME.');
  if (!/^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$/.test(name)) throw new ConfigError(`AZURE_RESOURCE_NAME must be the resource's name (letters, digits, hyphens); got "${name}".`);
  return `https://${name}.openai.azure.com`;
}

/** The auth header: `api-key`, or an Entra ID bearer token. */
export function azureAuthHeaders(env: Env): Record<string, string> {
  const key = set(env, 'AZURE_OPENAI_API_KEY');
  if (key !== undefined) {
    registerSecret(key);
    return { 'api-key': key };
  }
  const token = set(env, 'AZURE_OPENAI_AD_TOKEN');
  if (token !== undefined) {
    registerSecret(token);
    return { authorization: `Bearer ${token}` };
  }
  throw new MissingCredentialsError('azure', 'No credentials for Azure OpenAI: set AZURE_OPENAI_API_KEY (the resource key) or AZURE_OPENAI_AD_TOKEN (a Microsoft Entra ID token).');
}

/** The OpenAI-protocol base URL and query for one deployment. */
export function azureDeploymentBase(resource: string, deployment: string, apiVersion: string | undefined): { baseURL: string; query?: Record<string, string> } {
  if (apiVersion === undefined || apiVersion === 'v1') return { baseURL: `${resource}/openai/v1` };
  return { baseURL: `${resource}/openai/deployments/${encodeURIComponent(deployment)}`, query: { 'api-version': apiVersion } };
}
