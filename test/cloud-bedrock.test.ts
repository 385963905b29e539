/**
 * Amazon Bedrock against a local stand-in of the Converse API: SigV4 checked on every request
 * (the stand-in recomputes the signature), ConverseStream in binary event-stream frames.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { AuthenticationError, ConfigError, MissingCredentialsError, RateLimitError } from '../src/errors.js';
import { Chat, tool } from '../src/index.js';
import { computeCost, priceFor } from '../src/catalog/cost.js';
import type { Env } from '../src/providers/resolve.js';
import { AWS_KEYS, converseText, converseToolUse, exceptionFrame, sendAWSError, sendEventStream, sigv4Problem, converseFrames } from './helpers/clouds.js';
import { startStandIn, type RecordedRequest, type StandIn } from './helpers/stand-in.js';

type Reply = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;
let server: StandIn;
let replies: Reply[] = [];
let keys = AWS_KEYS;
beforeAll(async () => {
  server = await startStandIn(async (req, res) => {
    const bearer = String(req.headers.authorization ?? '').startsWith('Bearer ');
    if (bearer) {
      if (req.headers.authorization !== 'Bearer ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl') return sendAWSError(res, 403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
    } else {
      const problem = await sigv4Problem(req, new URL(server.url).host, keys);
      if (problem) return sendAWSError(res, 403, 'InvalidSignatureException', problem);
    }
    const reply = replies.shift();
    if (!reply) return sendAWSError(res, 500, 'InternalServerException', 'no reply scripted');
    return reply(req, res);
  });
});
afterAll(() => server.close());
beforeEach(() => {
  replies = [];
  keys = AWS_KEYS;
});

const env = (extra: Env = {}): Env => ({
  AWS_ACCESS_KEY_ID: AWS_KEYS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: AWS_KEYS.secretAccessKey,
  AWS_REGION: 'us-east-1',
  BEDROCK_BASE_URL: `${server.url}/rt`,
  HOME: mkdtempSync(join(tmpdir(), 'sb-aws-home-')),
  ...extra,
});

const USAGE = { inputTokens: 20, outputTokens: 8, totalTokens: 1028, cacheReadInputTokens: 1000, cacheWriteInputTokens: 0 };
const body = (req: RecordedRequest) => JSON.parse(req.body) as Record<string, unknown>;

describe('Bedrock Converse', () => {
  it('streams a chat read from event-stream frames written one byte at a time, signed with SigV4, at the exact price', async () => {
    replies.push((_req, res) => sendEventStream(res, converseText(['Grüezi ', 'aus Zürich ', '🏔'], USAGE), true));
    const chat = new Chat('claude-sonnet-4-5@bedrock', { env: env(), system: 'Sei kurz.' });
    const pieces: string[] = [];
    for await (const e of chat.stream('Hallo!')) if (e.type === 'text-delta') pieces.push(e.text);
    expect(pieces.join('')).toBe('Grüezi aus Zürich 🏔');
    const sent = server.requests[server.requests.length - 1] as RecordedRequest;
    // The region's cross-region inference profile, as newer Claude models on Bedrock require.
    expect(sent.url).toBe('/rt/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream');
    expect(sent.headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
    expect(body(sent)).toEqual({ messages: [{ role: 'user', content: [{ text: 'Hallo!' }] }], system: [{ text: 'Sei kurz.' }] });
    const turn = chat.lastTurn;
    expect(turn?.provider).toBe('bedrock');
    expect(turn?.usage).toMatchObject({ promptTokens: 1020, completionTokens: 8, totalTokens: 1028, cachedTokens: 1000, cacheWriteTokens: 0 });
    // In-region and geographic profiles: $3.30 / $16.50 per million, cache reads $0.33.
    expect(turn?.usage.cost).toBe((20 * 3.3 + 1000 * 0.33 + 8 * 16.5) / 1e6);
    expect(turn?.usage.cost).toBe(computeCost(turn!.usage, priceFor('anthropic.claude-sonnet-4-5-20250929-v1:0', 'bedrock')));
  });

  it('prices a global inference profile at the global price', async () => {
    replies.push((_req, res) => sendEventStream(res, converseText(['ok'], { inputTokens: 1000, outputTokens: 100, totalTokens: 1100 })));
    const chat = new Chat('global.anthropic.claude-sonnet-4-5-20250929-v1:0@bedrock', { env: env() });
    await chat.send('Hi');
    expect(chat.lastTurn?.usage.cost).toBe((1000 * 3 + 100 * 15) / 1e6);
  });

  it('routes @lowest-cost to the global inference profile and prices it there', async () => {
    const processEnv = env();
    for (const [k, v] of Object.entries(processEnv)) vi.stubEnv(k, v ?? '');
    try {
      replies.push((_req, res) => sendEventStream(res, converseText(['ok'], { inputTokens: 1000, outputTokens: 100, totalTokens: 1100 })));
      const chat = new Chat('anthropic/claude-sonnet-4.5@lowest-cost', { env: processEnv });
      await chat.send('Hi');
      expect(server.requests[server.requests.length - 1]?.url).toBe('/rt/model/global.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream');
      expect(chat.lastTurn?.usage.cost).toBe((1000 * 3 + 100 * 15) / 1e6);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('runs a tool round trip: toolUse in fragments, toolResult sent back', async () => {
    replies.push((_req, res) => sendEventStream(res, converseToolUse('tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', 'get_weather', ['{"city": "Łó', 'dź"}'], { inputTokens: 50, outputTokens: 20, totalTokens: 70 })));
    replies.push((_req, res) => sendEventStream(res, converseText(['In Łódź ist es 12 °C.'], { inputTokens: 90, outputTokens: 12, totalTokens: 102 })));
    const seen: unknown[] = [];
    const weather = tool({ name: 'get_weather', description: 'Weather for a city', parameters: z.object({ city: z.string() }), execute: (args) => (seen.push(args), { celsius: 12 }) });
    const chat = new Chat('claude-sonnet-4-5@bedrock', { env: env() });
    expect(await chat.send('Wetter in Łódź?', { tools: [weather] })).toBe('In Łódź ist es 12 °C.');
    expect(seen).toEqual([{ city: 'Łódź' }]);
    const [first, second] = server.requests.slice(-2).map(body);
    expect(first?.toolConfig).toEqual({ tools: [{ toolSpec: { name: 'get_weather', description: 'Weather for a city', inputSchema: { json: expect.objectContaining({ type: 'object' }) } } }] });
    expect(second?.messages).toEqual([
      { role: 'user', content: [{ text: 'Wetter in Łódź?' }] },
      { role: 'assistant', content: [{ text: 'Ich prüfe das.' }, { toolUse: { toolUseId: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', name: 'get_weather', input: { city: 'Łódź' } } }] },
      { role: 'user', content: [{ toolResult: { toolUseId: 'tooluse_kZJMlvQmRJ6eAyJE5GIl7Q', content: [{ text: '{"celsius":12}' }] } }] },
    ]);
    expect(chat.lastTurn?.usage).toMatchObject({ promptTokens: 140, completionTokens: 32 });
    expect(chat.lastTurn?.steps?.map((s) => s.usage.cost)).toEqual([(50 * 3.3 + 20 * 16.5) / 1e6, (90 * 3.3 + 12 * 16.5) / 1e6]);
  });

  it('sends images and documents as bytes', async () => {
    replies.push((_req, res) => sendEventStream(res, converseText(['Ein Diagramm.'], { inputTokens: 900, outputTokens: 5, totalTokens: 905 })));
    const chat = new Chat('claude-sonnet-4-5@bedrock', { env: env() });
    await chat.send([
      { type: 'text', text: 'Was zeigt das?' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
      { type: 'file', file: { filename: 'Q3 report.v2.pdf', file_data: 'data:application/pdf;base64,JVBERi0x' } },
    ]);
    expect(body(server.requests[server.requests.length - 1] as RecordedRequest).messages).toEqual([
      {
        role: 'user',
        content: [
          { text: 'Was zeigt das?' },
          { image: { format: 'png', source: { bytes: 'iVBORw0KGgo=' } } },
          { document: { format: 'pdf', name: 'Q3 report v2', source: { bytes: 'JVBERi0x' } } },
        ],
      },
    ]);
  });

  it('signs temporary keys with their session token', async () => {
    keys = { ...AWS_KEYS, sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLESESSION' };
    replies.push((_req, res) => sendEventStream(res, converseText(['ok'], USAGE)));
    await new Chat('claude-sonnet-4-5@bedrock', { env: env({ AWS_SESSION_TOKEN: keys.sessionToken }) }).send('Hi');
    const sent = server.requests[server.requests.length - 1] as RecordedRequest;
    expect(sent.headers['x-amz-security-token']).toBe(keys.sessionToken);
    expect(String(sent.headers.authorization)).toContain('x-amz-security-token');
  });

  it('reads keys and region from the shared files for AWS_PROFILE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-aws-'));
    writeFileSync(join(dir, 'credentials'), `[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = wrong\n\n[work]\naws_access_key_id = ${AWS_KEYS.accessKeyId}\naws_secret_access_key = ${AWS_KEYS.secretAccessKey}\n`);
    writeFileSync(join(dir, 'config'), '[profile work]\nregion = eu-central-1\n');
    replies.push((_req, res) => sendEventStream(res, converseText(['Hallo'], USAGE)));
    const chat = new Chat('claude-sonnet-4-5@bedrock', {
      env: { AWS_PROFILE: 'work', AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'), AWS_CONFIG_FILE: join(dir, 'config'), BEDROCK_BASE_URL: `${server.url}/rt`, HOME: dir },
    });
    expect(await chat.send('Hi')).toBe('Hallo');
    const sent = server.requests[server.requests.length - 1] as RecordedRequest;
    expect(String(sent.headers.authorization)).toContain(`${AWS_KEYS.accessKeyId}/`);
    expect(String(sent.headers.authorization)).toContain('/eu-central-1/bedrock/aws4_request');
    expect(sent.url).toContain('/model/eu.anthropic.claude-sonnet-4-5');
  });

  it('sends a Bedrock API key as a bearer token instead of signing', async () => {
    replies.push((_req, res) => sendEventStream(res, converseText(['Hi'], USAGE)));
    await new Chat('claude-sonnet-4-5@bedrock', { env: { AWS_BEARER_TOKEN_BEDROCK: 'ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl', AWS_REGION: 'us-west-2', BEDROCK_BASE_URL: `${server.url}/rt` } }).send('Hi');
    const sent = server.requests[server.requests.length - 1] as RecordedRequest;
    expect(sent.headers.authorization).toBe('Bearer ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl');
    expect(sent.headers['x-amz-date']).toBeUndefined();
  });

  it('turns a rejected signature into an AuthenticationError that shows no secret', async () => {
    const err = await new Chat('claude-sonnet-4-5@bedrock', { env: env({ AWS_SECRET_ACCESS_KEY: 'not-the-right-secret-key-0123456789' }) }).send('Hi').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as AuthenticationError).providerCode).toBe('InvalidSignatureException');
    expect(String((err as Error).message)).not.toContain('not-the-right-secret-key');
  });

  it('names what to set when credentials are missing, and refuses an unknown region before sending', async () => {
    const before = server.requests.length;
    const missing = await new Chat('claude-sonnet-4-5@bedrock', { env: { AWS_REGION: 'us-east-1', HOME: mkdtempSync(join(tmpdir(), 'sb-aws-none-')) } }).send('Hi').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(MissingCredentialsError);
    expect((missing as Error).message).toMatch(/AWS_ACCESS_KEY_ID.*AWS_PROFILE.*AWS_BEARER_TOKEN_BEDROCK/);
    const region = await new Chat('claude-sonnet-4-5@bedrock', { env: { ...env(), AWS_REGION: 'us-eest-1', BEDROCK_BASE_URL: undefined } }).send('Hi').catch((e: unknown) => e);
    expect(region).toBeInstanceOf(ConfigError);
    expect((region as Error).message).toContain('"us-eest-1"');
    expect(server.requests.length).toBe(before);
  });

  it('raises a throttlingException frame inside the stream as a RateLimitError; history stays as it was', async () => {
    replies.push((_req, res) =>
      sendEventStream(res, Buffer.concat([converseFrames([['messageStart', { role: 'assistant' }], ['contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Hal' } }]]), exceptionFrame('throttlingException', 'Too many tokens, please wait before trying again.')])),
    );
    const chat = new Chat('claude-sonnet-4-5@bedrock', { env: env(), routing: { retry: { maxRetries: 0 } } });
    const err = await chat.send('Hi').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as Error).message).toContain('Too many tokens');
    expect(chat.history).toEqual([]);
  });
});
