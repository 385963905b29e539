/**
 * Azure OpenAI against a local stand-in: the v1 paths and the deployment paths with
 * `api-version`, the `api-key` header or an Entra ID bearer token, deployments mapped to
 * catalog models for prices, and content-filter results.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AuthenticationError, ConfigError, MissingCredentialsError } from '../src/errors.js';
import { Chat, tool } from '../src/index.js';
import { createRegistry } from '../src/providers/config.js';
import type { Env } from '../src/providers/resolve.js';
import { openaiStreamChunk } from './helpers/fixtures.js';
import { sendJSON, sendSSE, sse, startStandIn, type RecordedRequest, type StandIn } from './helpers/stand-in.js';

const KEY = '3f9c2b7a61d04e8f9a0b1c2d3e4f5a6b';
let server: StandIn;
type Reply = (req: RecordedRequest, res: ServerResponse) => void | Promise<void>;
const replies: Reply[] = [];
beforeAll(async () => {
  server = await startStandIn(async (req, res) => {
    const keyed = req.headers['api-key'] === KEY;
    const entra = req.headers.authorization === 'Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra';
    if (!keyed && !entra) {
      return sendJSON(res, 401, { error: { code: '401', message: 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.' } });
    }
    const reply = replies.shift();
    if (!reply) return sendJSON(res, 500, { error: { code: 'InternalServerError', message: 'no reply scripted' } });
    return reply(req, res);
  });
});
afterAll(() => server.close());

/** Azure's chunks: the model, an empty first chunk with prompt_filter_results, content_filter_results on choices. */
const chunk = (delta: Record<string, unknown>, finish: string | null = null, filters: Record<string, unknown> = { hate: { filtered: false, severity: 'safe' } }) => ({
  ...openaiStreamChunk(delta, finish),
  id: 'chatcmpl-AZ1',
  model: 'gpt-4o-2024-11-20',
  provider: undefined,
  choices: [{ index: 0, delta, finish_reason: finish, content_filter_results: filters }],
});
const promptFilter = { id: '', object: '', created: 0, model: '', choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: { hate: { filtered: false, severity: 'safe' } } }] };
const usage = (prompt: number, completion: number) => ({ id: 'chatcmpl-AZ1', object: 'chat.completion.chunk', model: 'gpt-4o-2024-11-20', choices: [], usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } });
const textReply = (text: string, prompt: number, completion: number): Reply => (_req, res) =>
  sendSSE(res, sse([{ data: promptFilter }, { data: chunk({ role: 'assistant', content: text }) }, { data: chunk({}, 'stop') }, { data: usage(prompt, completion) }, { data: '[DONE]' }]), [5, 33, 120]);

function setup(extra: Env = {}, settings: Record<string, unknown> = { deployments: { 'prod-gpt4o': 'openai/gpt-4o' } }) {
  const home = mkdtempSync(join(tmpdir(), 'sb-azure-'));
  writeFileSync(join(home, 'config.json'), JSON.stringify({ azure: settings }));
  const env: Env = { SWITCHBOARD_HOME: home, AZURE_OPENAI_ENDPOINT: `${server.url}/`, AZURE_OPENAI_API_KEY: KEY, ...extra };
  return { env, registry: createRegistry(home, env) };
}
const last = () => server.requests[server.requests.length - 1] as RecordedRequest;

describe('Azure OpenAI', () => {
  it('streams a chat on the v1 path with the api-key header, priced as the mapped catalog model', async () => {
    replies.push(textReply('Hallo Łukasz!', 1200, 300));
    const chat = new Chat('prod-gpt4o@azure', setup());
    const pieces: string[] = [];
    for await (const e of chat.stream('Ich bin Łukasz.')) if (e.type === 'text-delta') pieces.push(e.text);
    expect(pieces.join('')).toBe('Hallo Łukasz!');
    expect(last().url).toBe('/openai/v1/chat/completions');
    expect(last().headers['api-key']).toBe(KEY);
    expect(last().headers.authorization).toBeUndefined();
    expect(JSON.parse(last().body)).toMatchObject({ model: 'prod-gpt4o', stream: true });
    // gpt-4o: $2.50 in, $10 out per million, Global Standard.
    expect(chat.lastTurn?.usage.cost).toBe((1200 * 2.5 + 300 * 10) / 1e6);
    expect(chat.lastTurn?.provider).toBe('azure');
  });

  it('uses the deployment path and api-version when one is set; a tool round trip', async () => {
    replies.push((_req, res) =>
      sendSSE(
        res,
        sse([
          { data: promptFilter },
          { data: chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_az1', type: 'function', function: { name: 'lookup', arguments: '{"sku":' } }] }) },
          { data: chunk({ tool_calls: [{ index: 0, function: { arguments: ' "ÄÖÜ-1"}' } }] }) },
          { data: chunk({}, 'tool_calls') },
          { data: usage(80, 20) },
          { data: '[DONE]' },
        ]),
      ),
    );
    replies.push(textReply('Auf Lager: 3.', 120, 8));
    const lookup = tool({ name: 'lookup', parameters: z.object({ sku: z.string() }), execute: ({ sku }) => ({ sku, stock: 3 }) });
    const chat = new Chat('prod-gpt4o@azure', setup({ AZURE_OPENAI_API_VERSION: '2024-10-21' }));
    expect(await chat.send('Lager für ÄÖÜ-1?', { tools: [lookup] })).toBe('Auf Lager: 3.');
    expect(last().url).toBe('/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21');
    const sent = JSON.parse(last().body) as { messages: { role: string; content?: string }[] };
    expect(sent.messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'call_az1', content: '{"sku":"ÄÖÜ-1","stock":3}' });
    expect(chat.lastTurn?.steps?.map((s) => s.usage.cost)).toEqual([(80 * 2.5 + 20 * 10) / 1e6, (120 * 2.5 + 8 * 10) / 1e6]);
  });

  it('takes a Microsoft Entra ID token as a bearer token instead of the key', async () => {
    replies.push(textReply('Ja.', 10, 2));
    const { env, registry } = setup({ AZURE_OPENAI_API_KEY: undefined, AZURE_OPENAI_AD_TOKEN: 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra' });
    await new Chat('prod-gpt4o@azure', { env, registry }).send('Hi');
    expect(last().headers.authorization).toBe('Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.entra');
    expect(last().headers['api-key']).toBeUndefined();
  });

  it('reports the content filter as a distinct finish reason with its annotations', async () => {
    replies.push((_req, res) =>
      sendSSE(
        res,
        sse([
          { data: promptFilter },
          { data: chunk({ role: 'assistant', content: 'Ich kann' }) },
          { data: chunk({}, 'content_filter', { hate: { filtered: false, severity: 'safe' }, violence: { filtered: true, severity: 'high' } }) },
          { data: usage(30, 3) },
          { data: '[DONE]' },
        ]),
      ),
    );
    const chat = new Chat('prod-gpt4o@azure', setup());
    await chat.send('…');
    expect(chat.lastTurn?.finishReason).toBe('content-filter');
    expect(chat.lastTurn?.rawFinishReason).toBe('content_filter');
    expect(chat.lastTurn?.annotations).toEqual([{ type: 'content_filter', content_filter_results: { hate: { filtered: false, severity: 'safe' }, violence: { filtered: true, severity: 'high' } } }]);
  });

  it('names what to set, and keeps the key out of errors', async () => {
    const missing = await new Chat('prod-gpt4o@azure', { env: { AZURE_OPENAI_ENDPOINT: server.url } }).send('Hi').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(MissingCredentialsError);
    expect((missing as Error).message).toContain('AZURE_OPENAI_API_KEY');
    const resource = await new Chat('prod-gpt4o@azure', { env: { AZURE_OPENAI_API_KEY: KEY } }).send('Hi').catch((e: unknown) => e);
    expect(resource).toBeInstanceOf(ConfigError);
    expect((resource as Error).message).toContain('AZURE_OPENAI_ENDPOINT');
    const wrong = await new Chat('prod-gpt4o@azure', { env: { AZURE_OPENAI_ENDPOINT: server.url, AZURE_OPENAI_API_KEY: 'ffffffffffffffffffffffffffffffff' } }).send('Hi').catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(AuthenticationError);
    expect((wrong as Error).message).not.toContain('ffffffffffffffffffffffffffffffff');
  });
});
