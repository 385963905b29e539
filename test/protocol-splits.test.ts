/**
 * Property: however the bytes of a stream are cut into network reads, the real transport
 * yields the same canonical events (for each protocol's stream, with CRLF, keep-alive
 * comments and multi-byte characters in it).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProtocolName } from '../src/protocols/protocol.js';
import type { ProtocolEvent } from '../src/types.js';
import { ANTHROPIC_STREAM, GEMINI_STREAM, OPENAI_STREAM, RESPONSES_STREAM } from './helpers/fixtures.js';
import { collect, endpoint, sendSSE, startStandIn, type StandIn } from './helpers/stand-in.js';

/** The SSE protocols (Bedrock's binary frames have their own property test). */
type SSEProtocol = Exclude<ProtocolName, 'bedrock'>;
const STREAMS: Record<SSEProtocol, string> = { openai: OPENAI_STREAM, 'openai-responses': RESPONSES_STREAM, anthropic: ANTHROPIC_STREAM, gemini: GEMINI_STREAM };

let server: StandIn;
beforeAll(async () => {
  // URL: /<protocol>/<cut,cut,...>/... : the stream is written cut at those byte offsets.
  server = await startStandIn(async (req, res) => {
    const [, protocol, cuts] = req.url.split('/');
    const body = STREAMS[protocol as SSEProtocol];
    const offsets = cuts ? cuts.split(',').filter(Boolean).map(Number) : [];
    await sendSSE(res, body, offsets, 0);
  });
});
afterAll(() => server.close());

/** Gemini does not send tool-call ids; the generated ones differ per run. */
function withoutGeneratedIds(events: ProtocolEvent[]): ProtocolEvent[] {
  return events.map((e) => (e.type === 'tool-call-delta' && e.id?.startsWith('call_') ? { ...e, id: '<generated>' } : e));
}

async function eventsFor(protocol: SSEProtocol, cuts: number[]): Promise<ProtocolEvent[]> {
  const base = `${server.url}/${protocol}/${cuts.join(',') || '-'}`;
  return withoutGeneratedIds(await collect(endpoint(protocol, protocol.startsWith('openai') ? `${base}/v1` : base)));
}

describe.each(Object.keys(STREAMS) as SSEProtocol[])('%s stream split at arbitrary bytes', (protocol) => {
  it('gives the same events for any split', async () => {
    const length = Buffer.byteLength(STREAMS[protocol]);
    const whole = await eventsFor(protocol, []);
    expect(whole.length).toBeGreaterThan(5);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: length - 1 }), { maxLength: 40 }), async (cuts) => {
        expect(await eventsFor(protocol, cuts)).toEqual(whole);
      }),
      { numRuns: 40 },
    );
  });
});
