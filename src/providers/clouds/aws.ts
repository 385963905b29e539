/**
 * Amazon Bedrock's address and credentials.
 *
 * Credentials, first found wins (the order of the AWS SDKs' default chain, for the sources
 * supported here):
 *   1. a Bedrock API key in AWS_BEARER_TOKEN_BEDROCK, sent as `Authorization: Bearer`;
 *   2. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
 *   3. the profile AWS_PROFILE (else `default`) in the shared credentials file
 *      (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials) or config file (AWS_CONFIG_FILE,
 *      else ~/.aws/config).
 * Requests with keys are signed with AWS Signature Version 4 by @smithy/signature-v4.
 * The region is AWS_REGION, else AWS_DEFAULT_REGION, else the profile's `region`.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, MissingCredentialsError, registerSecret } from '../../errors.js';
import type { WireRequest } from '../../protocols/protocol.js';
import type { Env } from '../resolve.js';

export interface AWSCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** What signs Bedrock requests: keys for SigV4, or a Bedrock API key. */
export type BedrockAuth = { kind: 'sigv4'; credentials: AWSCredentials; source: string } | { kind: 'bearer'; token: string };

/** Regions with the Bedrock runtime (bedrock-runtime.<region>.amazonaws.com). */
export const BEDROCK_REGIONS = new Set([
  'us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'us-gov-east-1', 'us-gov-west-1', 'ca-central-1', 'ca-west-1', 'mx-central-1',
  'sa-east-1', 'eu-central-1', 'eu-central-2', 'eu-west-1', 'eu-west-2', 'eu-west-3', 'eu-north-1', 'eu-south-1', 'eu-south-2',
  'ap-northeast-1', 'ap-northeast-2', 'ap-northeast-3', 'ap-south-1', 'ap-south-2', 'ap-southeast-1', 'ap-southeast-2',
  'ap-southeast-3', 'ap-southeast-4', 'ap-southeast-5', 'ap-southeast-7', 'ap-east-2', 'me-central-1', 'me-south-1', 'il-central-1',
  'af-south-1',
]);

const SET_CREDENTIALS =
  'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys), AWS_PROFILE for a profile in ~/.aws/credentials, or AWS_BEARER_TOKEN_BEDROCK for a Bedrock API key';

function set(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** Whether the environment names any Bedrock credentials (files are not read for this). */
export function hasBedrockCredentials(env: Env): boolean {
  return (
    set(env, 'AWS_BEARER_TOKEN_BEDROCK') !== undefined ||
    (set(env, 'AWS_ACCESS_KEY_ID') !== undefined && set(env, 'AWS_SECRET_ACCESS_KEY') !== undefined) ||
    set(env, 'AWS_PROFILE') !== undefined
  );
}

interface Profile {
  credentials?: AWSCredentials;
  region?: string;
}

async function readProfile(env: Env): Promise<Profile & { name: string }> {
  const name = set(env, 'AWS_PROFILE') ?? 'default';
  const home = set(env, 'HOME') ?? homedir();
  const filepath = set(env, 'AWS_SHARED_CREDENTIALS_FILE') ?? join(home, '.aws', 'credentials');
  const configFilepath = set(env, 'AWS_CONFIG_FILE') ?? join(home, '.aws', 'config');
  let files: Awaited<ReturnType<typeof import('@smithy/shared-ini-file-loader').loadSharedConfigFiles>>;
  try {
    // Loaded on first use: most programs never talk to Bedrock.
    const { loadSharedConfigFiles } = await import('@smithy/shared-ini-file-loader');
    files = await loadSharedConfigFiles({ filepath, configFilepath, ignoreCache: true });
  } catch (err) {
    throw new ConfigError(`Could not read the AWS shared config files (${filepath}, ${configFilepath}): ${(err as Error).message}`);
  }
  const fromCredentials = files.credentialsFile[name] ?? {};
  const fromConfig = files.configFile[name] ?? {};
  const pick = (key: string): string | undefined => fromCredentials[key] ?? fromConfig[key];
  const profile: Profile & { name: string } = { name };
  const accessKeyId = pick('aws_access_key_id');
  const secretAccessKey = pick('aws_secret_access_key');
  if (accessKeyId && secretAccessKey) {
    profile.credentials = { accessKeyId, secretAccessKey };
    const token = pick('aws_session_token');
    if (token) profile.credentials.sessionToken = token;
  } else if (set(env, 'AWS_PROFILE') !== undefined) {
    const other = ['role_arn', 'sso_session', 'sso_start_url', 'credential_process', 'web_identity_token_file'].find((k) => pick(k) !== undefined);
    throw new MissingCredentialsError(
      'bedrock',
      other
        ? `The AWS profile "${name}" gets its credentials through ${other}, which switchboard does not support; export keys (e.g. \`aws configure export-credentials --profile ${name} --format env\`) or use a profile with aws_access_key_id and aws_secret_access_key.`
        : `The AWS profile "${name}" (AWS_PROFILE) has no aws_access_key_id and aws_secret_access_key in ${filepath} or ${configFilepath}.`,
    );
  }
  const region = pick('region');
  if (region) profile.region = region;
  return profile;
}

/** Bedrock's credentials and region from the environment and the shared files. */
export async function bedrockAuth(env: Env): Promise<{ auth: BedrockAuth; region: string | undefined }> {
  const envRegion = set(env, 'AWS_REGION') ?? set(env, 'AWS_DEFAULT_REGION');
  const bearer = set(env, 'AWS_BEARER_TOKEN_BEDROCK');
  const accessKeyId = set(env, 'AWS_ACCESS_KEY_ID');
  const secretAccessKey = set(env, 'AWS_SECRET_ACCESS_KEY');
  const needProfile = envRegion === undefined || (bearer === undefined && (accessKeyId === undefined || secretAccessKey === undefined));
  const profile = needProfile ? await readProfile(env) : undefined;
  const region = envRegion ?? profile?.region;
  if (bearer !== undefined) {
    registerSecret(bearer);
    return { auth: { kind: 'bearer', token: bearer }, region };
  }
  if (accessKeyId !== undefined && secretAccessKey !== undefined) {
    const credentials: AWSCredentials = { accessKeyId, secretAccessKey };
    const token = set(env, 'AWS_SESSION_TOKEN');
    if (token) credentials.sessionToken = token;
    return { auth: { kind: 'sigv4', credentials: remember(credentials), source: 'environment' }, region };
  }
  if (accessKeyId !== undefined || secretAccessKey !== undefined) {
    throw new MissingCredentialsError('bedrock', `Only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY is set; set both (or neither, to use a profile).`);
  }
  if (profile?.credentials) return { auth: { kind: 'sigv4', credentials: remember(profile.credentials), source: `profile ${profile.name}` }, region };
  throw new MissingCredentialsError('bedrock', `No AWS credentials for Bedrock: ${SET_CREDENTIALS}.`);
}

function remember(credentials: AWSCredentials): AWSCredentials {
  registerSecret(credentials.secretAccessKey);
  registerSecret(credentials.sessionToken);
  return credentials;
}

/** Bedrock's runtime address for a region; a region Bedrock does not serve is refused before anything is sent. */
export function bedrockBaseURL(region: string | undefined): string {
  if (region === undefined) throw new ConfigError('Bedrock needs a region: set AWS_REGION (e.g. us-east-1), or `region` in your AWS profile.');
  if (!BEDROCK_REGIONS.has(region)) {
    throw new ConfigError(`Bedrock is not served in region "${region}" (AWS_REGION). Regions with Bedrock: ${[...BEDROCK_REGIONS].join(', ')}.`);
  }
  return `https://bedrock-runtime.${region}.amazonaws.com`;
}

/** The cross-region inference profile prefix of a region's geography (`us`, `eu`, `apac`, ...). */
export function inferenceGeography(region: string | undefined): string {
  if (region === undefined) return 'us';
  if (region.startsWith('us-gov-')) return 'us-gov';
  const area = region.split('-')[0] ?? 'us';
  return ({ us: 'us', ca: 'us', eu: 'eu', ap: 'apac', me: 'eu', il: 'eu', sa: 'us', mx: 'us', af: 'eu' } as Record<string, string>)[area] ?? 'us';
}

/**
 * Sign one request with SigV4 for `service` in `region` (the signed headers are host,
 * x-amz-date, x-amz-security-token with temporary keys, and the request's own headers).
 * `method` and `date` exist for the published test vectors; requests are POSTs signed now.
 */
export async function signRequest(
  wire: WireRequest,
  credentials: AWSCredentials,
  region: string,
  service: string,
  options: { method?: string; date?: Date } = {},
): Promise<WireRequest> {
  const url = new URL(wire.url);
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const [{ SignatureV4 }, { Sha256 }] = await Promise.all([import('@smithy/signature-v4'), import('@aws-crypto/sha256-js')]);
  const signer = new SignatureV4({ service, region, credentials, sha256: Sha256, applyChecksum: false });
  const request = {
    method: options.method ?? 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname,
    query,
    headers: { ...wire.headers, host: url.host },
    body: wire.body,
  };
  const signed = await signer.sign(request, options.date ? { signingDate: options.date } : {});
  // fetch sets Host from the URL itself.
  const { host: _host, ...headers } = signed.headers as Record<string, string>;
  return { ...wire, headers };
}

/** The authorize hook for Bedrock: sign with keys, or send the API key as a bearer token. */
export function bedrockAuthorizer(auth: BedrockAuth, region: string): (wire: WireRequest) => Promise<WireRequest> {
  if (auth.kind === 'bearer') {
    return (wire) => Promise.resolve({ ...wire, headers: { ...wire.headers, authorization: `Bearer ${auth.token}` } });
  }
  return (wire) => signRequest(wire, auth.credentials, region, 'bedrock');
}
