/**
 * The official `openai` SDK against the simulator over HTTP, Chat Completions: everything an
 * app does with it should work as against api.openai.com.
 */
import OpenAI from 'openai';
import { zodFunction, zodResponseFormat } from 'openai/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { countingFetch, failingSimulator, failOnceSimulator } from './helpers/sdk-sim.js';

let sim: RunningSimulator;
let client: OpenAI;
const baseURL = (s: RunningSimulator, provider = 'sim-fast') => `${s.url}/${provider}/v1`;

beforeAll(async () => {
  sim = await startSimulator();
  client = new OpenAI({ baseURL: baseURL(sim), apiKey: 'sk-test-local', maxRetries: 0 });
});
afterAll(() => sim.close());

describe('openai SDK: chat.completions against the simulator', () => {
  it('answers a plain request, with usage and a request id', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'Tell me about lighthouses.' }] }).withResponse();
    expect(data.object).toBe('chat.completion');
    expect(data.choices[0]?.message.content).toMatch(/lighthouse/i);
    expect(data.choices[0]?.finish_reason).toBe('stop');
    expect(data.usage?.total_tokens).toBe((data.usage?.prompt_tokens ?? 0) + (data.usage?.completion_tokens ?? 0));
    expect(response.headers.get('x-request-id')).toMatch(/^req_/);
  });

  it('streams with the final usage chunk, usage: null before it', async () => {
    const stream = await client.chat.completions.create({ model: 'llama', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Write 25 tokens about rivers.' }] });
    let text = '';
    const usages: unknown[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usages.push(chunk.usage);
    }
    const last = usages[usages.length - 1] as OpenAI.CompletionUsage;
    expect(usages.slice(0, -1).every((u) => u === null)).toBe(true);
    expect(last.completion_tokens).toBe(25);
    expect(text.length).toBeGreaterThan(0);
  });

  it('reproduces the README conversation word for word', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'My name is José Mourinho.' }];
    const first = await client.chat.completions.create({ model: 'llama', messages });
    messages.push({ role: 'assistant', content: first.choices[0]?.message.content ?? '' }, { role: 'user', content: 'What is my name?' });
    const second = await client.chat.completions.create({ model: 'mini', messages });
    expect(second.choices[0]?.message.content).toBe('Your name is José Mourinho.');
  });

  it.each(['Zoë Kravitz', 'Łukasz Nowak', '山田太郎'])('remembers the name %s across turns', async (name) => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: `My name is ${name}.` }];
    const first = await client.chat.completions.create({ model: 'llama', messages });
    messages.push({ role: 'assistant', content: first.choices[0]?.message.content ?? '' }, { role: 'user', content: 'What is my name?' });
    const second = await client.chat.completions.create({ model: 'llama', messages });
    expect(second.choices[0]?.message.content?.startsWith(`Your name is ${name}.`)).toBe(true);
  });

  it('runs a tool round trip with runTools()', async () => {
    const calls: string[] = [];
    const runner = client.chat.completions.runTools({
      model: 'llama',
      messages: [{ role: 'user', content: 'What is the weather in Lisbon? Use get_weather.' }],
      tools: [
        zodFunction({
          name: 'get_weather',
          description: 'Current weather for a city',
          parameters: z.object({ city: z.string() }),
          function: (args: { city: string }) => {
            calls.push(args.city);
            return { city: args.city, temperature: 21 };
          },
        }),
      ],
    });
    const text = await runner.finalContent();
    expect(calls).toHaveLength(1);
    expect(text).toContain('get_weather');
    expect(text).toContain('"temperature":21');
    const toolMessages = runner.messages.filter((m) => m.role === 'tool');
    expect(toolMessages).toHaveLength(1);
  });

  it('returns structured output parsed by the zod helper', async () => {
    const Person = z.object({ name: z.string(), age: z.number().int(), hobbies: z.array(z.string()) });
    const completion = await client.chat.completions.parse({
      model: 'llama',
      messages: [{ role: 'user', content: 'Describe a person who likes chess.' }],
      response_format: zodResponseFormat(Person, 'person'),
    });
    const parsed = completion.choices[0]?.message.parsed;
    expect(Person.safeParse(parsed).success).toBe(true);
  });

  it('stops at a stop sequence', async () => {
    const free = await client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'say: one two three four' }] });
    expect(free.choices[0]?.message.content).toBe('one two three four');
    const stopped = await client.chat.completions.create({ model: 'llama', stop: [' three'], messages: [{ role: 'user', content: 'say: one two three four' }] });
    expect(stopped.choices[0]?.message.content).toBe('one two');
    expect(stopped.choices[0]?.finish_reason).toBe('stop');
    expect(stopped.usage?.completion_tokens).toBe(2);
  });

  it('lists models', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(['llama', 'mini']);
  });

  it('raises AuthenticationError for a key beginning sk-bad', async () => {
    const bad = new OpenAI({ baseURL: baseURL(sim), apiKey: 'sk-bad-key', maxRetries: 0 });
    const error = await bad.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((error as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');
    expect((error as Error).message).not.toContain('sk-bad-key');
  });

  it("retries a 429 after Retry-After with the SDK's own retry", async () => {
    const flaky = await failOnceSimulator('sim-flaky', 'rate-limit');
    try {
      const counter = countingFetch();
      const retrying = new OpenAI({ baseURL: baseURL(flaky, 'sim-flaky'), apiKey: 'sk-test', maxRetries: 2, fetch: counter.fetch });
      const done = await retrying.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'hi' }] });
      expect(done.choices[0]?.message.content).toBeTruthy();
      expect(counter.count()).toBe(2);
    } finally {
      await flaky.close();
    }
  });

  it('raises RateLimitError with the Retry-After header when retries are off', async () => {
    const limited = await failingSimulator('sim-flaky', 'rate-limit');
    try {
      const c = new OpenAI({ baseURL: baseURL(limited, 'sim-flaky'), apiKey: 'sk-test', maxRetries: 0 });
      const error = (await c.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.RateLimitError>;
      expect(error).toBeInstanceOf(OpenAI.RateLimitError);
      expect(error.headers.get('retry-after')).toMatch(/^\d+$/);
    } finally {
      await limited.close();
    }
  });

  it('raises InternalServerError for a 500', async () => {
    const failing = await failingSimulator('sim-flaky', 'server-error');
    try {
      const c = new OpenAI({ baseURL: baseURL(failing, 'sim-flaky'), apiKey: 'sk-test', maxRetries: 0 });
      const error = await c.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    } finally {
      await failing.close();
    }
  });

  it('fails a stream cut midway, and raises an APIError for an error inside a stream', async () => {
    for (const kind of ['cut-stream', 'stream-error'] as const) {
      const failing = await failingSimulator('sim-flaky', kind);
      try {
        const c = new OpenAI({ baseURL: baseURL(failing, 'sim-flaky'), apiKey: 'sk-test', maxRetries: 0 });
        const read = async () => {
          const stream = await c.chat.completions.create({ model: 'llama', stream: true, messages: [{ role: 'user', content: 'Write 50 tokens about tea.' }] });
          let text = '';
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
          return text;
        };
        const error = await read().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(Error);
        if (kind === 'stream-error') expect(error).toBeInstanceOf(OpenAI.APIError);
      } finally {
        await failing.close();
      }
    }
  });
});
