/**
 * Stand-ins for the clouds' own machinery, written from their API references: Bedrock's
 * ConverseStream in event-stream frames with SigV4 checked, and Google's OAuth token endpoint
 * checking a service account's signed JWT.
 */
import { createVerify, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { encodeEvent, encodeException } from '../../src/protocols/eventstream.js';
import { signRequest, type AWSCredentials } from '../../src/providers/clouds/aws.js';
import { everyNBytes, writePieces, type RecordedRequest } from './stand-in.js';

export const AWS_KEYS: AWSCredentials = { accessKeyId: 'AKIDEXAMPLESTANDIN', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

/** ConverseStream events as frames: `[eventType, payload]`, each payload padded with `p` as Bedrock pads them. */
export function converseFrames(events: [string, Record<string, unknown>][]): Buffer {
  return Buffer.concat(events.map(([type, payload], i) => encodeEvent(type, { ...payload, p: 'abcdefghijklmnopqrstuvwxyz'.slice(0, (i % 7) + 3) })));
}

export function exceptionFrame(type: string, message: string): Buffer {
  return Buffer.from(encodeException(type, message));
}

/** A ConverseStream reply: text in pieces, then stop reason and usage (with cache counts). */
export function converseText(text: string[], usage: Record<string, number>, stopReason = 'end_turn'): Buffer {
  return converseFrames([
    ['messageStart', { role: 'assistant' }],
    ...text.map((t): [string, Record<string, unknown>] => ['contentBlockDelta', { contentBlockIndex: 0, delta: { text: t } }]),
    ['contentBlockStop', { contentBlockIndex: 0 }],
    ['messageStop', { stopReason }],
    ['metadata', { usage, metrics: { latencyMs: 412 } }],
  ]);
}

/** A ConverseStream reply that calls a tool, its input in fragments. */
export function converseToolUse(id: string, name: string, inputPieces: string[], usage: Record<string, number>): Buffer {
  return converseFrames([
    ['messageStart', { role: 'assistant' }],
    ['contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Ich prüfe das.' } }],
    ['contentBlockStop', { contentBlockIndex: 0 }],
    ['contentBlockStart', { contentBlockIndex: 1, start: { toolUse: { toolUseId: id, name } } }],
    ...inputPieces.map((input): [string, Record<string, unknown>] => ['contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input } } }]),
    ['contentBlockStop', { contentBlockIndex: 1 }],
    ['messageStop', { stopReason: 'tool_use' }],
    ['metadata', { usage, metrics: { latencyMs: 380 } }],
  ]);
}

/** Write an event stream, optionally one byte per write. */
export async function sendEventStream(res: ServerResponse, body: Buffer, byteByByte = false): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': 'b1d7c1a2-0000-4000-8000-000000000001' });
  res.flushHeaders();
  await writePieces(res, body, byteByByte ? everyNBytes(body.length, 1) : [], 0);
}

export function sendAWSError(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` });
  res.end(JSON.stringify({ message }));
}

/**
 * Check a request's SigV4 signature as AWS does: recompute it from the signed headers, the
 * body and the date the request carries, with the keys the stand-in knows. Returns why it fails.
 */
export async function sigv4Problem(req: RecordedRequest, host: string, keys: AWSCredentials = AWS_KEYS): Promise<string | undefined> {
  const auth = String(req.headers.authorization ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/bedrock\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return `Authorization header is not a SigV4 signature: ${auth.slice(0, 60)}`;
  const [, keyId, day, region, signedHeaders] = m as unknown as [string, string, string, string, string];
  if (keyId !== keys.accessKeyId) return `unknown access key ${keyId}`;
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(day)) return 'x-amz-date does not match the credential scope';
  if (keys.sessionToken !== undefined && req.headers['x-amz-security-token'] !== keys.sessionToken) return 'the session token is missing or wrong';
  const headers: Record<string, string> = {};
  for (const name of signedHeaders.split(';')) {
    if (name === 'host' || name === 'x-amz-date' || name === 'x-amz-security-token') continue;
    headers[name] = String(req.headers[name] ?? '');
  }
  const date = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const expected = await signRequest({ url: `http://${host}${req.url}`, headers, body: req.body }, keys, region, 'bedrock', { date });
  return expected.headers.authorization === auth ? undefined : 'The request signature we calculated does not match the signature you provided.';
}

/** A service account of our own: its key file (token_uri at `tokenURL`) and the public key to check its JWTs. */
export function serviceAccount(tokenURL: string, email: string): { path: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const dir = mkdtempSync(join(tmpdir(), 'sb-vertex-'));
  const path = join(dir, 'key.json');
  writeFileSync(
    path,
    JSON.stringify({
      type: 'service_account',
      project_id: 'acme-prod',
      private_key_id: 'a1b2c3',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      client_email: email,
      client_id: '1234567890',
      token_uri: tokenURL,
    }),
  );
  return { path, publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** Check a token request as Google's token endpoint does: grant type, RS256 signature, claims. */
export function jwtProblem(body: string, publicKey: string, audience: string, nowMs: number): string | undefined {
  const form = new URLSearchParams(body);
  if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return 'unsupported grant_type';
  const [header, claims, signature] = (form.get('assertion') ?? '').split('.');
  if (!header || !claims || !signature) return 'assertion is not a JWT';
  const ok = createVerify('RSA-SHA256').update(`${header}.${claims}`).verify(publicKey, Buffer.from(signature, 'base64url'));
  if (!ok) return 'Invalid JWT Signature.';
  const c = JSON.parse(Buffer.from(claims, 'base64url').toString()) as { aud?: string; scope?: string; iat?: number; exp?: number };
  if (c.aud !== audience) return `wrong audience ${c.aud}`;
  if (!c.scope?.includes('cloud-platform')) return 'missing scope';
  const now = Math.floor(nowMs / 1000);
  if (c.iat === undefined || c.exp === undefined || Math.abs(c.iat - now) > 300 || c.exp - c.iat > 3600) return 'Invalid JWT: Token must be a short-lived token and in a reasonable timeframe';
  return undefined;
}
