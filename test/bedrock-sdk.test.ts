/**
 * The AWS SDK's own Bedrock client (@aws-sdk/client-bedrock-runtime) against a server built
 * from the Bedrock server half: the SDK signs with SigV4 (checked by recomputing it), sends
 * Converse and ConverseStream, and reads our event-stream frames, usage and errors.
 */
import { BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand, ThrottlingException } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimitError } from '../src/errors.js';
import { bedrockServer } from '../src/protocols/bedrock-server.js';
import { WireRequestError } from '../src/protocols/protocol.js';
import type { ProtocolEvent } from '../src/types.js';
import { AWS_KEYS, sigv4Problem } from './helpers/clouds.js';
import { startStandIn, writePieces, type StandIn } from './helpers/stand-in.js';

let server: StandIn;
beforeAll(async () => {
  server = await startStandIn(async (req, res) => {
    const answer = (error: WireRequestError | RateLimitError) => {
      const wire = bedrockServer.writeError(error);
      res.writeHead(wire.status, { 'content-type': 'application/json', ...wire.headers });
      res.end(JSON.stringify(wire.body));
    };
    const problem = await sigv4Problem(req, new URL(server.url).host);
    if (problem) return answer(new WireRequestError(403, 'InvalidSignatureException', problem));
    const match = /^\/model\/([^/]+)\/(converse|converse-stream)$/.exec(req.url);
    if (!match?.[1]) return answer(new WireRequestError(404, 'ResourceNotFoundException', `no route ${req.url}`));
    let parsed;
    try {
      parsed = bedrockServer.parseRequest(JSON.parse(req.body), { pathModel: decodeURIComponent(match[1]), pathStream: match[2] === 'converse-stream', headers: req.headers });
    } catch (error) {
      return answer(error as WireRequestError);
    }
    const last = parsed.request.messages[parsed.request.messages.length - 1];
    const said = typeof last?.content === 'string' ? last.content : '';
    if (said === 'throttle me') return answer(new RateLimitError({ status: 429, provider: 'bedrock', providerMessage: 'Too many requests, please wait before trying again.' }));
    const events: ProtocolEvent[] = [
      { type: 'text-delta', text: 'Du sagtest: ' },
      { type: 'text-delta', text: said },
    ];
    const end = { finishReason: 'stop' as const, usage: { promptTokens: 42, completionTokens: 7, totalTokens: 49, cachedTokens: 30 } };
    const meta = { id: 'r1', model: parsed.model, created: 0 };
    if (!parsed.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(bedrockServer.writeResponse(events, meta, end)));
      return;
    }
    const writer = bedrockServer.createStreamWriter(meta);
    res.writeHead(200, { 'content-type': writer.contentType });
    const body = Buffer.from(writer.start() + writer.write(events) + writer.end(end), writer.encoding ?? 'utf8');
    await writePieces(res, body, [3, 17, 64, 65, 200], 0);
  });
});
afterAll(() => server.close());

// The SDK talks HTTP/2 to Bedrock by default; Bedrock (and the simulator) also take HTTP/1.1.
const client = () => new BedrockRuntimeClient({ region: 'us-east-1', endpoint: server.url, credentials: AWS_KEYS, maxAttempts: 1, requestHandler: new NodeHttpHandler() });

describe('the AWS SDK against the Bedrock server half', () => {
  it('streams with ConverseStreamCommand: text, stop reason and usage', async () => {
    const out = await client().send(
      new ConverseStreamCommand({ modelId: 'anthropic.claude-sonnet-4-5-20250929-v1:0', messages: [{ role: 'user', content: [{ text: 'Grüß Gott, Jürgen' }] }], inferenceConfig: { maxTokens: 100 } }),
    );
    let text = '';
    let stopReason: string | undefined;
    let usage: Record<string, unknown> | undefined;
    for await (const event of out.stream ?? []) {
      if (event.contentBlockDelta?.delta?.text) text += event.contentBlockDelta.delta.text;
      if (event.messageStop) stopReason = event.messageStop.stopReason;
      if (event.metadata) usage = { ...event.metadata.usage };
    }
    expect(text).toBe('Du sagtest: Grüß Gott, Jürgen');
    expect(stopReason).toBe('end_turn');
    expect(usage).toEqual({ inputTokens: 12, outputTokens: 7, totalTokens: 49, cacheReadInputTokens: 30 });
  });

  it('answers ConverseCommand with a whole message', async () => {
    const out = await client().send(new ConverseCommand({ modelId: 'amazon.nova-pro-v1:0', system: [{ text: 'Kurz.' }], messages: [{ role: 'user', content: [{ text: 'Hallo' }] }] }));
    expect(out.output?.message?.content).toEqual([{ text: 'Du sagtest: Hallo' }]);
    expect(out.stopReason).toBe('end_turn');
    expect(out.usage?.inputTokens).toBe(12);
  });

  it('raises our throttling error as the SDK\'s ThrottlingException', async () => {
    const err = await client().send(new ConverseCommand({ modelId: 'amazon.nova-pro-v1:0', messages: [{ role: 'user', content: [{ text: 'throttle me' }] }] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ThrottlingException);
    expect((err as Error).message).toBe('Too many requests, please wait before trying again.');
  });
});
