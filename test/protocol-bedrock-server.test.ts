/**
 * Bedrock's server half against its client half: canonical -> Converse -> canonical is the
 * identity for requests and for ConverseStream event streams (frames decoded as the client
 * reads them), checked with fast-check; errors in Bedrock's own shape.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { APIError, RateLimitError, ServerError } from '../src/errors.js';
import { getProtocol, getProtocolServer, WireRequestError } from '../src/protocols/index.js';
import type { Endpoint, StreamReader } from '../src/protocols/index.js';
import { collectEvents } from '../src/protocols/server-common.js';
import { args, canonicalRequestOf, conversationOf, name, text } from './helpers/protocol-arbitraries.js';
import type { CanonicalRequest, ProtocolEvent, TokenUsage } from '../src/types.js';

const client = getProtocol('bedrock');
const server = getProtocolServer('bedrock');
const ep: Endpoint = { provider: 'bedrock', protocol: 'bedrock', baseURL: 'http://127.0.0.1:9', headers: {}, compat: {} };

const canonicalRequest = canonicalRequestOf({
  model: fc.constantFrom('anthropic.claude-sonnet-4-5-20250929-v1:0', 'amazon.nova-pro-v1:0', 'meta.llama3-3-70b-instruct-v1:0'),
  conversation: conversationOf({ callPrefix: 'tooluse_', result: text }),
  stops: ['END', '###'],
  toolChoices: ['auto', 'required'],
  parameters: { type: 'object', properties: { q: { type: 'string' } } },
});

/** What Converse can carry: a tool choice only with tools. */
function normalise(request: CanonicalRequest): CanonicalRequest {
  const params = { ...request.params };
  if (!params.tools) delete params.toolChoice;
  return { ...request, params };
}

function read(body: string, reader: StreamReader = client.createStreamReader(ep)): { events: ProtocolEvent[]; reader: StreamReader } {
  const frames = client.createFrameDecoder?.();
  if (!frames) throw new Error('bedrock reads frames');
  const events: ProtocolEvent[] = [];
  for (const message of frames.push(Buffer.from(body, 'latin1'))) reader.onEvent(message, events);
  return { events, reader };
}

describe('bedrock server half', () => {
  it('reads back every request its client half writes', () => {
    fc.assert(
      fc.property(canonicalRequest, (request) => {
        const wire = client.buildRequest(request, ep);
        const match = /\/model\/([^/]+)\/(converse(?:-stream)?)$/.exec(wire.url);
        const parsed = server.parseRequest(JSON.parse(wire.body), { pathModel: decodeURIComponent(match?.[1] ?? ''), pathStream: match?.[2] === 'converse-stream', headers: {} });
        expect(parsed.model).toBe(request.model);
        expect(parsed.stream).toBe(request.stream);
        expect(parsed.request).toEqual(normalise(request));
      }),
      { numRuns: 200 },
    );
  });

  const usage = fc.record({ prompt: fc.nat(10_000), completion: fc.nat(10_000), cached: fc.nat(100) }).map(
    (u): TokenUsage => ({ promptTokens: u.prompt + Math.min(u.cached, u.prompt), completionTokens: u.completion, totalTokens: u.prompt + Math.min(u.cached, u.prompt) + u.completion, cachedTokens: Math.min(u.cached, u.prompt) }),
  );

  it('writes ConverseStream frames its client half reads back unchanged, and the same as one Converse body', () => {
    fc.assert(
      fc.property(fc.record({ reasoning: fc.array(text, { maxLength: 2 }), text: fc.array(text, { maxLength: 6 }), calls: fc.array(fc.record({ name, arguments: args }), { maxLength: 2 }), usage }), (r) => {
        const finishReason = r.calls.length > 0 ? 'tool-calls' : 'stop';
        const events: ProtocolEvent[] = [
          ...r.reasoning.map((t): ProtocolEvent => ({ type: 'reasoning-delta', text: t })),
          ...r.text.map((t): ProtocolEvent => ({ type: 'text-delta', text: t })),
          ...r.calls.flatMap((c, index): ProtocolEvent[] => [
            { type: 'tool-call-delta', index, id: `tooluse_${index}`, name: c.name, argumentsDelta: '' },
            { type: 'tool-call-delta', index, argumentsDelta: c.arguments },
          ]),
        ];
        const meta = { id: 'abc', model: 'amazon.nova-pro-v1:0', created: 1_700_000_000 };
        const writer = server.createStreamWriter(meta);
        expect(writer.encoding).toBe('latin1');
        const { events: got, reader } = read(writer.start() + writer.write(events) + writer.end({ finishReason, usage: r.usage }));
        expect(reader.done).toBe(true);
        const all: ProtocolEvent[] = [...events, { type: 'finish', reason: finishReason }, { type: 'usage', usage: r.usage }];
        const expected = { ...collectEvents(all), rawFinishReason: undefined };
        expect({ ...collectEvents(got), rawFinishReason: undefined }).toEqual(expected);
        const whole = client.parseResponse(server.writeResponse(all, meta), ep);
        expect({ ...collectEvents(whole), rawFinishReason: undefined }).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('answers an error mid-stream with an exception frame the client raises as a typed error', () => {
    const writer = server.createStreamWriter({ id: 'x', model: 'm', created: 0 });
    let raised: unknown;
    try {
      read(writer.start() + writer.write([{ type: 'text-delta', text: 'Hal' }]) + writer.error(new RateLimitError({ status: 429, provider: 'p', providerMessage: 'Too many requests, please wait before trying again.' })));
    } catch (error) {
      raised = error;
    }
    expect(raised).toBeInstanceOf(RateLimitError);
    expect((raised as APIError).providerCode).toBe('throttlingException');
  });

  it('writes errors as Bedrock does: x-amzn-errortype and a message the client reads', () => {
    const answer = server.writeError(new ServerError({ status: 503, provider: 'p', providerMessage: 'Bedrock is unable to process your request.' }));
    expect(answer.status).toBe(503);
    expect(answer.headers['x-amzn-errortype']).toBe('ServiceUnavailableException');
    expect(client.parseErrorBody(JSON.stringify(answer.body), new Headers(answer.headers))).toEqual({ message: 'Bedrock is unable to process your request.', code: 'ServiceUnavailableException' });
  });

  it('refuses bad requests as a ValidationException', () => {
    const refusal = (body: unknown): WireRequestError => {
      try {
        server.parseRequest(body, { pathModel: 'amazon.nova-pro-v1:0', headers: {} });
      } catch (error) {
        if (error instanceof WireRequestError) return error;
        throw error;
      }
      throw new Error('not refused');
    };
    expect(refusal({ messages: [] }).message).toMatch(/^messages: Member must have length/);
    const role = refusal({ messages: [{ role: 'robot', content: [{ text: 'x' }] }] });
    expect(role.message).toMatch(/messages\.0\.role/);
    expect(server.writeError(role)).toMatchObject({ status: 400, headers: { 'x-amzn-errortype': 'ValidationException' } });
    expect(refusal({ messages: [{ role: 'user', content: [{ text: 'x' }] }], inferenceConfig: { temperature: 3 } }).message).toMatch(/temperature/);
  });
});
