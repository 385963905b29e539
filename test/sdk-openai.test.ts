/**
 * The official `openai` SDK against the simulator over HTTP, Chat Completions: everything an
 * app does with it should work as against api.openai.com.
 */
import OpenAI from 'openai';
import { zodFunction, zodResponseFormat, zodTextFormat } from 'openai/helpers/zod';
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

  it('answers n choices, the prompt counted once in usage', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Tell me about kites.' }];
    const one = await client.chat.completions.create({ model: 'llama', messages });
    const three = await client.chat.completions.create({ model: 'llama', messages, n: 3 });
    expect(three.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(three.choices[0]?.message.content).toBe(one.choices[0]?.message.content);
    expect(new Set(three.choices.map((c) => c.message.content)).size).toBeGreaterThan(1);
    expect(three.usage?.prompt_tokens).toBe(one.usage?.prompt_tokens);
    expect(three.usage?.completion_tokens).toBe(three.choices.reduce((n, c) => n + (c.message.content?.match(/[\p{L}\p{M}\p{N}_]+|[^\p{L}\p{M}\p{N}_\s]/gu)?.length ?? 0), 0));
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

describe('openai SDK: responses against the simulator', () => {
  it('answers responses.create with output_text and usage', async () => {
    const response = await client.responses.create({ model: 'llama', input: 'Tell me about deserts.' });
    expect(response.object).toBe('response');
    expect(response.status).toBe('completed');
    expect(response.output_text).toMatch(/desert/i);
    expect(response.usage?.total_tokens).toBe((response.usage?.input_tokens ?? 0) + (response.usage?.output_tokens ?? 0));
  });

  it('streams typed events ending in response.completed with usage', async () => {
    const stream = await client.responses.create({ model: 'llama', input: 'Write 20 tokens about clouds.', stream: true });
    let text = '';
    const types: string[] = [];
    let usage: OpenAI.Responses.ResponseUsage | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') usage = event.response.usage ?? undefined;
    }
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    expect(usage?.output_tokens).toBe(20);
    expect(text.length).toBeGreaterThan(0);
  });

  it('counts input tokens as usage reports them', async () => {
    const input = 'Write 20 tokens about clouds.';
    const response = await client.responses.create({ model: 'llama', input });
    const counted = await client.responses.inputTokens.count({ model: 'llama', input });
    expect(counted).toEqual({ object: 'response.input_tokens', input_tokens: response.usage?.input_tokens });
  });

  it('continues a conversation with previous_response_id, and refuses an unknown one', async () => {
    const first = await client.responses.create({ model: 'llama', input: 'My name is José Mourinho.' });
    const second = await client.responses.create({ model: 'mini', input: 'What is my name?', previous_response_id: first.id });
    expect(second.output_text).toBe('Your name is José Mourinho.');
    const error = (await client.responses.create({ model: 'llama', input: 'hi', previous_response_id: 'resp_missing' }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.code).toBe('previous_response_not_found');
    expect(error.param).toBe('previous_response_id');
  });

  it('runs a function tool round trip', async () => {
    const tools: OpenAI.Responses.Tool[] = [{ type: 'function', name: 'get_weather', description: 'Current weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false }, strict: true }];
    const first = await client.responses.create({ model: 'llama', input: 'What is the weather in Faro? Use get_weather.', tools });
    const call = first.output.find((item): item is OpenAI.Responses.ResponseFunctionToolCall => item.type === 'function_call');
    expect(call?.name).toBe('get_weather');
    expect(typeof (JSON.parse(call?.arguments ?? '{}') as { city?: unknown }).city).toBe('string');
    const second = await client.responses.create({
      model: 'llama',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call?.call_id ?? '', output: JSON.stringify({ temperature: 26 }) }],
      tools,
    });
    expect(second.output_text).toContain('"temperature":26');
  });

  it('returns structured output parsed by zodTextFormat', async () => {
    const Event = z.object({ name: z.string(), date: z.string(), guests: z.array(z.string()) });
    const response = await client.responses.parse({ model: 'llama', input: 'Plan a party.', text: { format: zodTextFormat(Event, 'event') } });
    expect(Event.safeParse(response.output_parsed).success).toBe(true);
  });

  it('sends a reasoning summary when reasoning is asked for', async () => {
    const response = await client.responses.create({ model: 'llama', input: 'Why is the sky blue?', reasoning: { effort: 'low', summary: 'auto' } });
    const reasoning = response.output.find((item) => item.type === 'reasoning');
    expect(reasoning?.summary[0]?.text.length).toBeGreaterThan(0);
    expect(response.usage?.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
  });

  it('surfaces an error inside the stream as the typed error and response.failed events', async () => {
    const failing = await failingSimulator('sim-flaky', 'stream-error');
    try {
      const c = new OpenAI({ baseURL: baseURL(failing, 'sim-flaky'), apiKey: 'sk-test', maxRetries: 0 });
      const read = async () => {
        const stream = await c.responses.create({ model: 'llama', input: 'Write 50 tokens about tea.', stream: true });
        const events: OpenAI.Responses.ResponseStreamEvent[] = [];
        for await (const event of stream) events.push(event);
        return events;
      };
      // The SDK hands Responses error events to the app as typed events rather than throwing.
      const events = await read();
      const types = events.map((e) => e.type);
      expect(types.slice(-2)).toEqual(['error', 'response.failed']);
      expect(types).not.toContain('response.completed');
      const failed = events.at(-1) as OpenAI.Responses.ResponseFailedEvent;
      expect(failed.response.status).toBe('failed');
      expect(failed.response.error?.message).toBe('Overloaded');
    } finally {
      await failing.close();
    }
  });
});
