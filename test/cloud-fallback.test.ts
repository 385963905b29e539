/**
 * A fallback chain across the clouds: Anthropic overloaded, Bedrock unavailable, Vertex
 * answers. Each stand-in speaks its own cloud's wire format and auth.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { catalogCandidates } from '../src/catalog/candidates.js';
import { Chat } from '../src/index.js';
import { ProviderRegistry } from '../src/providers/registry.js';
import { AWS_KEYS, sendAWSError, sigv4Problem } from './helpers/clouds.js';
import { sendJSON, sendSSE, sse, startStandIn, type StandIn } from './helpers/stand-in.js';

let server: StandIn;
beforeAll(async () => {
  server = await startStandIn(async (req, res) => {
    if (req.url.startsWith('/anthropic/')) {
      return sendJSON(res, 529, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    }
    if (req.url.startsWith('/bedrock/')) {
      const problem = await sigv4Problem(req, new URL(server.url).host);
      if (problem) return sendAWSError(res, 403, 'InvalidSignatureException', problem);
      return sendAWSError(res, 503, 'ServiceUnavailableException', 'Bedrock is unable to process your request.');
    }
    if (req.headers.authorization !== 'Bearer ya29.fallback') return sendJSON(res, 401, { error: { code: 401, message: 'UNAUTHENTICATED', status: 'UNAUTHENTICATED' } });
    return sendSSE(
      res,
      sse([
        { event: 'message_start', data: { type: 'message_start', message: { id: 'msg_fb', model: 'claude-sonnet-4-5-20250929', content: [], usage: { input_tokens: 14, output_tokens: 1 } } } },
        { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
        { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hier ist Vertex.' } } },
        { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
        { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 6 } } },
        { event: 'message_stop', data: { type: 'message_stop' } },
      ]),
    );
  });
});
afterAll(() => server.close());

it('falls back from anthropic to bedrock to vertex, and prices the answer at Vertex', async () => {
  const chat = new Chat('claude-sonnet-4-5@anthropic->claude-sonnet-4-5@bedrock->claude-sonnet-4-5@vertex', {
    env: {
      ANTHROPIC_API_KEY: 'sk-ant-fallback-test-key',
      ANTHROPIC_BASE_URL: `${server.url}/anthropic`,
      AWS_ACCESS_KEY_ID: AWS_KEYS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: AWS_KEYS.secretAccessKey,
      AWS_REGION: 'us-west-2',
      BEDROCK_BASE_URL: `${server.url}/bedrock`,
      VERTEX_ACCESS_TOKEN: 'ya29.fallback',
      GOOGLE_CLOUD_PROJECT: 'acme-prod',
      GOOGLE_CLOUD_LOCATION: 'us-east5',
      VERTEX_BASE_URL: `${server.url}/vertex`,
    },
    routing: { retry: { maxRetries: 0 } },
  });
  expect(await chat.send('Wer antwortet?')).toBe('Hier ist Vertex.');
  const paths = server.requests.map((r) => r.url);
  expect(paths).toEqual([
    '/anthropic/v1/messages',
    '/bedrock/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream',
    '/vertex/v1/projects/acme-prod/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5:streamRawPredict',
  ]);
  expect(chat.lastTurn?.provider).toBe('vertex');
  expect(chat.lastTurn?.usage.cost).toBe((14 * 3 + 6 * 15) / 1e6);
});

it('counts a cloud among the routing candidates only when its credentials are set', () => {
  const registry = new ProviderRegistry();
  const providers = (env: Record<string, string>) => (catalogCandidates('anthropic/claude-sonnet-4.5', registry, env) ?? []).map((c) => `${c.provider}:${c.providerModel}:${c.inputPrice}`);
  const base = { ANTHROPIC_API_KEY: 'sk-ant-x' };
  expect(providers(base).some((p) => p.startsWith('bedrock') || p.startsWith('vertex'))).toBe(false);
  expect(providers({ ...base, AWS_ACCESS_KEY_ID: 'AKIDX', AWS_SECRET_ACCESS_KEY: 'secret', VERTEX_ACCESS_TOKEN: 'ya29.x' })).toEqual(
    expect.arrayContaining([
      'bedrock:anthropic.claude-sonnet-4-5-20250929-v1:0:3.3',
      'bedrock:global.anthropic.claude-sonnet-4-5-20250929-v1:0:3',
      'vertex:claude-sonnet-4-5:3',
    ]),
  );
});
