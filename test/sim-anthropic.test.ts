import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { expectedPromptTokens, parseSSE, postJson, tokenCount } from './sim-helpers.js';

interface AnthropicMessage {
  id: string;
  type: string;
  role: string;
  model: string;
  content: { type: string; text: string }[];
  stop_reason: string;
  usage: { input_tokens: number; output_tokens: number; cache_creation_input_tokens: number; cache_read_input_tokens: number };
}

let sim: RunningSimulator;
let endpoint: string;
beforeAll(async () => {
  sim = await startSimulator({ timeScale: 0 });
  endpoint = `${sim.url}/sim-anthropic/v1/messages`;
});
afterAll(() => sim.close());

const system = 'Answer like a patient teacher.';
const prompt = 'Explain how garbage collection works in the JVM.';

describe('simulator: Anthropic Messages', () => {
  it('answers a message with content blocks, stop_reason and usage in Anthropic fields', async () => {
    const res = await postJson(endpoint, {
      model: 'llama',
      max_tokens: 1024,
      system: [{ type: 'text', text: system }],
      messages: [{ role: 'user', content: [{ type: 'text', text: prompt }] }],
    }, { 'x-api-key': 'ignored', 'anthropic-version': '2023-06-01' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as AnthropicMessage;
    expect(body.type).toBe('message');
    expect(body.role).toBe('assistant');
    expect(body.id).toMatch(/^msg_/);
    expect(body.content).toHaveLength(1);
    expect(body.content[0]!.type).toBe('text');
    expect(body.stop_reason).toBe('end_turn');
    expect(body.usage.output_tokens).toBe(tokenCount(body.content[0]!.text));
    expect(body.usage.input_tokens).toBe(expectedPromptTokens([system, prompt]));
    expect(body.usage.cache_creation_input_tokens).toBe(0);
    expect(body.usage.cache_read_input_tokens).toBe(0);
  });

  it('streams the documented event sequence with one token per text_delta', async () => {
    const res = await postJson(endpoint, { model: 'sim/llama', max_tokens: 1024, stream: true, system, messages: [{ role: 'user', content: prompt }] });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = parseSSE(await res.text());
    const names = events.map((e) => e.event);
    const deltas = events.filter((e) => e.event === 'content_block_delta');
    expect(names.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'ping']);
    expect(names.slice(3, 3 + deltas.length).every((n) => n === 'content_block_delta')).toBe(true);
    expect(names.slice(3 + deltas.length)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    for (const e of events) expect((JSON.parse(e.data) as { type: string }).type).toBe(e.event);

    const start = JSON.parse(events[0]!.data) as { message: AnthropicMessage };
    expect(start.message.usage.input_tokens).toBe(expectedPromptTokens([system, prompt]));
    const pieces = deltas.map((e) => (JSON.parse(e.data) as { delta: { type: string; text: string } }).delta);
    expect(pieces.every((d) => d.type === 'text_delta' && tokenCount(d.text) === 1)).toBe(true);
    const messageDelta = JSON.parse(events.at(-2)!.data) as { delta: { stop_reason: string }; usage: { output_tokens: number } };
    expect(messageDelta.delta.stop_reason).toBe('end_turn');
    expect(messageDelta.usage.output_tokens).toBe(pieces.length);
  });

  it('requires max_tokens (400 invalid_request_error) and stops at it with max_tokens', async () => {
    let res = await postJson(endpoint, { model: 'llama', messages: [{ role: 'user', content: prompt }] });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: Field required' } });

    res = await postJson(endpoint, { model: 'llama', max_tokens: 5, messages: [{ role: 'user', content: prompt }] });
    const body = (await res.json()) as AnthropicMessage;
    expect(body.stop_reason).toBe('max_tokens');
    expect(body.usage.output_tokens).toBe(5);
    expect(tokenCount(body.content[0]!.text)).toBe(5);
  });

  it('answers errors in Anthropic shape: bad JSON 400, unserved model 404', async () => {
    let res = await fetch(endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'not json' });
    expect(res.status).toBe(400);
    const bad = (await res.json()) as { type: string; error: { type: string } };
    expect(bad.type).toBe('error');
    expect(bad.error.type).toBe('invalid_request_error');

    res = await postJson(endpoint, { model: 'mini', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      type: 'error',
      error: { type: 'not_found_error', message: 'sim-anthropic does not serve model mini; it serves llama (also as sim/llama)' },
    });
  });

  it('acknowledges image and document blocks and counts them in input_tokens', async () => {
    const png = Buffer.alloc(1200, 7).toString('base64');
    const pdf = Buffer.alloc(20_000, 1).toString('base64');
    const res = await postJson(endpoint, {
      model: 'llama',
      max_tokens: 500,
      messages: [{
        role: 'user',
        content: [
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } },
          { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: pdf }, title: 'report.pdf' },
          { type: 'text', text: 'What is in these?' },
        ],
      }],
    });
    const body = (await res.json()) as AnthropicMessage;
    expect(body.content[0]!.text).toMatch(/^I see an image \(image\/png, 1\.2 kB\) and a document named report\.pdf \(application\/pdf, 20\.0 kB\)\./);
    expect(body.usage.input_tokens).toBe(expectedPromptTokens(['What is in these?'], 2));
  });
});
