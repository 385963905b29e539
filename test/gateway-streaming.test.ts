/**
 * The gateway's streaming rules, with a local OpenAI-protocol stand-in as the upstream:
 * fallbacks before the first byte are invisible, a failure after it ends the stream with the
 * protocol's error event (the client's SDK raises), a client that leaves aborts the upstream
 * request, and a quiet upstream gets keep-alive comments.
 */
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MASTER_KEY, startGateway, waitFor, type RunningGateway } from './helpers/gateway.js';
import { startStandIn, type StandIn } from './helpers/openai-standin.js';

let upstream: StandIn;
let gw: RunningGateway;
let openai: OpenAI;

beforeAll(async () => {
  upstream = await startStandIn();
  gw = await startGateway(
    [
      'providers:',
      '  - name: local',
      '    protocol: openai',
      '    base_url: ${UPSTREAM_URL}/v1',
      'routing:',
      '  max_retries: 1',
    ].join('\n'),
    { env: { UPSTREAM_URL: upstream.url } },
  );
  openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MASTER_KEY, maxRetries: 0 });
});
afterAll(async () => {
  await gw.close();
  await upstream.close();
});

describe('before the first byte', () => {
  it('falls back invisibly: the stream is the fallback model\'s, whole', async () => {
    const before = upstream.requests.length;
    const raw = await openai.chat.completions
      .create({ model: 'down-fail-500@local->sim/llama@sim-fast', stream: true, messages: [{ role: 'user', content: 'Write 12 tokens about rain' }] })
      .withResponse();
    expect(raw.response.headers.get('x-switchboard-provider')).toBe('sim-fast');
    let text = '';
    for await (const chunk of raw.data) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text.length).toBeGreaterThan(10);
    expect(upstream.requests.length - before).toBe(1);
  });

  it('answers a failure that happened before any byte as a plain error response', async () => {
    const err = await openai.chat.completions.create({ model: 'down-fail-500@local', stream: true, messages: [{ role: 'user', content: 'Hi' }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.InternalServerError);
    expect((err as Error).message).toMatch(/upstream exploded/);
  });
});

describe('after the first byte', () => {
  it('ends an OpenAI stream with an error event, not [DONE]: the SDK raises', async () => {
    const stream = await openai.chat.completions.create({ model: 'cut-model@local', stream: true, messages: [{ role: 'user', content: 'Hello there friend' }] });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const chunk of stream) seen.push(chunk.choices[0]?.delta?.content ?? '');
    })().catch((e: unknown) => e);
    expect(seen.join('')).toMatch(/^cut-model/);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(String((err as Error).message)).toMatch(/ended before it was complete|closed in the middle/);
  });

  it('ends an Anthropic stream with its error event: the SDK raises', async () => {
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: MASTER_KEY, maxRetries: 0 });
    const stream = anthropic.messages.stream({ model: 'cut-model@local', max_tokens: 100, messages: [{ role: 'user', content: 'Hello there friend' }] });
    let text = '';
    stream.on('text', (t) => (text += t));
    const err = await stream.finalMessage().catch((e: unknown) => e);
    expect(text).toMatch(/^cut-model/);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).toMatch(/ended before it was complete|closed in the middle/);
  });

  it('ends a Gemini stream with an error: the SDK raises', async () => {
    const google = new GoogleGenAI({ apiKey: MASTER_KEY, httpOptions: { baseUrl: gw.url } });
    let text = '';
    const err = await (async () => {
      for await (const chunk of await google.models.generateContentStream({ model: 'cut-model@local', contents: 'Hello there friend' })) text += chunk.text ?? '';
    })().catch((e: unknown) => e);
    expect(text).toMatch(/^cut-model/);
    expect(err).toBeInstanceOf(Error);
  });

  it('logs such a request as failed, with what was seen', async () => {
    await waitFor(() => gw.accessLog.some((l) => l.model === 'cut-model@local' && l.error_type !== undefined));
    const line = gw.accessLog.find((l) => l.model === 'cut-model@local');
    expect(line?.status).toBe(200);
    expect(line?.error_type).toBe('protocol');
  });
});

describe('a client that goes away', () => {
  it('aborts the upstream request at once', async () => {
    const before = upstream.aborted;
    const controller = new AbortController();
    const stream = await openai.chat.completions.create({ model: 'hang-model@local', stream: true, messages: [{ role: 'user', content: 'Hi' }] }, { signal: controller.signal });
    let first = '';
    for await (const chunk of stream) {
      first += chunk.choices[0]?.delta?.content ?? '';
      if (first) break;
    }
    expect(first).toBe('hang-model');
    controller.abort();
    await waitFor(() => upstream.aborted > before, 2000);
    await waitFor(() => gw.gateway.inFlight === 0, 2000);
    await waitFor(() => gw.accessLog.some((l) => l.model === 'hang-model@local'));
    expect(gw.accessLog.find((l) => l.model === 'hang-model@local')?.error_type).toBe('cancelled');
  });
});

describe('keep-alive', () => {
  it('sends SSE comments while the upstream is quiet', async () => {
    const quick = await startGateway('providers:\n  - { name: local, protocol: openai, base_url: "${UPSTREAM_URL}/v1" }\nlimits:\n  keep_alive_ms: 100\n', { env: { UPSTREAM_URL: upstream.url }, requestLog: false });
    const controller = new AbortController();
    const res = await fetch(`${quick.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'hang-model@local', stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
      signal: controller.signal,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let seen = '';
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value);
      const afterContent = seen.slice(seen.indexOf('hang-model'));
      if (/\n:[^\n]*\n/.test(afterContent)) break;
    }
    controller.abort();
    await quick.close();
    expect(seen).toContain('hang-model');
    expect(seen.slice(seen.indexOf('hang-model'))).toMatch(/\n:[^\n]*\n/);
  });
});

describe('a non-streaming request', () => {
  it('is answered with one JSON body, falling back even after a failure midway', async () => {
    const raw = await openai.chat.completions.create({ model: 'cut-model@local->sim/llama@sim-fast', messages: [{ role: 'user', content: 'Hi' }] }).withResponse();
    expect(raw.response.headers.get('content-type')).toMatch(/application\/json/);
    expect(raw.response.headers.get('x-switchboard-provider')).toBe('sim-fast');
    expect(raw.data.choices[0]?.message.content?.length).toBeGreaterThan(0);
  });
});
