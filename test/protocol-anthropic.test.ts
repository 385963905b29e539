import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationError, ProtocolError, RateLimitError, ServerError, type APIError } from '../src/errors.js';
import { anthropicProtocol, readAnthropicUsage } from '../src/protocols/anthropic.js';
import type { Message } from '../src/types.js';
import { ANTHROPIC_STREAM } from './helpers/fixtures.js';
import {
  collect, endpoint, everyNBytes, failure, reasoningOf, request, sendJSON, sendSSE, sse, startStandIn, textOf, toolCallsOf,
  type StandIn,
} from './helpers/stand-in.js';

const KEY = 'sk-ant-api03-secretsecretsecret';
const ERROR_BODY = (type: string, message: string) => ({ type: 'error', error: { type, message } });

let server: StandIn;
beforeAll(async () => {
  server = await startStandIn(async (req, res) => {
    const scenario = req.url.split('/')[1];
    switch (scenario) {
      case 'ok':
        return sendSSE(res, ANTHROPIC_STREAM, everyNBytes(Buffer.byteLength(ANTHROPIC_STREAM), 7));
      case 'no-stop':
        return sendSSE(res, ANTHROPIC_STREAM.slice(0, ANTHROPIC_STREAM.indexOf('event: message_stop')));
      case 'overloaded':
        return sendSSE(
          res,
          ANTHROPIC_STREAM.slice(0, ANTHROPIC_STREAM.indexOf('event: ping')) +
            sse([{ event: 'error', data: ERROR_BODY('overloaded_error', 'Overloaded') }]),
        );
      case 'json':
        return sendJSON(res, 200, {
          id: 'msg_02',
          type: 'message',
          role: 'assistant',
          model: 'claude-haiku-4-5',
          content: [
            { type: 'text', text: 'Let me check.' },
            { type: 'tool_use', id: 'toolu_9', name: 'lookup', input: { q: 'café' } },
          ],
          stop_reason: 'tool_use',
          usage: { input_tokens: 10, output_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 5 },
        });
      case '401':
        return sendJSON(res, 401, ERROR_BODY('authentication_error', 'invalid x-api-key'));
      case '429':
        return sendJSON(res, 429, ERROR_BODY('rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit'), { 'retry-after': '12' });
      case '529':
        return sendJSON(res, 529, ERROR_BODY('overloaded_error', 'Overloaded'));
      default:
        return sendJSON(res, 404, ERROR_BODY('not_found_error', `no scenario ${scenario}`));
    }
  });
});
afterAll(() => server.close());

const at = (scenario: string) => endpoint('anthropic', `${server.url}/${scenario}`, KEY, 'anthropic');

describe('Anthropic usage', () => {
  it('counts cache reads and writes as input tokens', () => {
    expect(readAnthropicUsage({ input_tokens: 25, cache_creation_input_tokens: 1000, cache_read_input_tokens: 3000, output_tokens: 89 })).toEqual({
      promptTokens: 4025,
      completionTokens: 89,
      totalTokens: 4114,
      cachedTokens: 3000,
      cacheWriteTokens: 1000,
    });
    expect(readAnthropicUsage({ input_tokens: 7, output_tokens: 3 })).toEqual({ promptTokens: 7, completionTokens: 3, totalTokens: 10 });
  });
});

describe('Anthropic protocol against a stand-in server', () => {
  it('reads a stream cut every 7 bytes: thinking, text, tool-call fragments, usage', async () => {
    const events = await collect(at('ok'));
    expect(events[0]).toEqual({ type: 'start', model: 'claude-sonnet-4-5-20250929', id: 'msg_01' });
    expect(reasoningOf(events)).toBe('Das Wetter… prüfen.');
    expect(events).toContainEqual({ type: 'reasoning-delta', text: '', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA' });
    expect(textOf(events)).toBe('Grüße aus 東京 🗼');
    const calls = toolCallsOf(events);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ id: 'toolu_01', name: 'get_weather' });
    expect(JSON.parse(calls[0]?.arguments ?? '')).toEqual({ city: 'Zürich', days: 3 });
    expect(events.filter((e) => e.type === 'finish')).toEqual([{ type: 'finish', reason: 'tool-calls', rawReason: 'tool_use' }]);
    const usage = events.filter((e) => e.type === 'usage');
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ usage: { promptTokens: 4025, completionTokens: 89, totalTokens: 4114, cachedTokens: 3000, cacheWriteTokens: 1000 } });
  });

  it('sends the Messages request: headers, system, merged turns, tool blocks, media, max_tokens', async () => {
    const messages: Message[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather in Zürich and Bern?' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'See the map.' },
          { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          { type: 'image_url', image_url: { url: 'https://example.com/map.jpg' } },
          { type: 'file', file: { filename: 'report.pdf', file_data: 'data:application/pdf;base64,JVBERi0x' } },
        ],
      },
      {
        role: 'assistant',
        content: 'Checking.',
        tool_calls: [
          { id: 'toolu_a', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Zürich"}' } },
          { id: 'toolu_b', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Bern"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_a', content: '12°C' },
      { role: 'tool', tool_call_id: 'toolu_b', content: '10°C' },
    ];
    await collect(
      at('ok'),
      request({
        model: 'claude-sonnet-4-5',
        messages,
        params: {
          temperature: 0.3,
          stop: 'END',
          tools: [{ name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } }],
          toolChoice: 'required',
        },
      }),
    );
    const sent = server.requests[server.requests.length - 1];
    expect(sent?.url).toBe('/ok/v1/messages');
    expect(sent?.headers['x-api-key']).toBe(KEY);
    expect(sent?.headers['anthropic-version']).toBe('2023-06-01');
    expect(sent?.headers.authorization).toBeUndefined();
    const body = JSON.parse(sent?.body ?? '{}') as Record<string, unknown>;
    expect(body).toMatchObject({ model: 'claude-sonnet-4-5', max_tokens: 4096, stream: true, system: 'Be brief.', temperature: 0.3, stop_sequences: ['END'] });
    expect(body.tools).toEqual([{ name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }]);
    expect(body.tool_choice).toEqual({ type: 'any' });
    expect(body.messages).toEqual([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Weather in Zürich and Bern?' },
          { type: 'text', text: 'See the map.' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/map.jpg' } },
          { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0x' } },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking.' },
          { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: { city: 'Zürich' } },
          { type: 'tool_use', id: 'toolu_b', name: 'get_weather', input: { city: 'Bern' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_a', content: '12°C' },
          { type: 'tool_result', tool_use_id: 'toolu_b', content: '10°C' },
        ],
      },
    ]);
  });

  it('turns a reasoning budget into thinking with room left in max_tokens', async () => {
    const wire = anthropicProtocol.buildRequest(request({ params: { reasoning: { maxTokens: 2000 } } }), endpoint('anthropic', 'https://api.anthropic.com'));
    const body = JSON.parse(wire.body) as Record<string, unknown>;
    expect(body.thinking).toEqual({ type: 'enabled', budget_tokens: 2000 });
    expect(body.max_tokens).toBe(6096);
    expect(wire.url).toBe('https://api.anthropic.com/v1/messages');
  });

  it('reads a whole (non-streamed) message', async () => {
    const events = await collect(at('json'), request({ stream: false }));
    expect(textOf(events)).toBe('Let me check.');
    expect(toolCallsOf(events)).toEqual([{ id: 'toolu_9', name: 'lookup', arguments: '{"q":"café"}' }]);
    expect(events).toContainEqual({ type: 'finish', reason: 'tool-calls', rawReason: 'tool_use' });
    expect(events.find((e) => e.type === 'usage')).toMatchObject({ usage: { promptTokens: 15, completionTokens: 20, totalTokens: 35, cachedTokens: 5, cacheWriteTokens: 0 } });
  });

  it('treats a stream without message_stop as cut', async () => {
    const err = await failure(at('no-stop'));
    expect(err).toBeInstanceOf(ProtocolError);
  });

  it('raises event: error overloaded_error in a 200 stream as a retryable overloaded ServerError', async () => {
    const err = await failure(at('overloaded'));
    expect(err).toBeInstanceOf(ServerError);
    expect((err as APIError).code).toBe('overloaded');
    expect((err as APIError).providerCode).toBe('overloaded_error');
    expect((err as APIError).isRetryable).toBe(true);
    expect(err.message).toContain('Overloaded');
  });

  it('maps error responses to typed errors', async () => {
    const auth = await failure(at('401'));
    expect(auth).toBeInstanceOf(AuthenticationError);
    expect((auth as APIError).providerMessage).toBe('invalid x-api-key');
    const limited = await failure(at('429'));
    expect(limited).toBeInstanceOf(RateLimitError);
    expect((limited as RateLimitError).retryAfterMs).toBe(12_000);
    expect((limited as APIError).providerCode).toBe('rate_limit_error');
    const overloaded = await failure(at('529'));
    expect(overloaded).toBeInstanceOf(ServerError);
    expect((overloaded as APIError).code).toBe('overloaded');
  });
});
