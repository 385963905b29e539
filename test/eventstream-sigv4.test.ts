/**
 * The two AWS building blocks on their own: the event-stream framing (frames cut at any
 * byte boundaries come out whole and in order) and SigV4 signatures against the published
 * AWS Signature Version 4 test suite.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../src/errors.js';
import { EventStreamDecoder, encodeEvent, encodeException, type EventFrame } from '../src/protocols/eventstream.js';
import { signRequest } from '../src/providers/clouds/aws.js';

interface FrameSpec {
  kind: 'event' | 'exception';
  type: string;
  payload: Record<string, unknown>;
}

const frameArb: fc.Arbitrary<FrameSpec> = fc.oneof(
  fc.record({ kind: fc.constant('event' as const), type: fc.constantFrom('messageStart', 'contentBlockDelta', 'contentBlockStop', 'messageStop', 'metadata'), payload: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ unit: 'grapheme', maxLength: 20 }), { maxKeys: 4 }) }),
  fc.record({ kind: fc.constant('exception' as const), type: fc.constantFrom('throttlingException', 'modelStreamErrorException'), payload: fc.record({ message: fc.string({ unit: 'grapheme', maxLength: 40 }) }) }),
);

function encode(f: FrameSpec): Uint8Array {
  return f.kind === 'event' ? encodeEvent(f.type, f.payload) : encodeException(f.type, (f.payload as { message: string }).message);
}

function expected(f: FrameSpec): EventFrame {
  return { messageType: f.kind, type: f.type, payload: JSON.stringify(f.payload) };
}

describe('event-stream framing', () => {
  it('decodes frames cut at arbitrary byte boundaries, whole and in order', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, rawCuts) => {
        const bytes = Buffer.concat(frames.map(encode));
        const cuts = [...new Set(rawCuts.map((c) => c % bytes.length))].sort((a, b) => a - b);
        const decoder = new EventStreamDecoder();
        const out: EventFrame[] = [];
        let start = 0;
        for (const cut of [...cuts, bytes.length]) {
          out.push(...decoder.push(bytes.subarray(start, cut)));
          start = cut;
        }
        expect(out).toEqual(frames.map(expected));
        expect(decoder.pending).toBe(0);
      }),
      { numRuns: 200 },
    );
  });

  it('decodes a stream fed one byte at a time, and keeps an unfinished frame pending', () => {
    const bytes = Buffer.concat([encodeEvent('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Grüße 🌍' } }), encodeEvent('messageStop', { stopReason: 'end_turn' })]);
    const decoder = new EventStreamDecoder();
    const out: EventFrame[] = [];
    for (let i = 0; i < bytes.length - 1; i++) out.push(...decoder.push(bytes.subarray(i, i + 1)));
    expect(out).toEqual([{ messageType: 'event', type: 'contentBlockDelta', payload: '{"contentBlockIndex":0,"delta":{"text":"Grüße 🌍"}}' }]);
    expect(decoder.pending).toBeGreaterThan(0);
    expect(decoder.push(bytes.subarray(bytes.length - 1))).toEqual([{ messageType: 'event', type: 'messageStop', payload: '{"stopReason":"end_turn"}' }]);
  });

  it('refuses a frame whose checksum does not match', () => {
    const frame = encodeEvent('messageStop', { stopReason: 'end_turn' });
    frame[frame.length - 6] = (frame[frame.length - 6] ?? 0) ^ 0xff;
    expect(() => new EventStreamDecoder().push(frame)).toThrow(ProtocolError);
  });
});

/** The AWS SigV4 test suite's credentials, date, region and service. */
const SUITE = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const DATE = new Date('2015-08-30T12:36:00Z');
const authorization = (signature: string) => `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${signature}`;

describe('SigV4 against the AWS test suite', () => {
  it.each([
    ['get-vanilla', 'GET', 'https://example.amazonaws.com/', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'],
    ['get-vanilla-query-order-key-case', 'GET', 'https://example.amazonaws.com/?Param2=value2&Param1=value1', 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500'],
    ['post-vanilla', 'POST', 'https://example.amazonaws.com/', '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b'],
  ])('%s', async (_name, method, url, signature) => {
    const signed = await signRequest({ url, headers: {}, body: '' }, SUITE, 'us-east-1', 'service', { method, date: DATE });
    expect(signed.headers['x-amz-date']).toBe('20150830T123600Z');
    expect(signed.headers.authorization).toBe(authorization(signature));
  });

  it('signs a session token and the content type of a Bedrock request', async () => {
    const signed = await signRequest(
      { url: 'https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse', headers: { 'content-type': 'application/json' }, body: '{}' },
      { ...SUITE, sessionToken: 'AQoDYXdzEPT//////////wEXAMPLE' },
      'us-east-1',
      'bedrock',
      { date: DATE },
    );
    expect(signed.headers['x-amz-security-token']).toBe('AQoDYXdzEPT//////////wEXAMPLE');
    expect(signed.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20150830\/us-east-1\/bedrock\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/);
    expect(signed.headers.host).toBeUndefined();
  });
});
