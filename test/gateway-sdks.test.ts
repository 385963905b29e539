/**
 * The gateway as users reach it: the official OpenAI, Anthropic and Google clients and the
 * Vercel AI SDK, pointed at a gateway on an ephemeral port backed by the simulator. Every
 * client talks to models of every upstream protocol (sim-fast speaks OpenAI, sim-anthropic
 * Anthropic, sim-gemini Gemini).
 */
import Anthropic from '@anthropic-ai/sdk';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { GoogleGenAI } from '@google/genai';
import { generateText, jsonSchema, streamText, tool } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MASTER_KEY, startGateway, type RunningGateway } from './helpers/gateway.js';

let gw: RunningGateway;
let openai: OpenAI;
let anthropic: Anthropic;
let google: GoogleGenAI;

beforeAll(async () => {
  gw = await startGateway('aliases:\n  fast: sim/llama@sim-fast\n  claude-ish: sim/llama@sim-anthropic\n');
  openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MASTER_KEY, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: gw.url, apiKey: MASTER_KEY, maxRetries: 0 });
  google = new GoogleGenAI({ apiKey: MASTER_KEY, httpOptions: { baseUrl: gw.url } });
});
afterAll(() => gw.close());

const UPSTREAMS = ['sim/llama@sim-fast', 'sim/llama@sim-anthropic', 'sim/llama@sim-gemini'] as const;
const PROVIDER = { 'sim/llama@sim-fast': 'sim-fast', 'sim/llama@sim-anthropic': 'sim-anthropic', 'sim/llama@sim-gemini': 'sim-gemini' };

const weatherParams: { type: 'object'; properties: Record<string, { type: 'string' }>; required: string[] } = {
  type: 'object',
  properties: { city: { type: 'string' } },
  required: ['city'],
};

describe('the OpenAI client', () => {
  it.each(UPSTREAMS)('chats with %s, with usage, and says who answered', async (model) => {
    const raw = await openai.chat.completions
      .create({ model, messages: [{ role: 'user', content: 'My name is Ada. What is my name?' }] })
      .withResponse();
    const reply = raw.data;
    expect(reply.object).toBe('chat.completion');
    expect(reply.model).toBe(model);
    expect(reply.choices[0]?.message.content).toMatch(/Ada/);
    expect(reply.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(reply.usage?.completion_tokens).toBeGreaterThan(0);
    expect(raw.response.headers.get('x-switchboard-provider')).toBe(PROVIDER[model]);
    expect(raw.response.headers.get('x-request-id')).toMatch(/^req_/);
    expect(Number(raw.response.headers.get('x-switchboard-cost'))).toBeGreaterThan(0);
    expect(Number(raw.response.headers.get('x-switchboard-overhead-ms'))).toBeGreaterThanOrEqual(0);
  });

  it.each(UPSTREAMS)('streams from %s, ending with usage', async (model) => {
    const stream = await openai.chat.completions.create({
      model,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'Write 40 tokens about rivers' }],
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.length).toBeGreaterThan(20);
    expect(finish).toBe('stop');
    expect(usage?.completion_tokens).toBe(40);
  });

  it('keeps the caller\'s x-request-id', async () => {
    const raw = await openai.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'Hi' }] }, { headers: { 'x-request-id': 'trace-42' } }).withResponse();
    expect(raw.response.headers.get('x-request-id')).toBe('trace-42');
  });

  it.each(UPSTREAMS)('gets tool calls from %s', async (model) => {
    const reply = await openai.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'What is the weather in Paris? Use get_weather.' }],
      tools: [{ type: 'function', function: { name: 'get_weather', description: 'Current weather for a city', parameters: weatherParams } }],
    });
    const call = reply.choices[0]?.message.tool_calls?.[0];
    expect(reply.choices[0]?.finish_reason).toBe('tool_calls');
    expect(call?.type === 'function' ? call.function.name : undefined).toBe('get_weather');
    const args = JSON.parse(call?.type === 'function' ? call.function.arguments : '{}') as { city?: unknown };
    expect(typeof args.city).toBe('string');
  });

  it.each(UPSTREAMS)('gets structured output from %s', async (model) => {
    const reply = await openai.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Describe Ada Lovelace' }],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'person', schema: { type: 'object', properties: { name: { type: 'string' }, born: { type: 'integer' } }, required: ['name', 'born'], additionalProperties: false } },
      },
    });
    const value = JSON.parse(reply.choices[0]?.message.content ?? '') as { name: unknown; born: unknown };
    expect(typeof value.name).toBe('string');
    expect(Number.isInteger(value.born)).toBe(true);
  });

  it.each(UPSTREAMS)('uses the Responses API with %s', async (model) => {
    const res = await openai.responses.create({ model, input: 'My name is Ada. What is my name?' });
    expect(res.status).toBe('completed');
    expect(res.output_text).toMatch(/Ada/);
    expect(res.usage?.output_tokens).toBeGreaterThan(0);
  });

  it('counts Responses API input tokens', async () => {
    const res = await fetch(`${gw.url}/v1/responses/input_tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MASTER_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fast', input: 'Hello there, how are you today?' }),
    });
    const body = (await res.json()) as { object: string; input_tokens: number };
    expect(body.object).toBe('response.input_tokens');
    expect(body.input_tokens).toBeGreaterThan(3);
  });

  it('streams the Responses API', async () => {
    const stream = await openai.responses.create({ model: 'claude-ish', input: 'Write 15 tokens about clouds', stream: true });
    let text = '';
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed') completed = event.response;
    }
    expect(text.length).toBeGreaterThan(10);
    expect(completed?.usage?.output_tokens).toBe(15);
  });

  it('lists the aliases and the simulator\'s models', async () => {
    const page = await openai.models.list();
    const ids = page.data.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['fast', 'claude-ish', 'sim/llama', 'sim/mini']));
  });
});

describe('the Anthropic client', () => {
  it.each(UPSTREAMS)('sends a message to %s', async (model) => {
    const msg = await anthropic.messages.create({ model, max_tokens: 200, messages: [{ role: 'user', content: 'My name is Ada. What is my name?' }] });
    expect(msg.type).toBe('message');
    const block = msg.content[0];
    expect(block?.type === 'text' ? block.text : '').toMatch(/Ada/);
    expect(msg.usage.input_tokens).toBeGreaterThan(0);
    expect(msg.stop_reason).toBe('end_turn');
  });

  it.each(UPSTREAMS)('streams from %s', async (model) => {
    const stream = anthropic.messages.stream({ model, max_tokens: 200, messages: [{ role: 'user', content: 'Write 30 tokens about bees' }] });
    let text = '';
    stream.on('text', (t) => (text += t));
    const final = await stream.finalMessage();
    expect(text.length).toBeGreaterThan(10);
    expect(final.usage.output_tokens).toBe(30);
  });

  it('uses tools against an OpenAI-protocol model', async () => {
    const msg = await anthropic.messages.create({
      model: 'sim/llama@sim-fast',
      max_tokens: 200,
      tools: [{ name: 'get_weather', description: 'Current weather for a city', input_schema: weatherParams }],
      messages: [{ role: 'user', content: 'What is the weather in Paris? Use get_weather.' }],
    });
    expect(msg.stop_reason).toBe('tool_use');
    const use = msg.content.find((b) => b.type === 'tool_use');
    expect(use?.type === 'tool_use' ? use.name : undefined).toBe('get_weather');
  });

  it('counts tokens', async () => {
    const counted = await anthropic.messages.countTokens({ model: 'claude-ish', messages: [{ role: 'user', content: 'Hello there, how are you today?' }] });
    expect(counted.input_tokens).toBeGreaterThan(3);
  });

  it('lists models in the Anthropic shape', async () => {
    const page = await anthropic.models.list();
    const ids = page.data.map((m) => m.id);
    expect(ids).toContain('sim/llama');
    expect(page.data[0]?.type).toBe('model');
  });
});

describe('the Google client', () => {
  it.each(UPSTREAMS)('generates content with %s', async (model) => {
    const res = await google.models.generateContent({ model, contents: 'My name is Ada. What is my name?' });
    expect(res.text).toMatch(/Ada/);
    expect(res.usageMetadata?.promptTokenCount).toBeGreaterThan(0);
  });

  it.each(UPSTREAMS)('streams from %s', async (model) => {
    let text = '';
    let output: number | undefined;
    for await (const chunk of await google.models.generateContentStream({ model, contents: 'Write 25 tokens about owls' })) {
      text += chunk.text ?? '';
      output = chunk.usageMetadata?.candidatesTokenCount ?? output;
    }
    expect(text.length).toBeGreaterThan(10);
    expect(output).toBe(25);
  });

  it('calls a function on an Anthropic-protocol model', async () => {
    const res = await google.models.generateContent({
      model: 'claude-ish',
      contents: 'What is the weather in Paris? Use get_weather.',
      config: { tools: [{ functionDeclarations: [{ name: 'get_weather', description: 'Current weather for a city', parametersJsonSchema: weatherParams }] }] },
    });
    expect(res.functionCalls?.[0]?.name).toBe('get_weather');
  });

  it('counts tokens', async () => {
    const counted = await google.models.countTokens({ model: 'sim/llama', contents: 'Hello there, how are you today?' });
    expect(counted.totalTokens).toBeGreaterThan(3);
  });
});

describe('the Vercel AI SDK', () => {
  const provider = () => createOpenAICompatible({ name: 'switchboard', baseURL: `${gw.url}/v1`, apiKey: MASTER_KEY, includeUsage: true });

  it('generates text from a Gemini-protocol model', async () => {
    const { text, usage } = await generateText({ model: provider()('sim/llama@sim-gemini'), prompt: 'My name is Ada. What is my name?' });
    expect(text).toMatch(/Ada/);
    expect(usage.outputTokens).toBeGreaterThan(0);
  });

  it('streams text from an Anthropic-protocol model', async () => {
    const result = streamText({ model: provider()('claude-ish'), prompt: 'Write 20 tokens about the sea' });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    expect(text.length).toBeGreaterThan(10);
    expect((await result.usage).outputTokens).toBe(20);
  });

  it('calls a tool', async () => {
    const { toolCalls } = await generateText({
      model: provider()('sim/llama'),
      prompt: 'What is the weather in Paris? Use get_weather.',
      tools: { get_weather: tool({ description: 'Current weather for a city', inputSchema: jsonSchema<{ city: string }>(weatherParams) }) },
    });
    expect(toolCalls[0]?.toolName).toBe('get_weather');
  });
});
