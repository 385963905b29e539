/**
 * Google Vertex AI's address and credentials.
 *
 * Address: `https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/{google|anthropic}/models/{model}`
 * (`https://aiplatform.googleapis.com/...` for the `global` location). Gemini models speak
 * generateContent there; Claude models the Anthropic Messages body through `:rawPredict`.
 *
 * Credentials, first found wins:
 *   1. an access token in VERTEX_ACCESS_TOKEN (or GOOGLE_OAUTH_ACCESS_TOKEN), e.g. from
 *      `gcloud auth print-access-token`, sent as is (it expires after an hour);
 *   2. the service-account key file in GOOGLE_APPLICATION_CREDENTIALS: a JWT signed with its
 *      private key (RS256, node:crypto) is exchanged at its token_uri for an access token,
 *      which is cached and refreshed five minutes before it expires.
 * Project: GOOGLE_CLOUD_PROJECT (or VERTEX_PROJECT, or the key file's project_id);
 * location: GOOGLE_CLOUD_LOCATION (or VERTEX_LOCATION), default `global`.
 */
import { createSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, MissingCredentialsError, registerSecret } from '../../errors.js';
import type { WireRequest } from '../../protocols/protocol.js';
import type { Env } from '../resolve.js';

export const VERTEX_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
/** A token is renewed this long before it expires, so that none expires on the way. */
export const REFRESH_EARLY_MS = 5 * 60_000;
const TOKEN_URI = 'https://oauth2.googleapis.com/token';

interface ServiceAccountKey {
  type?: string;
  project_id?: string;
  private_key_id?: string;
  private_key?: string;
  client_email?: string;
  token_uri?: string;
}

function set(env: Env, ...names: string[]): string | undefined {
  return names.map((n) => env[n]).find((v) => v !== undefined && v !== '');
}

export function hasVertexCredentials(env: Env): boolean {
  return set(env, 'VERTEX_ACCESS_TOKEN', 'GOOGLE_OAUTH_ACCESS_TOKEN', 'GOOGLE_APPLICATION_CREDENTIALS') !== undefined;
}

/** Hands out a valid access token, fetching a new one when the cached one is close to expiring. */
export interface TokenSource {
  token(): Promise<string>;
  /** The project the credentials belong to, when they name one. */
  readonly project: string | undefined;
}

function readKeyFile(path: string): ServiceAccountKey {
  let key: ServiceAccountKey;
  try {
    key = JSON.parse(readFileSync(path, 'utf8')) as ServiceAccountKey;
  } catch (err) {
    throw new MissingCredentialsError('vertex', `Could not read the service-account key file ${path} (GOOGLE_APPLICATION_CREDENTIALS): ${(err as Error).message}`);
  }
  if (key.type !== 'service_account' || !key.private_key || !key.client_email) {
    throw new MissingCredentialsError(
      'vertex',
      `${path} (GOOGLE_APPLICATION_CREDENTIALS) is not a service-account key file (type "${key.type ?? 'none'}"); download a JSON key for a service account, or set VERTEX_ACCESS_TOKEN to \`gcloud auth print-access-token\`.`,
    );
  }
  registerSecret(key.private_key);
  return key;
}

const base64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url');

/** The signed JWT a service account presents for an access token (RFC 7523). */
export function serviceAccountAssertion(key: ServiceAccountKey, nowMs: number): string {
  const iat = Math.floor(nowMs / 1000);
  const header: Record<string, string> = { alg: 'RS256', typ: 'JWT' };
  if (key.private_key_id) header.kid = key.private_key_id;
  const claims = { iss: key.client_email, scope: VERTEX_SCOPE, aud: key.token_uri ?? TOKEN_URI, iat, exp: iat + 3600 };
  const unsigned = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(key.private_key ?? '');
  return `${unsigned}.${base64url(signature)}`;
}

/** Service-account tokens, shared by every endpoint using the same key (one exchange per hour, not per request). */
const cache = new Map<string, { token: string; expiresAt: number; pending?: Promise<string> }>();

class ServiceAccountTokens implements TokenSource {
  readonly project: string | undefined;
  constructor(
    private readonly key: ServiceAccountKey,
    private readonly now: () => number,
  ) {
    this.project = key.project_id;
  }

  async token(): Promise<string> {
    const id = `${this.key.client_email}\u0000${this.key.token_uri ?? TOKEN_URI}`;
    const cached = cache.get(id);
    if (cached && cached.expiresAt - REFRESH_EARLY_MS > this.now()) return cached.token;
    if (cached?.pending) return cached.pending;
    const pending = this.exchange().then(
      ({ token, expiresAt }) => {
        cache.set(id, { token, expiresAt });
        return token;
      },
      (err: unknown) => {
        if (cached) cache.set(id, { token: cached.token, expiresAt: cached.expiresAt });
        else cache.delete(id);
        throw err;
      },
    );
    cache.set(id, { token: cached?.token ?? '', expiresAt: cached?.expiresAt ?? 0, pending });
    return pending;
  }

  private async exchange(): Promise<{ token: string; expiresAt: number }> {
    const uri = this.key.token_uri ?? TOKEN_URI;
    const body = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: serviceAccountAssertion(this.key, this.now()) });
    let response: Response;
    try {
      response = await fetch(uri, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
    } catch (err) {
      throw new MissingCredentialsError('vertex', `Could not reach ${uri} to exchange the service-account key for an access token: ${(err as Error).message}`, err);
    }
    const text = await response.text();
    let parsed: { access_token?: string; expires_in?: number; error?: string; error_description?: string } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      // reported below
    }
    if (!response.ok || !parsed.access_token) {
      const reason = parsed.error_description ?? parsed.error ?? `HTTP ${response.status}`;
      throw new MissingCredentialsError(
        'vertex',
        `${uri} refused the service-account key of ${this.key.client_email} (GOOGLE_APPLICATION_CREDENTIALS): ${reason}. Check that the key is not revoked and the account may use Vertex AI.`,
      );
    }
    registerSecret(parsed.access_token);
    return { token: parsed.access_token, expiresAt: this.now() + (parsed.expires_in ?? 3600) * 1000 };
  }
}

/** The token source the environment gives, or a typed error naming what to set. */
export function vertexTokens(env: Env, now: () => number = Date.now): TokenSource {
  const given = set(env, 'VERTEX_ACCESS_TOKEN', 'GOOGLE_OAUTH_ACCESS_TOKEN');
  if (given !== undefined) {
    registerSecret(given);
    return { token: () => Promise.resolve(given), project: undefined };
  }
  const path = set(env, 'GOOGLE_APPLICATION_CREDENTIALS');
  if (path === undefined) {
    throw new MissingCredentialsError(
      'vertex',
      'No Google Cloud credentials for Vertex AI: set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or VERTEX_ACCESS_TOKEN to an access token (`gcloud auth print-access-token`).',
    );
  }
  return new ServiceAccountTokens(readKeyFile(path), now);
}

export interface VertexLocation {
  project: string;
  location: string;
}

/** Project and location: the environment first, then the config file, then the key file's project. */
export function vertexLocation(env: Env, settings: { project?: string; location?: string }, tokens: TokenSource): VertexLocation {
  const project = set(env, 'GOOGLE_CLOUD_PROJECT', 'VERTEX_PROJECT') ?? settings.project ?? tokens.project;
  if (project === undefined) {
    throw new ConfigError('Vertex AI needs a project: set GOOGLE_CLOUD_PROJECT (or "vertex": { "project": ... } in the config file).');
  }
  const location = set(env, 'GOOGLE_CLOUD_LOCATION', 'VERTEX_LOCATION') ?? settings.location ?? 'global';
  if (!/^(global|[a-z]+-[a-z]+\d+)$/.test(location)) {
    throw new ConfigError(`"${location}" is not a Vertex AI location (like us-central1, europe-west4 or global); check GOOGLE_CLOUD_LOCATION.`);
  }
  return { project, location };
}

/** The models path of a publisher (`google`, `anthropic`) at a location. */
export function vertexModelsURL(where: VertexLocation, publisher: string, baseURL?: string): string {
  const host = baseURL ?? (where.location === 'global' ? 'https://aiplatform.googleapis.com' : `https://${where.location}-aiplatform.googleapis.com`);
  return `${host}/v1/projects/${encodeURIComponent(where.project)}/locations/${where.location}/publishers/${publisher}/models`;
}

/** The authorize hook: a fresh access token as a bearer token on every request. */
export function vertexAuthorizer(tokens: TokenSource): (wire: WireRequest) => Promise<WireRequest> {
  return async (wire) => ({ ...wire, headers: { ...wire.headers, authorization: `Bearer ${await tokens.token()}` } });
}
