/**
 * The official `@google/genai` SDK against the simulator over HTTP (Gemini API): schemas
 * written the SDK's way (`Type.OBJECT`, `parametersJsonSchema`, `responseSchema`), chats,
 * token counting and the error paths.
 */
import { ApiError, GoogleGenAI, Type, type Content, type HttpOptions } from '@google/genai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { countingFetch, failingSimulator, failOnceSimulator } from './helpers/sdk-sim.js';

let sim: RunningSimulator;
let ai: GoogleGenAI;
const genai = (s: RunningSimulator, extra: Partial<HttpOptions> = {}, apiKey = 'AIza-test-local') =>
  new GoogleGenAI({ apiKey, httpOptions: { baseUrl: `${s.url}/sim-gemini`, retryOptions: { attempts: 1 }, ...extra } });

beforeAll(async () => {
  sim = await startSimulator();
  ai = genai(sim);
});
afterAll(() => sim.close());

describe('@google/genai against the simulator', () => {
  it('answers generateContent with usage metadata', async () => {
    const response = await ai.models.generateContent({ model: 'llama', contents: 'Tell me about volcanoes.' });
    expect(response.text).toMatch(/volcano/i);
    expect(response.candidates?.[0]?.finishReason).toBe('STOP');
    const usage = response.usageMetadata;
    expect(usage?.totalTokenCount).toBe((usage?.promptTokenCount ?? 0) + (usage?.candidatesTokenCount ?? 0));
  });

  it('streams with generateContentStream, usage on the last chunk, and counts the same prompt tokens', async () => {
    let text = '';
    let last: { promptTokenCount?: number; candidatesTokenCount?: number } | undefined;
    for await (const chunk of await ai.models.generateContentStream({ model: 'mini', contents: 'Write 40 tokens about bees.' })) {
      text += chunk.text ?? '';
      if (chunk.usageMetadata) last = chunk.usageMetadata;
    }
    expect(last?.candidatesTokenCount).toBe(40);
    expect(text.length).toBeGreaterThan(0);
    const counted = await ai.models.countTokens({ model: 'mini', contents: 'Write 40 tokens about bees.' });
    expect(counted.totalTokens).toBe(last?.promptTokenCount);
  });

  it('reproduces the README conversation in a chat with sendMessageStream', async () => {
    for (const name of ['José Mourinho', 'Zoë Kravitz', 'Łukasz Nowak', '山田太郎']) {
      const chat = ai.chats.create({ model: 'llama' });
      await chat.sendMessage({ message: `My name is ${name}.` });
      let reply = '';
      for await (const chunk of await chat.sendMessageStream({ message: 'What is my name?' })) reply += chunk.text ?? '';
      expect(reply.startsWith(`Your name is ${name}.`)).toBe(true);
      expect(chat.getHistory()[0]).toEqual({ role: 'user', parts: [{ text: `My name is ${name}.` }] });
    }
  });

  it('calls a function declared with upper-case Type schemas, then answers with its result', async () => {
    const tools = [{ functionDeclarations: [{ name: 'get_weather', description: 'Current weather for a city', parameters: { type: Type.OBJECT, properties: { city: { type: Type.STRING } }, required: ['city'] } }] }];
    const contents: Content[] = [{ role: 'user', parts: [{ text: 'What is the weather in Madrid? Use get_weather.' }] }];
    const first = await ai.models.generateContent({ model: 'llama', contents, config: { tools } });
    const call = first.functionCalls?.[0];
    expect(call?.name).toBe('get_weather');
    expect(typeof call?.args?.city).toBe('string');
    contents.push(first.candidates?.[0]?.content as Content, { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temperature: 24 } } }] });
    const second = await ai.models.generateContent({ model: 'llama', contents, config: { tools } });
    expect(second.text).toContain('"temperature":24');
  });

  it('calls a function declared with parametersJsonSchema from zod', async () => {
    const parametersJsonSchema = z.toJSONSchema(z.object({ query: z.string(), limit: z.number().int() }));
    const response = await ai.models.generateContent({
      model: 'llama',
      contents: 'Search the catalogue for maps with search_catalogue.',
      config: { tools: [{ functionDeclarations: [{ name: 'search_catalogue', description: 'Search the catalogue', parametersJsonSchema }] }] },
    });
    const args = response.functionCalls?.[0]?.args as { query: unknown; limit: unknown } | undefined;
    expect(typeof args?.query).toBe('string');
    expect(Number.isInteger(args?.limit)).toBe(true);
  });

  it('returns structured output for responseSchema (Type enums) and responseJsonSchema (zod)', async () => {
    const typed = await ai.models.generateContent({
      model: 'llama',
      contents: 'List three fruits.',
      config: { responseMimeType: 'application/json', responseSchema: { type: Type.ARRAY, items: { type: Type.OBJECT, properties: { name: { type: Type.STRING }, calories: { type: Type.INTEGER } }, required: ['name', 'calories'] } } },
    });
    const fruits = JSON.parse(typed.text ?? '') as { name: unknown; calories: unknown }[];
    expect(Array.isArray(fruits)).toBe(true);
    for (const f of fruits) expect([typeof f.name, Number.isInteger(f.calories)]).toEqual(['string', true]);

    const City = z.object({ city: z.string(), population: z.number().int() });
    const json = await ai.models.generateContent({ model: 'llama', contents: 'A city in Portugal.', config: { responseMimeType: 'application/json', responseJsonSchema: z.toJSONSchema(City) } });
    expect(City.safeParse(JSON.parse(json.text ?? '')).success).toBe(true);
  });

  it('stops at a stop sequence', async () => {
    const response = await ai.models.generateContent({ model: 'llama', contents: 'say: one two three four', config: { stopSequences: [' three'] } });
    expect(response.text).toBe('one two');
    expect(response.usageMetadata?.candidatesTokenCount).toBe(2);
  });

  it('answers candidateCount candidates', async () => {
    const response = await ai.models.generateContent({ model: 'llama', contents: 'Tell me about kites.', config: { candidateCount: 2 } });
    expect(response.candidates?.map((c) => c.index)).toEqual([0, 1]);
    expect(response.candidates?.every((c) => c.finishReason === 'STOP')).toBe(true);
  });

  it('lists models', async () => {
    const names: string[] = [];
    for await (const model of await ai.models.list()) names.push(model.name ?? '');
    expect(names).toEqual(['models/llama', 'models/mini']);
  });

  it("refuses a key beginning sk-bad with Google's API_KEY_INVALID (status 400)", async () => {
    const error = (await genai(sim, {}, 'sk-bad-key').models.generateContent({ model: 'llama', contents: 'hi' }).catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(400);
    expect(error.message).toContain('API_KEY_INVALID');
    expect(error.message).not.toContain('sk-bad-key');
  });

  it("retries a 429 after Retry-After with the SDK's own retry", async () => {
    const flaky = await failOnceSimulator('sim-gemini', 'rate-limit');
    try {
      const counter = countingFetch();
      const retrying = genai(flaky, { retryOptions: { attempts: 3, initialDelay: 0.05 }, fetch: counter.fetch });
      const response = await retrying.models.generateContent({ model: 'llama', contents: 'hi' });
      expect(response.text).toBeTruthy();
      expect(counter.count()).toBe(2);
    } finally {
      await flaky.close();
    }
  });

  it('raises ApiError for 429 and 500', async () => {
    for (const [kind, status] of [['rate-limit', 429], ['server-error', 500]] as const) {
      const failing = await failingSimulator('sim-gemini', kind);
      try {
        const error = (await genai(failing).models.generateContent({ model: 'llama', contents: 'hi' }).catch((e: unknown) => e)) as ApiError;
        expect(error).toBeInstanceOf(ApiError);
        expect(error.status).toBe(status);
      } finally {
        await failing.close();
      }
    }
  });

  it('fails a stream cut midway, and raises ApiError for an error inside a stream', async () => {
    for (const kind of ['cut-stream', 'stream-error'] as const) {
      const failing = await failingSimulator('sim-gemini', kind);
      try {
        const read = async () => {
          let text = '';
          for await (const chunk of await genai(failing).models.generateContentStream({ model: 'llama', contents: 'Write 50 tokens about tea.' })) text += chunk.text ?? '';
          return text;
        };
        const error = await read().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(Error);
        if (kind === 'stream-error') expect((error as ApiError).status).toBe(503);
      } finally {
        await failing.close();
      }
    }
  });
});
