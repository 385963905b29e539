import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIM_PROVIDERS } from '../src/sim/profiles.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { expectedPromptTokens, parseSSE, postJson, tokenCount } from './sim-helpers.js';

interface ChatCompletion {
  id: string;
  object: string;
  model: string;
  provider: string;
  choices: { message: { role: string; content: string }; finish_reason: string }[];
  usage: {
    prompt_tokens: number;
    completion_tokens: number;
    total_tokens: number;
    cost: number;
    prompt_tokens_details: { cached_tokens: number };
    completion_tokens_details: { reasoning_tokens: number };
  };
}

interface Chunk {
  id: string;
  object: string;
  model: string;
  choices: { delta: { role?: string; content?: string }; finish_reason: string | null }[];
  usage?: ChatCompletion['usage'];
}

let sim: RunningSimulator;
beforeAll(async () => {
  sim = await startSimulator({ timeScale: 0 });
});
afterAll(() => sim.close());

const question = 'How should I index a large Postgres table for faster lookups?';

describe('simulator: OpenAI Chat Completions', () => {
  it('answers a non-streaming request in the OpenAI/OpenRouter shape with honest usage and cost', async () => {
    const res = await postJson(`${sim.url}/sim-fast/v1/chat/completions`, {
      model: 'sim/llama',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: question },
      ],
    }, { authorization: 'Bearer sk-ignored-by-the-simulator' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await res.json()) as ChatCompletion;
    expect(body.object).toBe('chat.completion');
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(body.model).toBe('sim/llama');
    expect(body.provider).toBe('sim-fast');
    const choice = body.choices[0]!;
    expect(choice.message.role).toBe('assistant');
    expect(choice.finish_reason).toBe('stop');
    const text = choice.message.content;
    expect(text.split(/\s+/).length).toBeGreaterThan(20);
    const u = body.usage;
    expect(u.completion_tokens).toBe(tokenCount(text));
    expect(u.prompt_tokens).toBe(expectedPromptTokens(['You are terse.', question]));
    expect(u.total_tokens).toBe(u.prompt_tokens + u.completion_tokens);
    expect(u.prompt_tokens_details.cached_tokens).toBe(0);
    expect(u.completion_tokens_details.reasoning_tokens).toBe(0);
    const price = SIM_PROVIDERS['sim-fast']!;
    expect(u.cost).toBeCloseTo((u.prompt_tokens * price.inputPrice + u.completion_tokens * price.outputPrice) / 1e6, 12);
  });

  it('streams one token per chunk, then finish, usage and [DONE]', async () => {
    const request = { model: 'llama', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: question }] };
    const res = await postJson(`${sim.url}/sim-cheap/v1/chat/completions`, request);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = parseSSE(await res.text());
    expect(events.at(-1)!.data).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as Chunk);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id)).toBe(true);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    const finishChunk = chunks.at(-2)!;
    expect(finishChunk.choices[0]!.finish_reason).toBe('stop');
    const deltas = chunks.slice(1, -2).map((c) => c.choices[0]!.delta.content!);
    for (const delta of deltas) expect(tokenCount(delta)).toBe(1);
    const text = deltas.join('');
    expect(usageChunk.usage!.completion_tokens).toBe(deltas.length);
    expect(usageChunk.usage!.prompt_tokens).toBe(expectedPromptTokens([question]));
    const price = SIM_PROVIDERS['sim-cheap']!;
    expect(usageChunk.usage!.cost).toBeCloseTo((usageChunk.usage!.prompt_tokens * price.inputPrice + deltas.length * price.outputPrice) / 1e6, 12);

    // The same conversation without streaming gives the same text.
    const whole = (await (await postJson(`${sim.url}/sim-cheap/v1/chat/completions`, { ...request, stream: false })).json()) as ChatCompletion;
    expect(whole.choices[0]!.message.content).toBe(text);
  });

  it('omits the usage chunk unless stream_options.include_usage is set', async () => {
    const res = await postJson(`${sim.url}/sim-fast/v1/chat/completions`, { model: 'mini', stream: true, messages: [{ role: 'user', content: 'hello' }] });
    const events = parseSSE(await res.text());
    expect(events.at(-1)!.data).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as Chunk);
    expect(chunks.some((c) => c.usage !== undefined)).toBe(false);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
  });

  it('stops at max_tokens and max_completion_tokens with finish_reason length', async () => {
    for (const field of ['max_tokens', 'max_completion_tokens']) {
      const res = await postJson(`${sim.url}/sim-fast/v1/chat/completions`, { model: 'llama', [field]: 7, messages: [{ role: 'user', content: question }] });
      const body = (await res.json()) as ChatCompletion;
      expect(body.choices[0]!.finish_reason).toBe('length');
      expect(body.usage.completion_tokens).toBe(7);
      expect(tokenCount(body.choices[0]!.message.content)).toBe(7);
    }
    const res = await postJson(`${sim.url}/sim-fast/v1/chat/completions`, { model: 'llama', max_tokens: 3, stream: true, messages: [{ role: 'user', content: question }] });
    const chunks = parseSSE(await res.text()).slice(0, -1).map((e) => JSON.parse(e.data) as Chunk);
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBe(3);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('length');
  });

  it('lists the models a provider serves', async () => {
    const res = await fetch(`${sim.url}/sim-cheap/v1/models`);
    const body = (await res.json()) as { object: string; data: { id: string; context_length: number }[] };
    expect(body.object).toBe('list');
    expect(body.data.map((m) => m.id)).toEqual(['llama', 'mini']);
    expect(body.data[1]!.context_length).toBe(32768);
  });

  it('answers errors in OpenAI shape: unknown model 404, bad JSON 400, bad request 400', async () => {
    let res = await postJson(`${sim.url}/sim-flaky/v1/chat/completions`, { model: 'mini', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(404);
    let body = (await res.json()) as { error: { message: string; type: string; code: string } };
    expect(body.error.message).toBe('sim-flaky does not serve model mini; it serves llama (also as sim/llama)');
    expect(body.error.code).toBe('model_not_found');

    res = await fetch(`${sim.url}/sim-fast/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": "llama", ' });
    expect(res.status).toBe(400);
    body = (await res.json()) as typeof body;
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/not valid JSON/);

    res = await postJson(`${sim.url}/sim-fast/v1/chat/completions`, { model: 'llama', messages: [] });
    expect(res.status).toBe(400);

    res = await postJson(`${sim.url}/sim-anthropic/v1/chat/completions`, { model: 'llama', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/anthropic protocol.*POST \/v1\/messages/);

    res = await postJson(`${sim.url}/sim-nowhere/v1/chat/completions`, { model: 'llama', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(404);
  });
});
