/**
 * The simulated clouds (sim-azure, sim-bedrock, sim-vertex): their paths, and their auth
 * headers checked for presence and shape, as each cloud addresses and refuses requests. The
 * simulator has no secrets, so a well-formed credential is accepted; a malformed or missing
 * one is refused with the cloud's own status and body.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { WireRequestError } from '../protocols/protocol.js';
import type { SimRoute } from './routes.js';

export type SimCloud = 'azure' | 'bedrock' | 'vertex';

/** The endpoints of each cloud, for error messages. */
export const CLOUD_ENDPOINT_HINTS: Record<SimCloud, string> = {
  azure: 'POST /openai/v1/chat/completions, POST /openai/deployments/{deployment}/chat/completions?api-version=... or GET /openai/v1/models',
  bedrock: 'POST /model/{modelId}/converse, /converse-stream or /count-tokens',
  vertex: 'POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent (or :streamGenerateContent?alt=sse, :countTokens), or .../publishers/anthropic/models/{model}:rawPredict (or :streamRawPredict)',
};

const AZURE_DEPLOYMENT = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/;
const BEDROCK = /^\/model\/([^/]+)\/(converse|converse-stream|count-tokens)$/;
const VERTEX = /^\/v1\/projects\/([^/]+)\/locations\/([a-z0-9-]+)\/publishers\/(google|anthropic)\/models\/([^/:]+):(\w+)$/;

/** Match a method and path below `/{provider}` of a simulated cloud. */
export function cloudRouteFor(cloud: SimCloud, method: string, path: string, query: URLSearchParams): SimRoute | undefined {
  if (cloud === 'azure') {
    if (method === 'GET' && path === '/openai/v1/models') return { kind: 'models' };
    if (method !== 'POST') return undefined;
    if (path === '/openai/v1/chat/completions') return { kind: 'generate', protocol: 'openai' };
    const deployment = AZURE_DEPLOYMENT.exec(path);
    if (!deployment?.[1]) return undefined;
    if (!query.get('api-version')) return { kind: 'invalid', message: 'Missing API version: the deployment paths need ?api-version=... (or use /openai/v1/chat/completions).' };
    return { kind: 'generate', protocol: 'openai', pathModel: decodeURIComponent(deployment[1]), modelInPath: true };
  }
  if (cloud === 'bedrock') {
    const match = method === 'POST' ? BEDROCK.exec(path) : null;
    if (!match?.[1]) return undefined;
    const pathModel = decodeURIComponent(match[1]);
    if (match[2] === 'count-tokens') return { kind: 'count', protocol: 'bedrock', pathModel };
    return { kind: 'generate', protocol: 'bedrock', pathModel, pathStream: match[2] === 'converse-stream' };
  }
  const match = method === 'POST' ? VERTEX.exec(path) : null;
  if (!match?.[4]) return undefined;
  const [, , , publisher, model, verb] = match as unknown as [string, string, string, string, string, string];
  if (publisher === 'anthropic') {
    if (verb !== 'rawPredict' && verb !== 'streamRawPredict') return undefined;
    return { kind: 'generate', protocol: 'anthropic', pathModel: model, pathStream: verb === 'streamRawPredict', modelInPath: true };
  }
  if (verb === 'countTokens') return { kind: 'count', protocol: 'gemini', pathModel: model };
  if (verb !== 'generateContent' && verb !== 'streamGenerateContent') return undefined;
  if (verb === 'streamGenerateContent' && query.get('alt') !== 'sse') return { kind: 'invalid', message: 'the simulator streams Gemini responses as server-sent events only: add ?alt=sse' };
  return { kind: 'generate', protocol: 'gemini', pathModel: model, pathStream: verb === 'streamGenerateContent' };
}

const SIGV4 = /^AWS4-HMAC-SHA256 Credential=[A-Z0-9]{16,128}\/\d{8}\/[a-z0-9-]+\/bedrock\/aws4_request, SignedHeaders=[a-z0-9-]+(;[a-z0-9-]+)*, Signature=[0-9a-f]{64}$/;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Why a cloud would refuse these credentials, in its own shape; undefined when they look right.
 * Azure: `api-key` or an Entra ID bearer token. Bedrock: a SigV4 Authorization over host and
 * x-amz-date, with x-amz-date present (or a Bedrock API key as a bearer token). Vertex: an
 * OAuth bearer token.
 */
export function cloudCredentialProblem(cloud: SimCloud, headers: IncomingHttpHeaders): WireRequestError | undefined {
  const authorization = header(headers, 'authorization');
  if (cloud === 'azure') {
    if (header(headers, 'api-key') || /^Bearer \S+$/.test(authorization ?? '')) return undefined;
    return new WireRequestError(401, '401', 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.');
  }
  if (cloud === 'bedrock') {
    if (/^Bearer \S+$/.test(authorization ?? '')) return undefined;
    if (!authorization) return new WireRequestError(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
    const signed = SIGV4.exec(authorization) ? authorization.slice(authorization.indexOf('SignedHeaders=') + 14).split(',')[0]?.split(';') ?? [] : [];
    const date = header(headers, 'x-amz-date');
    if (!signed.includes('host') || !signed.includes('x-amz-date') || !date || !/^\d{8}T\d{6}Z$/.test(date)) {
      return new WireRequestError(403, 'IncompleteSignatureException', 'Authorization header requires a SigV4 Credential, SignedHeaders (with host and x-amz-date) and Signature, and an X-Amz-Date header.');
    }
    return undefined;
  }
  if (/^Bearer \S+$/.test(authorization ?? '')) return undefined;
  return new WireRequestError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.');
}
