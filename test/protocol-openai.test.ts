import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APIError, AuthenticationError, NotFoundError, ProtocolError, RateLimitError, ServerError, StreamError } from '../src/errors.js';
import {
  collect, endpoint, everyNBytes, failure, request, sendJSON, sendSSE, sse, startStandIn, textOf, toolCallsOf,
  type StandIn,
} from './helpers/stand-in.js';
import { OPENAI_STREAM, openaiStreamChunk } from './helpers/fixtures.js';

const KEY = 'sk-or-v1-secretsecretsecret0123';

let server: StandIn;
beforeAll(async () => {
  server = await startStandIn(async (req, res) => {
    const scenario = req.url.split('/')[1];
    switch (scenario) {
      case 'ok':
        return sendSSE(res, OPENAI_STREAM, everyNBytes(Buffer.byteLength(OPENAI_STREAM), 3));
      case 'no-done':
        return sendSSE(res, OPENAI_STREAM.replace('data: [DONE]\r\n\r\n', ''), everyNBytes(Buffer.byteLength(OPENAI_STREAM), 50));
      case 'stream-error':
        return sendSSE(res, sse([{ data: openaiStreamChunk({ content: 'Hel' }) }, { data: { error: { message: 'Provider returned error', code: 502 } } }]));
      case 'html-200':
        res.writeHead(200, { 'content-type': 'text/html' });
        return void res.end('<!DOCTYPE html><html><head><title>Login</title></head><body><h1>Corporate proxy: please sign in</h1></body></html>');
      case 'html-502':
        res.writeHead(502, { 'content-type': 'text/html' });
        return void res.end('<html><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>');
      case '401':
        return sendJSON(res, 401, { error: { message: `Incorrect API key provided: ${KEY}.`, type: 'invalid_request_error', code: 'invalid_api_key' } });
      case '404':
        return sendJSON(res, 404, { error: { message: 'The model `gpt-9` does not exist', type: 'invalid_request_error', code: 'model_not_found' } });
      case '429':
        return sendJSON(res, 429, { error: { message: 'Rate limit reached for requests', type: 'requests', code: 'rate_limit_exceeded' } }, { 'retry-after': '7' });
      case '500':
        return sendJSON(res, 500, { error: { message: 'The server had an error', type: 'server_error' } });
      default:
        return sendJSON(res, 404, { error: { message: `no scenario ${scenario}` } });
    }
  });
});
afterAll(() => server.close());

const at = (scenario: string) => endpoint('openai', `${server.url}/${scenario}/v1`, KEY, 'openrouter');

describe('OpenAI protocol against a stand-in server', () => {
  it('reads a stream cut every 3 bytes: keep-alives, CRLF, UTF-8, tool-call fragments, usage in a last chunk with empty choices', async () => {
    const events = await collect(at('ok'));
    expect(events[0]).toEqual({ type: 'start', model: 'openai/gpt-4o-mini', provider: 'OpenAI', id: 'gen-1' });
    expect(textOf(events)).toBe('Grüß dich, 世界 🌍!');
    const calls = toolCallsOf(events);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.id).toBe('call_1');
    expect(calls[0]?.name).toBe('get_weather');
    expect(JSON.parse(calls[0]?.arguments ?? '')).toEqual({ city: 'Zürich' });
    expect(events.filter((e) => e.type === 'finish')).toEqual([{ type: 'finish', reason: 'tool-calls', rawReason: 'tool_calls' }]);
    const usage = events.filter((e) => e.type === 'usage');
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({
      usage: { promptTokens: 120, completionTokens: 31, totalTokens: 151, cachedTokens: 100, reasoningTokens: 8 },
      cost: 0.000042,
    });
  });

  it('sends the request the OpenAI way', async () => {
    await collect(at('ok'), request({ params: { maxTokens: 50 } }));
    const sent = server.requests[server.requests.length - 1];
    expect(sent?.url).toBe('/ok/v1/chat/completions');
    expect(sent?.headers.authorization).toBe(`Bearer ${KEY}`);
    const body = JSON.parse(sent?.body ?? '{}') as Record<string, unknown>;
    expect(body).toMatchObject({ model: 'test-model', stream: true, stream_options: { include_usage: true }, max_tokens: 50 });
  });

  it('treats a stream without [DONE] as cut', async () => {
    const err = await failure(at('no-done'));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/ended before it was complete/);
  });

  it('raises an error event inside a 200 stream as a typed, retryable error', async () => {
    const err = await failure(at('stream-error'));
    expect(err).toBeInstanceOf(StreamError);
    expect((err as StreamError).status).toBe(502);
    expect((err as StreamError).isRetryable).toBe(true);
    expect(err.message).toContain('Provider returned error');
  });

  it('names the URL when a proxy answers a stream with HTML', async () => {
    const err = await failure(at('html-200'));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toContain(`${server.url}/html-200/v1/chat/completions`);
    expect(err.message).toContain('Corporate proxy: please sign in');
  });

  it('reports an HTML error page as a non-API reply with its URL', async () => {
    const err = await failure(at('html-502'));
    expect(err).toBeInstanceOf(ServerError);
    expect(err.message).toContain('an HTML page instead of an API reply');
    expect(err.message).toContain(`from ${server.url}/html-502/v1/chat/completions`);
    expect(err.message).toContain('502 Bad Gateway');
    expect((err as APIError).url).toBe(`${server.url}/html-502/v1/chat/completions`);
  });

  it('maps 401 to AuthenticationError without repeating the key', async () => {
    const err = await failure(at('401'));
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as APIError).status).toBe(401);
    expect(err.message).toContain('Incorrect API key provided');
    expect(err.message).not.toContain(KEY);
    expect((err as APIError).providerMessage).not.toContain(KEY);
    expect((err as APIError).isRetryable).toBe(false);
  });

  it('maps 404 to NotFoundError and 500 to a retryable ServerError', async () => {
    const notFound = await failure(at('404'));
    expect(notFound).toBeInstanceOf(NotFoundError);
    expect((notFound as APIError).providerMessage).toBe('The model `gpt-9` does not exist');
    const server500 = await failure(at('500'));
    expect(server500).toBeInstanceOf(ServerError);
    expect((server500 as APIError).isRetryable).toBe(true);
  });

  it('maps 429 with Retry-After to RateLimitError with the wait', async () => {
    const err = await failure(at('429'));
    expect(err).toBeInstanceOf(RateLimitError);
    expect((err as RateLimitError).retryAfterMs).toBe(7000);
    expect((err as APIError).isRetryable).toBe(true);
    expect(err.message).toContain('retry after 7 s');
  });
});
