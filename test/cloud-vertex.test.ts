/**
 * Vertex AI against a local stand-in: Google's OAuth token endpoint (checking the service
 * account's signed JWT) and the regional aiplatform paths for Gemini and for Claude
 * (`:streamRawPredict`), each checking the bearer token.
 */
import type { ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { AuthenticationError, ConfigError, MissingCredentialsError } from '../src/errors.js';
import { Chat, tool } from '../src/index.js';
import type { Env } from '../src/providers/resolve.js';
import { jwtProblem, serviceAccount } from './helpers/clouds.js';
import { sendJSON, sendSSE, sse, startStandIn, type RecordedRequest, type StandIn } from './helpers/stand-in.js';

let server: StandIn;
let publicKey = '';
let issued = 0;
/** Tokens the stand-in accepts, with when each stops being accepted. */
const valid = new Map<string, number>();
type Reply = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;
let replies: Reply[] = [];

beforeAll(async () => {
  server = await startStandIn(async (req, res) => {
    if (req.url === '/token') {
      const problem = jwtProblem(req.body, publicKey, `${server.url}/token`, Date.now());
      if (problem) return sendJSON(res, 400, { error: 'invalid_grant', error_description: problem });
      const token = `ya29.c.token-${++issued}`;
      valid.set(token, Date.now() + 3600_000);
      return sendJSON(res, 200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
    }
    const token = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
    const until = valid.get(token);
    if (until === undefined || until <= Date.now()) {
      return sendJSON(res, 401, { error: { code: 401, message: 'Request had invalid authentication credentials. Expected OAuth 2 access token.', status: 'UNAUTHENTICATED' } });
    }
    const reply = replies.shift();
    if (!reply) return sendJSON(res, 500, { error: { code: 500, message: 'no reply scripted', status: 'INTERNAL' } });
    return reply(req, res);
  });
});
afterAll(() => server.close());
afterEach(() => {
  vi.useRealTimers();
  replies = [];
});

function keyEnv(email: string): Env {
  const account = serviceAccount(`${server.url}/token`, email);
  publicKey = account.publicKey;
  return { GOOGLE_APPLICATION_CREDENTIALS: account.path, GOOGLE_CLOUD_LOCATION: 'europe-west4', VERTEX_BASE_URL: server.url };
}

const geminiChunk = (parts: Record<string, unknown>[], extra: Record<string, unknown> = {}) => ({ candidates: [{ content: { role: 'model', parts }, ...extra }], modelVersion: 'gemini-2.5-flash', responseId: 'vx-1' });
const geminiReply = (text: string, usage: Record<string, number>): Reply => (_req, res) =>
  sendSSE(res, sse([{ data: geminiChunk([{ text }]) }, { data: { ...geminiChunk([{ text: '' }], { finishReason: 'STOP' }), usageMetadata: usage } }]), [7, 19, 40]);

const claudeReply = (text: string, usage: { input_tokens: number; output_tokens: number }): Reply => (_req, res) =>
  sendSSE(
    res,
    sse([
      { event: 'message_start', data: { type: 'message_start', message: { id: 'msg_vrtx_01', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content: [], usage: { input_tokens: usage.input_tokens, output_tokens: 1 } } } },
      { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
      { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } } },
      { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
      { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: usage.output_tokens } } },
      { event: 'message_stop', data: { type: 'message_stop' } },
    ]),
    [11, 50],
  );

const last = () => server.requests[server.requests.length - 1] as RecordedRequest;

describe('Vertex AI', () => {
  it('streams Gemini at the regional path with a token from the service-account key, at the exact price', async () => {
    replies.push(geminiReply('Hallo Zoë!', { promptTokenCount: 12, candidatesTokenCount: 4, totalTokenCount: 16 }));
    const chat = new Chat('gemini-2.5-flash@vertex', { env: keyEnv('sb-gemini@acme-prod.iam.gserviceaccount.com') });
    const pieces: string[] = [];
    for await (const e of chat.stream('Ich heiße Zoë.')) if (e.type === 'text-delta') pieces.push(e.text);
    expect(pieces.join('')).toBe('Hallo Zoë!');
    expect(last().url).toBe('/v1/projects/acme-prod/locations/europe-west4/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    expect(last().headers.authorization).toMatch(/^Bearer ya29\.c\.token-\d+$/);
    expect(last().headers['x-goog-api-key']).toBeUndefined();
    // gemini-2.5-flash: $0.30 in, $2.50 out per million.
    expect(chat.lastTurn?.usage.cost).toBe((12 * 0.3 + 4 * 2.5) / 1e6);
  });

  it('calls Claude through :streamRawPredict with the Vertex anthropic_version; a tool round trip', async () => {
    replies.push((_req, res) =>
      sendSSE(
        res,
        sse([
          { event: 'message_start', data: { type: 'message_start', message: { id: 'msg_vrtx_t', model: 'claude-sonnet-4-5-20250929', content: [], usage: { input_tokens: 300, output_tokens: 1 } } } },
          { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_vrtx_1', name: 'get_time', input: {} } } },
          { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"zone": "Asia/Tōkyō"}' } } },
          { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
          { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 40 } } },
          { event: 'message_stop', data: { type: 'message_stop' } },
        ]),
      ),
    );
    replies.push(claudeReply('Es ist 14:05 in Tokio.', { input_tokens: 360, output_tokens: 12 }));
    const time = tool({ name: 'get_time', parameters: z.object({ zone: z.string() }), execute: () => '14:05' });
    const chat = new Chat('claude-sonnet-4-5@vertex', { env: keyEnv('sb-claude@acme-prod.iam.gserviceaccount.com') });
    expect(await chat.send('Wie spät ist es in Tokio?', { tools: [time] })).toBe('Es ist 14:05 in Tokio.');
    expect(last().url).toBe('/v1/projects/acme-prod/locations/europe-west4/publishers/anthropic/models/claude-sonnet-4-5:streamRawPredict');
    const body = JSON.parse(last().body) as Record<string, unknown>;
    expect(body.anthropic_version).toBe('vertex-2023-10-16');
    expect(body.model).toBeUndefined();
    expect(last().headers['anthropic-version']).toBeUndefined();
    expect((body.messages as { content: { type: string }[] }[])[2]?.content[0]).toMatchObject({ type: 'tool_result', tool_use_id: 'toolu_vrtx_1', content: '14:05' });
    expect(chat.lastTurn?.usage).toMatchObject({ promptTokens: 660, completionTokens: 52 });
    // Claude Sonnet 4.5 on Vertex: $3 in, $15 out per million, each request priced exactly.
    expect(chat.lastTurn?.steps?.map((s) => s.usage.cost)).toEqual([(300 * 3 + 40 * 15) / 1e6, (360 * 3 + 12 * 15) / 1e6]);
    expect(chat.lastTurn?.usage.cost).toBeCloseTo((660 * 3 + 52 * 15) / 1e6, 15);
  });

  it('reuses the token while it is valid and refreshes it early, mid-conversation', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    const env = keyEnv('sb-refresh@acme-prod.iam.gserviceaccount.com');
    const chat = new Chat('gemini-2.5-flash@vertex', { env });
    const usage = { promptTokenCount: 5, candidatesTokenCount: 2, totalTokenCount: 7 };
    replies.push(geminiReply('Eins.', usage), geminiReply('Zwei.', usage), geminiReply('Drei.', usage));
    await chat.send('Eins?');
    const first = last().headers.authorization;
    await chat.send('Zwei?');
    expect(last().headers.authorization).toBe(first);
    // 56 minutes on: the token has four minutes left, inside the five-minute margin.
    vi.setSystemTime(Date.now() + 56 * 60_000);
    await chat.send('Drei?');
    expect(last().headers.authorization).not.toBe(first);
    expect(server.requests.filter((r) => r.url === '/token' && r.body.includes('assertion'))).toHaveLength(issued);
    expect(chat.history.filter((m) => m.role === 'assistant').map((m) => m.content)).toEqual(['Eins.', 'Zwei.', 'Drei.']);
  });

  it('sends a given access token as it is', async () => {
    valid.set('ya29.given-token', Date.now() + 60_000);
    replies.push(geminiReply('Ja.', { promptTokenCount: 3, candidatesTokenCount: 1, totalTokenCount: 4 }));
    await new Chat('gemini-2.5-flash@vertex', { env: { VERTEX_ACCESS_TOKEN: 'ya29.given-token', GOOGLE_CLOUD_PROJECT: 'acme-dev', VERTEX_BASE_URL: server.url } }).send('Hi');
    expect(last().url).toBe('/v1/projects/acme-dev/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    expect(last().headers.authorization).toBe('Bearer ya29.given-token');
  });

  it('turns an expired token into an AuthenticationError, and missing settings into errors naming what to set', async () => {
    const expired = await new Chat('gemini-2.5-flash@vertex', { env: { VERTEX_ACCESS_TOKEN: 'ya29.expired', GOOGLE_CLOUD_PROJECT: 'acme-dev', VERTEX_BASE_URL: server.url } }).send('Hi').catch((e: unknown) => e);
    expect(expired).toBeInstanceOf(AuthenticationError);
    const none = await new Chat('gemini-2.5-flash@vertex', { env: { GOOGLE_CLOUD_PROJECT: 'acme-dev' } }).send('Hi').catch((e: unknown) => e);
    expect(none).toBeInstanceOf(MissingCredentialsError);
    expect((none as Error).message).toContain('GOOGLE_APPLICATION_CREDENTIALS');
    const project = await new Chat('gemini-2.5-flash@vertex', { env: { VERTEX_ACCESS_TOKEN: 'ya29.x' } }).send('Hi').catch((e: unknown) => e);
    expect(project).toBeInstanceOf(ConfigError);
    expect((project as Error).message).toContain('GOOGLE_CLOUD_PROJECT');
  });

  it('reports a refused key exchange without the private key', async () => {
    const env = keyEnv('sb-revoked@acme-prod.iam.gserviceaccount.com');
    publicKey = serviceAccount(`${server.url}/token`, 'other@acme-prod.iam.gserviceaccount.com').publicKey;
    const err = await new Chat('gemini-2.5-flash@vertex', { env }).send('Hi').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingCredentialsError);
    expect((err as Error).message).toContain('Invalid JWT Signature');
    expect((err as Error).message).not.toContain('PRIVATE KEY');
  });
});
