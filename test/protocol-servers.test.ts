/**
 * Server halves against client halves: canonical -> wire -> canonical is the identity, for
 * requests (client buildRequest, then server parseRequest) and for event streams (server
 * writer frames, parsed as SSE, then the client's stream reader), checked with fast-check.
 * Plus each server half's refusals and error frames in the provider's own shape.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { APIError, RateLimitError, ServerError } from '../src/errors.js';
import { getProtocol, getProtocolServer, WireRequestError } from '../src/protocols/index.js';
import type { Endpoint, ProtocolName, ServerRequestContext } from '../src/protocols/index.js';
import { collectEvents } from '../src/protocols/server-common.js';
import type { CanonicalRequest, ProtocolEvent, TokenUsage } from '../src/types.js';
import { args, canonicalRequestOf, conversationOf, name, text, words } from './helpers/protocol-arbitraries.js';
import { parseSSE } from './sim-helpers.js';

const PROTOCOLS: ProtocolName[] = ['openai', 'openai-responses', 'anthropic', 'gemini'];

function endpointFor(protocol: ProtocolName): Endpoint {
  return { provider: protocol, protocol, baseURL: 'http://127.0.0.1:9', apiKey: 'sk-test-0123456789abcdef', headers: {}, compat: { webPlugin: true } };
}

/** What the server needs from the URL: Gemini puts model and streaming in the path. */
function contextOf(url: string): ServerRequestContext {
  const gemini = /\/models\/([^/:]+):(\w+)/.exec(url);
  return gemini ? { pathModel: decodeURIComponent(gemini[1] ?? ''), pathStream: gemini[2] === 'streamGenerateContent', headers: {} } : { headers: {} };
}

const canonicalRequest = canonicalRequestOf({
  model: fc.stringMatching(/^[a-z][a-z0-9.-]{0,15}$/),
  conversation: conversationOf({ callPrefix: 'call_', result: words }),
  stops: ['END', '\n\n', '###'],
  toolChoices: ['auto', 'required', 'none'],
  parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] },
});

/** A request cut to what the protocol accepts: the Responses API has no stop sequences and caps output at 16 tokens or more. */
function prepare(protocol: ProtocolName, request: CanonicalRequest): CanonicalRequest {
  if (protocol !== 'openai-responses') return request;
  const { stop: _stop, ...params } = request.params;
  if (params.maxTokens !== undefined) params.maxTokens = Math.max(16, params.maxTokens);
  return { ...request, params };
}

/** The same request as each protocol can express it (what it cannot carry is normalised away). */
function normalise(protocol: ProtocolName, request: CanonicalRequest): CanonicalRequest {
  // Anthropic requires max_tokens: the client half sends its default when none was set.
  if (protocol === 'anthropic' && request.params.maxTokens === undefined) return { ...request, params: { ...request.params, maxTokens: 4096 } };
  return request;
}

/** The usage fields each protocol carries on the wire. */
const USAGE_FIELDS: Record<ProtocolName, (keyof TokenUsage)[]> = {
  openai: ['promptTokens', 'completionTokens', 'totalTokens', 'cachedTokens', 'reasoningTokens'],
  'openai-responses': ['promptTokens', 'completionTokens', 'totalTokens', 'cachedTokens', 'reasoningTokens'],
  anthropic: ['promptTokens', 'completionTokens', 'totalTokens', 'cachedTokens'],
  gemini: ['promptTokens', 'completionTokens', 'totalTokens', 'cachedTokens', 'reasoningTokens'],
  // Bedrock's round trips are in protocol-bedrock-server.test.ts.
  bedrock: ['promptTokens', 'completionTokens', 'totalTokens', 'cachedTokens'],
};

/** A collected response with the provider-specific raw finish reason left out and usage cut to what the protocol carries. */
function comparable(protocol: ProtocolName, r: ReturnType<typeof collectEvents>) {
  const usage = r.usage === undefined ? undefined : Object.fromEntries(USAGE_FIELDS[protocol].map((k) => [k, r.usage?.[k] ?? 0]));
  // Gemini's API sends function calls without ids (the client half makes them up).
  const toolCalls = protocol === 'gemini' ? r.toolCalls.map((c) => ({ ...c, id: '' })) : r.toolCalls;
  return { ...r, rawFinishReason: undefined, usage, toolCalls };
}

describe.each(PROTOCOLS)('%s server half', (protocol) => {
  const client = getProtocol(protocol);
  const server = getProtocolServer(protocol);
  const ep = endpointFor(protocol);

  it('reads back every request its client half writes', () => {
    fc.assert(
      fc.property(canonicalRequest, (generated) => {
        const request = prepare(protocol, generated);
        const wire = client.buildRequest(request, ep);
        const parsed = server.parseRequest(JSON.parse(wire.body), contextOf(wire.url));
        expect(parsed.model).toBe(request.model);
        expect(parsed.stream).toBe(request.stream);
        expect(normalise(protocol, parsed.request)).toEqual(normalise(protocol, request));
      }),
      { numRuns: 200 },
    );
  });

  const usage = fc
    .record({ promptTokens: fc.nat(10_000), completionTokens: fc.nat(10_000), cached: fc.nat(100), reasoning: fc.nat(100) })
    .map((u): TokenUsage => ({
      promptTokens: u.promptTokens,
      completionTokens: u.completionTokens,
      totalTokens: u.promptTokens + u.completionTokens,
      cachedTokens: Math.min(u.cached, u.promptTokens),
      reasoningTokens: Math.min(u.reasoning, u.completionTokens),
    }));
  const reply = fc.record({
    reasoning: fc.array(text, { maxLength: 3 }),
    text: fc.array(text, { maxLength: 6 }),
    calls: fc.array(fc.record({ name, arguments: args }), { maxLength: 2 }),
    usage,
  });

  it('writes event streams its client half reads back unchanged', () => {
    fc.assert(
      fc.property(reply, (r) => {
        const finishReason = r.calls.length > 0 ? 'tool-calls' : 'stop';
        const events: ProtocolEvent[] = [
          ...r.reasoning.map((t): ProtocolEvent => ({ type: 'reasoning-delta', text: t })),
          ...r.text.map((t): ProtocolEvent => ({ type: 'text-delta', text: t })),
          ...r.calls.flatMap((c, index): ProtocolEvent[] => [
            { type: 'tool-call-delta', index, id: `call_${index}`, name: c.name, argumentsDelta: '' },
            { type: 'tool-call-delta', index, argumentsDelta: c.arguments },
          ]),
        ];
        const meta = { id: 'abc', model: 'm-1', created: 1_700_000_000, promptTokens: r.usage.promptTokens, includeUsage: true };
        const writer = server.createStreamWriter(meta);
        const body = writer.start() + writer.write(events) + writer.end({ finishReason, usage: r.usage });
        const reader = client.createStreamReader(ep);
        const read: ProtocolEvent[] = [];
        for (const message of parseSSE(body)) reader.onEvent(message, read);
        expect(reader.done || protocol === 'gemini').toBe(true);
        const expected = collectEvents([...events, { type: 'finish', reason: finishReason }, { type: 'usage', usage: r.usage }]);
        const got = collectEvents(read);
        expect(comparable(protocol, got)).toEqual(comparable(protocol, expected));
        // The whole-body response reads back the same way.
        const whole = client.parseResponse(server.writeResponse([...events, { type: 'finish', reason: finishReason }, { type: 'usage', usage: r.usage }], meta));
        expect(comparable(protocol, collectEvents(whole))).toEqual(comparable(protocol, expected));
      }),
      { numRuns: 200 },
    );
  });

  it('answers an error mid-stream with a frame its client half raises as a typed error', () => {
    const writer = server.createStreamWriter({ id: 'x', model: 'm', created: 0 });
    const frames = writer.start() + writer.write([{ type: 'text-delta', text: 'Hel' }]) + writer.error(new ServerError({ status: 500, provider: 'p', providerMessage: 'boom' }));
    const reader = client.createStreamReader(ep);
    const out: ProtocolEvent[] = [];
    let raised: unknown;
    try {
      for (const message of parseSSE(frames)) reader.onEvent(message, out);
    } catch (error) {
      raised = error;
    }
    expect(raised).toBeInstanceOf(APIError);
    expect((raised as APIError).providerMessage).toBe('boom');
    expect(reader.done).toBe(false);
  });

  it('writes a rate-limit error with a whole-second Retry-After', () => {
    const answer = server.writeError(new RateLimitError({ status: 429, provider: 'p', providerMessage: 'slow down', retryAfterMs: 1500 }));
    expect(answer.status).toBe(429);
    expect(answer.headers['retry-after']).toBe('2');
    expect(answer.headers['retry-after-ms']).toBe('1500');
    expect(client.parseErrorBody(JSON.stringify(answer.body)).message).toBe('slow down');
  });
});

describe('openai server half refusals', () => {
  const server = getProtocolServer('openai');
  const refusal = (body: unknown): WireRequestError => {
    try {
      server.parseRequest(body, { headers: {} });
    } catch (error) {
      if (error instanceof WireRequestError) return error;
      throw error;
    }
    throw new Error('not refused');
  };

  it('refuses a body without a model, naming the parameter as OpenAI does', () => {
    const error = refusal({ messages: [{ role: 'user', content: 'hi' }] });
    expect(error.status).toBe(400);
    expect(server.writeError(error).body).toEqual({ error: { message: 'you must provide a model parameter', type: 'invalid_request_error', param: 'model', code: null } });
  });

  it('refuses empty messages, an unknown role and a bad temperature', () => {
    expect(refusal({ model: 'm', messages: [] }).param).toBe('messages');
    expect(refusal({ model: 'm', messages: [{ role: 'robot', content: 'x' }] }).message).toMatch(/messages\[0\]\.role must be one of/);
    expect(refusal({ model: 'm', messages: [{ role: 'user', content: 'x' }], temperature: 3 }).param).toBe('temperature');
  });

  it('marks every chunk but the last with usage: null when include_usage is on', () => {
    const parsed = server.parseRequest({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'x' }] }, { headers: {} });
    expect(parsed.includeUsage).toBe(true);
    const writer = server.createStreamWriter({ id: 'a', model: 'm', created: 1, includeUsage: true });
    const frames = parseSSE(writer.start() + writer.write([{ type: 'text-delta', text: 'Hi' }]) + writer.end({ finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1, totalTokens: 2 } }));
    const chunks = frames.filter((f) => f.data !== '[DONE]').map((f) => JSON.parse(f.data) as { usage: unknown; choices: unknown[] });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks[chunks.length - 1]).toMatchObject({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    expect(frames[frames.length - 1]?.data).toBe('[DONE]');
  });
});

/** The WireRequestError a server half throws for a body. */
function refusalOf(protocol: ProtocolName, body: unknown, ctx: ServerRequestContext = { headers: {} }): WireRequestError {
  try {
    getProtocolServer(protocol).parseRequest(body, ctx);
  } catch (error) {
    if (error instanceof WireRequestError) return error;
    throw error;
  }
  throw new Error('not refused');
}

describe('anthropic server half specifics', () => {
  const server = getProtocolServer('anthropic');
  const base = { model: 'claude-x', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] };

  it('requires max_tokens for messages but not for count_tokens', () => {
    const error = refusalOf('anthropic', { model: 'claude-x', messages: [{ role: 'user', content: 'hi' }] });
    expect(server.writeError(error)).toEqual({ status: 400, headers: {}, body: { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } } });
    expect(server.parseRequest({ model: 'claude-x', messages: [{ role: 'user', content: 'hi' }] }, { headers: {}, counting: true }).request.messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('reads output_config.format as a JSON-schema response format', () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
    const parsed = server.parseRequest({ ...base, output_config: { format: { type: 'json_schema', schema } } }, { headers: {} });
    expect(parsed.request.params.responseFormat).toEqual({ type: 'json_schema', json_schema: { name: 'response', schema } });
  });

  it('answers overload with 529 overloaded_error, and mid-stream with an error event', () => {
    const overloaded = new ServerError({ status: 503, provider: 'p', providerMessage: 'Overloaded' }, 'overloaded');
    expect(server.writeError(overloaded)).toMatchObject({ status: 529, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } });
    const frames = parseSSE(server.createStreamWriter({ id: 'a', model: 'm', created: 0 }).error(overloaded));
    expect(frames).toEqual([{ event: 'error', data: JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }) }]);
  });

  it('writes stop_sequence when a stop sequence ended the reply', () => {
    const writer = server.createStreamWriter({ id: 'a', model: 'm', created: 0 });
    const frames = parseSSE(writer.start() + writer.write([{ type: 'text-delta', text: 'one two' }]) + writer.end({ finishReason: 'stop', stopSequence: 'three' }));
    const delta = frames.find((f) => f.event === 'message_delta');
    expect(JSON.parse(delta?.data ?? '{}')).toMatchObject({ delta: { stop_reason: 'stop_sequence', stop_sequence: 'three' } });
  });
});

describe('gemini server half specifics', () => {
  const server = getProtocolServer('gemini');
  const ctx = { pathModel: 'gemini-x', pathStream: false, headers: {} };

  it("reads Google's schema dialect (upper-case types, nullable) and JSON Schema fields as JSON Schema", () => {
    const parsed = server.parseRequest(
      {
        contents: [{ role: 'user', parts: [{ text: 'weather?' }] }],
        tools: [
          { functionDeclarations: [{ name: 'get_weather', parameters: { type: 'OBJECT', properties: { city: { type: 'STRING', nullable: true }, days: { type: 'INTEGER' } }, required: ['city'] } }] },
          { functionDeclarations: [{ name: 'lookup', parametersJsonSchema: { type: 'object', properties: { q: { type: 'string' } } } }] },
        ],
        generationConfig: { responseMimeType: 'application/json', responseSchema: { type: 'ARRAY', items: { type: 'STRING' } }, candidateCount: 2 },
      },
      ctx,
    );
    expect(parsed.request.params.tools).toEqual([
      { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: ['string', 'null'] }, days: { type: 'integer' } }, required: ['city'] } },
      { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } },
    ]);
    expect(parsed.request.params.responseFormat).toEqual({ type: 'json_schema', json_schema: { name: 'response', schema: { type: 'array', items: { type: 'string' } } } });
    expect(parsed.choices).toBe(2);
  });

  it('refuses a request without contents in Google\'s error shape', () => {
    const error = refusalOf('gemini', { contents: [] }, ctx);
    expect(server.writeError(error)).toEqual({ status: 400, headers: {}, body: { error: { code: 400, message: '* GenerateContentRequest.contents: contents is not specified', status: 'INVALID_ARGUMENT' } } });
  });
});
