import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProtocolError, RateLimitError, ServerError, type APIError } from '../src/errors.js';
import { geminiProtocol, readGeminiUsage } from '../src/protocols/gemini.js';
import type { Message } from '../src/types.js';
import { GEMINI_STREAM, geminiStreamChunk } from './helpers/fixtures.js';
import {
  collect, endpoint, everyNBytes, failure, reasoningOf, request, sendJSON, sendSSE, sse, startStandIn, textOf, toolCallsOf,
  type StandIn,
} from './helpers/stand-in.js';

const KEY = 'AIzaSyA-secretsecretsecretsecret12';

let server: StandIn;
beforeAll(async () => {
  server = await startStandIn(async (req, res) => {
    const scenario = req.url.split('/')[1];
    switch (scenario) {
      case 'ok':
        return sendSSE(res, GEMINI_STREAM, everyNBytes(Buffer.byteLength(GEMINI_STREAM), 5));
      case 'cut':
        return sendSSE(res, sse([{ data: geminiStreamChunk([{ text: 'Ça va? ' }]) }]));
      case 'safety':
        return sendSSE(res, sse([{ data: geminiStreamChunk([{ text: 'I' }]) }, { data: geminiStreamChunk([], { finishReason: 'SAFETY' }) }]));
      case 'blocked':
        return sendSSE(res, sse([{ data: { promptFeedback: { blockReason: 'PROHIBITED_CONTENT' }, usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 } } }]));
      case 'stream-error':
        return sendSSE(res, sse([{ data: geminiStreamChunk([{ text: 'Hal' }]) }, { data: { error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' } } }]));
      case '429':
        return sendJSON(res, 429, { error: { code: 429, message: 'Resource has been exhausted (e.g. check quota).', status: 'RESOURCE_EXHAUSTED' } }, { 'retry-after': '3' });
      case '400':
        return sendJSON(res, 400, { error: { code: 400, message: 'API key not valid. Please pass a valid API key.', status: 'INVALID_ARGUMENT' } });
      case 'json':
        return sendJSON(res, 200, {
          candidates: [{ content: { role: 'model', parts: [{ text: 'Hallo!' }] }, finishReason: 'MAX_TOKENS' }],
          usageMetadata: { promptTokenCount: 4, candidatesTokenCount: 2, totalTokenCount: 6 },
          modelVersion: 'gemini-2.5-flash-lite',
        });
      default:
        return sendJSON(res, 404, { error: { code: 404, message: `no scenario ${scenario}`, status: 'NOT_FOUND' } });
    }
  });
});
afterAll(() => server.close());

const at = (scenario: string) => endpoint('gemini', `${server.url}/${scenario}`, KEY, 'google');

describe('Gemini usage', () => {
  it('keeps cached tokens inside the prompt and adds thoughts to the output', () => {
    expect(readGeminiUsage({ promptTokenCount: 120, candidatesTokenCount: 30, thoughtsTokenCount: 50, cachedContentTokenCount: 100, totalTokenCount: 200 })).toEqual({
      promptTokens: 120,
      completionTokens: 80,
      totalTokens: 200,
      cachedTokens: 100,
      reasoningTokens: 50,
    });
  });
});

describe('Gemini protocol against a stand-in server', () => {
  it('reads a stream cut every 5 bytes and ends it at the finishReason', async () => {
    const events = await collect(at('ok'), request({ model: 'gemini-2.5-flash' }));
    expect(events[0]).toEqual({ type: 'start', model: 'gemini-2.5-flash', id: 'resp-1' });
    expect(reasoningOf(events)).toBe('Nachdenken über Zürich…');
    expect(textOf(events)).toBe('Ça va? Très bien 👍');
    const calls = toolCallsOf(events);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.name).toBe('get_weather');
    expect(calls[0]?.id).toMatch(/^call_/);
    expect(JSON.parse(calls[0]?.arguments ?? '')).toEqual({ city: 'Zürich', days: 3 });
    expect(events.filter((e) => e.type === 'finish')).toEqual([{ type: 'finish', reason: 'tool-calls', rawReason: 'STOP' }]);
    const usage = events.filter((e) => e.type === 'usage');
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ usage: { promptTokens: 120, completionTokens: 80, totalTokens: 200, cachedTokens: 100, reasoningTokens: 50 } });
  });

  it('sends the key in x-goog-api-key, never in the URL, and builds contents', async () => {
    const messages: Message[] = [
      { role: 'system', content: 'Antworte kurz.' },
      { role: 'user', content: [{ type: 'text', text: 'Was zeigt das Bild?' }, { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,/9j/4AAQ' } }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_x', type: 'function', function: { name: 'describe', arguments: '{"detail":"high"}' } }] },
      { role: 'tool', tool_call_id: 'call_x', content: '{"labels":["cat"]}' },
      { role: 'tool', tool_call_id: 'call_x', content: 'plain text result' },
    ];
    await collect(
      at('ok'),
      request({
        model: 'gemini-2.5-flash',
        messages,
        params: {
          temperature: 0.2,
          maxTokens: 300,
          stop: ['###'],
          reasoning: { effort: 'low' },
          responseFormat: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', additionalProperties: false, properties: { a: { type: 'string' } } } } },
          tools: [{ name: 'describe', parameters: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: { detail: { type: 'string' } } } }],
          toolChoice: { name: 'describe' },
        },
      }),
    );
    const sent = server.requests[server.requests.length - 1];
    expect(sent?.url).toBe('/ok/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    expect(sent?.url).not.toContain(KEY);
    expect(sent?.headers['x-goog-api-key']).toBe(KEY);
    const body = JSON.parse(sent?.body ?? '{}') as Record<string, unknown>;
    expect(body.systemInstruction).toEqual({ parts: [{ text: 'Antworte kurz.' }] });
    expect(body.contents).toEqual([
      { role: 'user', parts: [{ text: 'Was zeigt das Bild?' }, { inlineData: { mimeType: 'image/jpeg', data: '/9j/4AAQ' } }] },
      { role: 'model', parts: [{ functionCall: { name: 'describe', args: { detail: 'high' } } }] },
      {
        role: 'user',
        parts: [
          { functionResponse: { name: 'describe', response: { labels: ['cat'] } } },
          { functionResponse: { name: 'describe', response: { result: 'plain text result' } } },
        ],
      },
    ]);
    expect(body.generationConfig).toEqual({
      temperature: 0.2,
      maxOutputTokens: 300,
      stopSequences: ['###'],
      responseMimeType: 'application/json',
      responseSchema: { type: 'object', properties: { a: { type: 'string' } } },
      thinkingConfig: { thinkingBudget: 1024, includeThoughts: true },
    });
    expect(body.tools).toEqual([{ functionDeclarations: [{ name: 'describe', parameters: { type: 'object', properties: { detail: { type: 'string' } } } }] }]);
    expect(body.toolConfig).toEqual({ functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['describe'] } });
  });

  it('uses generateContent without streaming', async () => {
    const wire = geminiProtocol.buildRequest(request({ model: 'models/gemini-2.5-pro', stream: false }), endpoint('gemini', 'https://generativelanguage.googleapis.com', KEY));
    expect(wire.url).toBe('https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent');
    const events = await collect(at('json'), request({ stream: false }));
    expect(textOf(events)).toBe('Hallo!');
    expect(events).toContainEqual({ type: 'finish', reason: 'length', rawReason: 'MAX_TOKENS' });
    expect(events.find((e) => e.type === 'usage')).toMatchObject({ usage: { promptTokens: 4, completionTokens: 2, totalTokens: 6 } });
  });

  it('treats a stream that closes before any finishReason as cut', async () => {
    expect(await failure(at('cut'))).toBeInstanceOf(ProtocolError);
  });

  it('keeps the raw reason of a safety stop and of a blocked prompt', async () => {
    const safety = await collect(at('safety'));
    expect(safety).toContainEqual({ type: 'finish', reason: 'content-filter', rawReason: 'SAFETY' });
    const blocked = await collect(at('blocked'));
    expect(blocked).toContainEqual({ type: 'finish', reason: 'content-filter', rawReason: 'PROHIBITED_CONTENT' });
    expect(blocked.find((e) => e.type === 'usage')).toMatchObject({ usage: { promptTokens: 9, completionTokens: 0 } });
  });

  it('raises an error object inside a 200 stream as a typed error', async () => {
    const err = await failure(at('stream-error'));
    expect(err).toBeInstanceOf(ServerError);
    expect((err as APIError).status).toBe(503);
    expect((err as APIError).providerCode).toBe('UNAVAILABLE');
    expect((err as APIError).isRetryable).toBe(true);
  });

  it('maps error responses to typed errors', async () => {
    const limited = await failure(at('429'));
    expect(limited).toBeInstanceOf(RateLimitError);
    expect((limited as RateLimitError).retryAfterMs).toBe(3000);
    expect((limited as APIError).providerCode).toBe('RESOURCE_EXHAUSTED');
    const bad = await failure(at('400'));
    expect((bad as APIError).code).toBe('bad_request');
    expect((bad as APIError).providerMessage).toBe('API key not valid. Please pass a valid API key.');
    expect(bad.message).not.toContain(KEY);
  });
});
