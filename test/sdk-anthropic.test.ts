/**
 * The official `@anthropic-ai/sdk` against the simulator over HTTP (Messages API): everything
 * an app does with it should work as against api.anthropic.com.
 */
import Anthropic from '@anthropic-ai/sdk';
import { betaZodTool } from '@anthropic-ai/sdk/helpers/beta/zod';
import { zodOutputFormat } from '@anthropic-ai/sdk/helpers/zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { countingFetch, failingSimulator, failOnceSimulator } from './helpers/sdk-sim.js';

let sim: RunningSimulator;
let client: Anthropic;
const baseURL = (s: RunningSimulator) => `${s.url}/sim-anthropic`;

beforeAll(async () => {
  sim = await startSimulator();
  client = new Anthropic({ baseURL: baseURL(sim), apiKey: 'sk-ant-test-local', maxRetries: 0 });
});
afterAll(() => sim.close());

function textOf(message: Anthropic.Message): string {
  return message.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
}

describe('@anthropic-ai/sdk against the simulator', () => {
  it('answers messages.create with usage and a request id', async () => {
    const { data, response } = await client.messages.create({ model: 'llama', max_tokens: 512, messages: [{ role: 'user', content: 'Tell me about glaciers.' }] }).withResponse();
    expect(data.type).toBe('message');
    expect(data.id).toMatch(/^msg_/);
    expect(textOf(data)).toMatch(/glacier/i);
    expect(data.stop_reason).toBe('end_turn');
    expect(data.usage.output_tokens).toBeGreaterThan(0);
    expect(response.headers.get('request-id')).toMatch(/^req_/);
  });

  it('streams with messages.stream().finalMessage(), usage included', async () => {
    let streamed = '';
    const stream = client.messages.stream({ model: 'llama', max_tokens: 512, messages: [{ role: 'user', content: 'Write 30 tokens about owls.' }] });
    stream.on('text', (t) => (streamed += t));
    const final = await stream.finalMessage();
    expect(textOf(final)).toBe(streamed);
    expect(final.usage.output_tokens).toBe(30);
    const counted = await client.messages.countTokens({ model: 'llama', messages: [{ role: 'user', content: 'Write 30 tokens about owls.' }] });
    expect(counted.input_tokens).toBe(final.usage.input_tokens);
  });

  it('reproduces the README conversation word for word, and other names', async () => {
    for (const name of ['José Mourinho', 'Zoë Kravitz', 'Łukasz Nowak', '山田太郎']) {
      const messages: Anthropic.MessageParam[] = [{ role: 'user', content: `My name is ${name}.` }];
      const first = await client.messages.create({ model: 'llama', max_tokens: 256, messages });
      messages.push({ role: 'assistant', content: first.content }, { role: 'user', content: 'What is my name?' });
      const second = await client.messages.create({ model: 'llama', max_tokens: 256, messages });
      expect(textOf(second).startsWith(`Your name is ${name}.`)).toBe(true);
    }
  });

  it('runs a tool round trip with the beta toolRunner, with toolu_ ids', async () => {
    const cities: string[] = [];
    const runner = client.beta.messages.toolRunner({
      model: 'llama',
      max_tokens: 512,
      messages: [{ role: 'user', content: 'What is the weather in Porto? Use get_weather.' }],
      tools: [
        betaZodTool({
          name: 'get_weather',
          description: 'Current weather for a city',
          inputSchema: z.object({ city: z.string() }),
          run: (args) => {
            cities.push(args.city);
            return JSON.stringify({ city: args.city, temperature: 19 });
          },
        }),
      ],
    });
    const ids: string[] = [];
    for await (const message of runner) for (const block of message.content) if (block.type === 'tool_use') ids.push(block.id);
    const final = await runner.done();
    expect(cities).toHaveLength(1);
    expect(ids.every((id) => id.startsWith('toolu_'))).toBe(true);
    expect(final.content.map((b) => (b.type === 'text' ? b.text : '')).join('')).toContain('"temperature":19');
  });

  it('returns structured output through output_config.format with the zod helper', async () => {
    const Recipe = z.object({ title: z.string(), minutes: z.number().int(), ingredients: z.array(z.string()) });
    const message = await client.messages.parse({
      model: 'llama',
      max_tokens: 512,
      messages: [{ role: 'user', content: 'A recipe for soup.' }],
      output_config: { format: zodOutputFormat(Recipe) },
    });
    expect(Recipe.safeParse(message.parsed_output).success).toBe(true);
  });

  it('stops at a stop sequence with stop_reason stop_sequence', async () => {
    const message = await client.messages.create({ model: 'llama', max_tokens: 100, stop_sequences: [' three'], messages: [{ role: 'user', content: 'say: one two three four' }] });
    expect(textOf(message)).toBe('one two');
    expect(message.stop_reason).toBe('stop_sequence');
    expect(message.stop_sequence).toBe(' three');
  });

  it('lists models', async () => {
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toEqual(['llama']);
  });

  it('raises AuthenticationError for a key beginning sk-bad', async () => {
    const bad = new Anthropic({ baseURL: baseURL(sim), apiKey: 'sk-bad-key', maxRetries: 0 });
    const error = await bad.messages.create({ model: 'llama', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((error as InstanceType<typeof Anthropic.AuthenticationError>).error).toEqual({ type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
  });

  it('refuses a request without max_tokens as a BadRequestError', async () => {
    const error = await client.messages.create({ model: 'llama', messages: [{ role: 'user', content: 'hi' }] } as unknown as Anthropic.MessageCreateParamsNonStreaming).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
  });

  it("retries a 429 after Retry-After with the SDK's own retry", async () => {
    const flaky = await failOnceSimulator('sim-anthropic', 'rate-limit');
    try {
      const counter = countingFetch();
      const retrying = new Anthropic({ baseURL: baseURL(flaky), apiKey: 'sk-ant-test', maxRetries: 2, fetch: counter.fetch });
      const done = await retrying.messages.create({ model: 'llama', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] });
      expect(textOf(done)).toBeTruthy();
      expect(counter.count()).toBe(2);
    } finally {
      await flaky.close();
    }
  });

  it('raises RateLimitError, InternalServerError and a 529 overloaded_error', async () => {
    const cases = [
      ['rate-limit', Anthropic.RateLimitError, 429],
      ['server-error', Anthropic.InternalServerError, 500],
      ['overloaded', Anthropic.InternalServerError, 529],
    ] as const;
    for (const [kind, type, status] of cases) {
      const failing = await failingSimulator('sim-anthropic', kind);
      try {
        const c = new Anthropic({ baseURL: baseURL(failing), apiKey: 'sk-ant-test', maxRetries: 0 });
        const error = (await c.messages.create({ model: 'llama', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e)) as InstanceType<typeof Anthropic.APIError>;
        expect(error).toBeInstanceOf(type);
        expect(error.status).toBe(status);
        if (kind === 'rate-limit') expect(error.headers?.get('retry-after')).toMatch(/^\d+$/);
        if (kind === 'overloaded') expect(error.error).toMatchObject({ error: { type: 'overloaded_error' } });
      } finally {
        await failing.close();
      }
    }
  });

  it('fails a stream cut midway, and raises an APIError for event: error inside a 200 stream', async () => {
    for (const kind of ['cut-stream', 'stream-error'] as const) {
      const failing = await failingSimulator('sim-anthropic', kind);
      try {
        const c = new Anthropic({ baseURL: baseURL(failing), apiKey: 'sk-ant-test', maxRetries: 0 });
        const error = await c.messages.stream({ model: 'llama', max_tokens: 512, messages: [{ role: 'user', content: 'Write 50 tokens about tea.' }] }).finalMessage().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(Error);
        if (kind === 'stream-error') {
          expect(error).toBeInstanceOf(Anthropic.APIError);
          expect((error as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({ error: { type: 'overloaded_error' } });
        }
      } finally {
        await failing.close();
      }
    }
  });
});
