/**
 * The Vercel AI SDK against the simulator over HTTP, through each official provider package:
 * `@ai-sdk/openai` (its default Responses API model and `.chat` for Chat Completions),
 * `@ai-sdk/anthropic` and `@ai-sdk/google`. Usage must equal what the simulator reported.
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createOpenAI } from '@ai-sdk/openai';
import { generateObject, generateText, stepCountIs, streamText, tool, type LanguageModel } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';

let sim: RunningSimulator;
beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(() => sim.close());

/** Usage as the simulator reported it in a raw response body, in the AI SDK's terms. */
type RawUsage = (body: unknown) => { inputTokens: number; outputTokens: number };

interface Case {
  name: string;
  model: () => LanguageModel;
  rawUsage: RawUsage;
}

const CASES: Case[] = [
  {
    name: '@ai-sdk/openai (its default, the Responses API)',
    model: () => createOpenAI({ baseURL: `${sim.url}/sim-fast/v1`, apiKey: 'sk-test' })('llama'),
    rawUsage: (body) => {
      const u = (body as { usage: { input_tokens: number; output_tokens: number } }).usage;
      return { inputTokens: u.input_tokens, outputTokens: u.output_tokens };
    },
  },
  {
    name: '@ai-sdk/openai .chat (Chat Completions)',
    model: () => createOpenAI({ baseURL: `${sim.url}/sim-fast/v1`, apiKey: 'sk-test' }).chat('llama'),
    rawUsage: (body) => {
      const u = (body as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
      return { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens };
    },
  },
  {
    name: '@ai-sdk/anthropic',
    model: () => createAnthropic({ baseURL: `${sim.url}/sim-anthropic/v1`, apiKey: 'sk-ant-test' })('llama'),
    rawUsage: (body) => {
      const u = (body as { usage: { input_tokens: number; output_tokens: number } }).usage;
      return { inputTokens: u.input_tokens, outputTokens: u.output_tokens };
    },
  },
  {
    name: '@ai-sdk/google',
    model: () => createGoogleGenerativeAI({ baseURL: `${sim.url}/sim-gemini/v1beta`, apiKey: 'AIza-test' })('llama'),
    rawUsage: (body) => {
      const u = (body as { usageMetadata: { promptTokenCount: number; candidatesTokenCount: number } }).usageMetadata;
      return { inputTokens: u.promptTokenCount, outputTokens: u.candidatesTokenCount };
    },
  },
];

describe.each(CASES)('Vercel AI SDK with $name', ({ model, rawUsage }) => {
  it('generateText: text and usage equal to what the simulator reported', async () => {
    const result = await generateText({ model: model(), prompt: 'Tell me about comets.', maxRetries: 0 });
    expect(result.text).toMatch(/comet/i);
    expect(result.finishReason).toBe('stop');
    const raw = rawUsage(result.response.body);
    expect(result.usage.inputTokens).toBe(raw.inputTokens);
    expect(result.usage.outputTokens).toBe(raw.outputTokens);
  });

  it('streamText: the same reply and usage as generateText', async () => {
    const prompt = 'Write 35 tokens about maps.';
    const whole = await generateText({ model: model(), prompt, maxRetries: 0 });
    const result = streamText({ model: model(), prompt, maxRetries: 0 });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    expect(text).toBe(whole.text);
    const usage = await result.usage;
    expect(usage.outputTokens).toBe(35);
    expect(usage.inputTokens).toBe(whole.usage.inputTokens);
  });

  it('multi-turn with a non-ASCII name', async () => {
    const first = await generateText({ model: model(), prompt: 'My name is José Mourinho.', maxRetries: 0 });
    const second = await generateText({
      model: model(),
      messages: [
        { role: 'user', content: 'My name is José Mourinho.' },
        { role: 'assistant', content: first.text },
        { role: 'user', content: 'What is my name?' },
      ],
      maxRetries: 0,
    });
    expect(second.text.startsWith('Your name is José Mourinho.')).toBe(true);
  });

  it('tools with steps: calls the tool, then answers with its result', async () => {
    const cities: string[] = [];
    const result = await generateText({
      model: model(),
      prompt: 'What is the weather in Seville? Use get_weather.',
      tools: {
        get_weather: tool({
          description: 'Current weather for a city',
          inputSchema: z.object({ city: z.string() }),
          execute: async ({ city }) => {
            cities.push(city);
            return { city, temperature: 30 };
          },
        }),
      },
      stopWhen: stepCountIs(3),
      maxRetries: 0,
    });
    expect(cities).toHaveLength(1);
    expect(result.steps).toHaveLength(2);
    expect(result.steps[0]?.finishReason).toBe('tool-calls');
    expect(result.text).toContain('"temperature":30');
    expect(result.totalUsage.outputTokens).toBe((result.steps[0]?.usage.outputTokens ?? 0) + (result.steps[1]?.usage.outputTokens ?? 0));
  });

  it('generateObject: an object matching the zod schema', async () => {
    const Book = z.object({ title: z.string(), year: z.number().int(), tags: z.array(z.string()) });
    const result = await generateObject({ model: model(), schema: Book, prompt: 'A book about the sea.', maxRetries: 0 });
    expect(Book.safeParse(result.object).success).toBe(true);
  });
});
