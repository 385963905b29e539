/** Structured output, web citations and reasoning against the simulator, in each protocol. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCLI } from './helpers/cli.js';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Call, Chat, StructuredOutputError, citationsFrom, tool, type StreamEvent } from '../src/index.js';
import { buildAnthropicBody } from '../src/protocols/anthropic.js';
import { buildGeminiBody } from '../src/protocols/gemini.js';
import { buildOpenAIBody } from '../src/protocols/openai.js';
import type { Endpoint } from '../src/protocols/protocol.js';
import type { CanonicalRequest } from '../src/types.js';

const PROVIDERS = ['sim-fast', 'sim-anthropic', 'sim-gemini'] as const;

const Person = z.object({
  name: z.string(),
  age: z.number().int().min(0),
  tags: z.array(z.string()),
  address: z.object({ city: z.string(), zip: z.string().optional() }),
});

describe.each(PROVIDERS)('structured output on %s', (provider) => {
  const model = `sim/llama@${provider}`;

  it('returns a typed, validated object; the history keeps the JSON text', async () => {
    const chat = new Chat(model);
    const person = await chat.send('Describe the person Ada', { schema: Person });
    // Typed: these compile only because send inferred the zod output type.
    const city: string = person.address.city;
    const age: number = person.age;
    expect({ city, age }).toEqual({ city: 'Ada', age: 0 });
    expect(person).toEqual({ name: 'Ada', age: 0, tags: ['Ada'], address: { city: 'Ada', zip: 'Ada' } });
    expect(chat.history).toEqual([
      { role: 'user', content: 'Describe the person Ada' },
      { role: 'assistant', content: JSON.stringify(person) },
    ]);
    expect(chat.lastTurn?.object).toEqual(person);
  });

  it('retries once with the validation error, and keeps neither the bad reply nor the retry prompt', async () => {
    const chat = new Chat(model);
    const person = await chat.send('Describe Ada but reply with invalid json first', { schema: Person });
    expect(person.name).toBe('Ada');
    expect(chat.history).toEqual([
      { role: 'user', content: 'Describe Ada but reply with invalid json first' },
      { role: 'assistant', content: JSON.stringify(person) },
    ]);
    const steps = chat.lastTurn?.steps ?? [];
    expect(steps.map((s) => s.kind)).toEqual(['initial', 'structured-retry']);
    expect(steps[0]?.message.content).toBe('{"name":12345,"age":0,"tags":["Ada"],"address":{"city":"Ada","zip":"Ada"}}');
  });

  it('raises StructuredOutputError with the raw text when the retry fails too; history untouched', async () => {
    const chat = new Chat(model);
    const error = await chat.send('Describe Ada, always invalid json', { schema: Person }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StructuredOutputError);
    const e = error as StructuredOutputError;
    expect(e.code).toBe('validation');
    expect(e.text).toBe('{"name":12345,"age":0,"tags":["Ada"],"address":{"city":"Ada","zip":"Ada"}}');
    expect(e.issues).toBe('name: Invalid input: expected string, received number');
    expect(chat.history).toEqual([]);
    expect(chat.usage.totalTokens).toBe(0);
  });

  it('takes a plain JSON Schema (validated by ajv)', async () => {
    const call = new Call(model);
    const value = await call.run('List colours for Rome', {
      schema: { type: 'object', properties: { colours: { type: 'array', items: { enum: ['red', 'green'] }, minItems: 2 } }, required: ['colours'] },
    });
    expect(value).toEqual({ colours: ['red', 'red'] });
  });
});

describe('structured output across models', () => {
  it('gives an object keyed by model, an Error where one failed', async () => {
    const models = PROVIDERS.map((p) => `sim/llama@${p}`);
    const chat = new Chat([...models, 'sim/llama@sim-flaky']);
    const out = await chat.send('Describe the person Ada', { schema: Person, temperature: 0 });
    for (const m of models) expect(out[m]).toEqual({ name: 'Ada', age: 0, tags: ['Ada'], address: { city: 'Ada', zip: 'Ada' } });
    const result = await new Call(models).run('Describe Ada, always invalid json', { schema: Person });
    for (const m of models) expect(result[m]).toBeInstanceOf(StructuredOutputError);
  });

  it('sends each provider its own form of the schema', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false };
    const responseFormat = { type: 'json_schema', json_schema: { name: 'response', schema, strict: true } };
    const request: CanonicalRequest = { model: 'm', messages: [{ role: 'user', content: 'hi' }], params: { responseFormat }, stream: true };
    const endpoint: Endpoint = { provider: 'x', protocol: 'openai', baseURL: 'http://x', headers: {}, compat: {} };
    expect(buildOpenAIBody(request, endpoint).response_format).toEqual(responseFormat);
    expect(buildGeminiBody(request).generationConfig).toEqual({ responseMimeType: 'application/json', responseSchema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] } });
    const anthropic = buildAnthropicBody(request);
    expect(anthropic.tools).toEqual([{ name: 'switchboard_output', description: 'Give the reply as response.', input_schema: schema }]);
    expect(anthropic.tool_choice).toEqual({ type: 'tool', name: 'switchboard_output' });
    // With thinking on, a forced tool is not allowed: an instruction instead.
    const thinking = buildAnthropicBody({ ...request, params: { responseFormat, reasoning: { effort: 'low' } } });
    expect(thinking.tools).toBeUndefined();
    expect(thinking.system).toContain('"required":["a"]');
  });
});

describe('web citations', () => {
  it('normalizes url_citation annotations and skips unknown types (OpenAI protocol, :online)', async () => {
    const chat = new Chat(['sim/llama:online@sim-fast', 'sim/llama@sim-fast']);
    await chat.send('Tell me about Kyoto');
    const online = chat.lastTurn['sim/llama:online@sim-fast'];
    expect(online?.annotations).toHaveLength(3);
    expect(online?.citations).toEqual([
      { url: 'https://en.example.org/wiki/kyoto', title: 'kyoto - Example Encyclopedia', excerpt: 'kyoto is a topic with a long history.', startIndex: 13, endIndex: 27 },
      { url: 'https://news.example.com/kyoto', title: 'News about kyoto', excerpt: 'The latest on kyoto.', startIndex: 74, endIndex: 90 },
    ]);
    expect(online?.text.slice(13, 27)).toBe('en.example.org');
    expect(online?.text.slice(74, 90)).toBe('news.example.com');
    // Per model: the plain model has none; the history holds no annotations.
    expect(chat.lastTurn['sim/llama@sim-fast']?.citations).toBeUndefined();
    expect(chat.history['sim/llama:online@sim-fast']?.[1]).toEqual({ role: 'assistant', content: online?.text });
    await chat.send('And Osaka?');
    expect(chat.turns['sim/llama:online@sim-fast']?.map((t) => t.citations?.[0]?.url)).toEqual(['https://en.example.org/wiki/kyoto', 'https://en.example.org/wiki/osaka']);
  });

  it.each(['sim-anthropic', 'sim-gemini'])('reads web search citations on %s', async (provider) => {
    const chat = new Chat(`sim/llama@${provider}`);
    await chat.send('Tell me about Kyoto', { webSearch: true });
    const citations = chat.lastTurn?.citations ?? [];
    expect(citations.map((c) => c.url)).toEqual(['https://en.example.org/wiki/kyoto', 'https://news.example.com/kyoto']);
    expect(citations[0]?.title).toBe('kyoto - Example Encyclopedia');
  });

  it('sends the OpenRouter web plugin', () => {
    const request: CanonicalRequest = { model: 'm', messages: [{ role: 'user', content: 'hi' }], params: { webSearch: { maxResults: 3 } }, stream: true };
    const openrouter: Endpoint = { provider: 'openrouter', protocol: 'openai', baseURL: 'http://x', headers: {}, compat: { webPlugin: true } };
    expect(buildOpenAIBody(request, openrouter).plugins).toEqual([{ id: 'web', max_results: 3 }]);
    expect(buildOpenAIBody(request, { ...openrouter, compat: {} }).plugins).toBeUndefined();
  });

  it('citationsFrom ignores unknown and malformed annotations', () => {
    expect(
      citationsFrom([
        { type: 'file_citation', file_citation: { file_id: 'f' } },
        { type: 'url_citation' },
        null,
        'text',
        { type: 'url_citation', url_citation: { url: 'https://a.example', title: 'A', content: 'x', start_index: 1, end_index: 2 } },
        { type: 'url_citation', url: 'https://b.example', title: 'B' },
      ]),
    ).toEqual([
      { url: 'https://a.example', title: 'A', excerpt: 'x', startIndex: 1, endIndex: 2 },
      { url: 'https://b.example', title: 'B' },
    ]);
  });
});

describe.each(PROVIDERS)('reasoning on %s', (provider) => {
  const model = `sim/llama@${provider}`;

  it('puts reasoning text and tokens in the turn metadata, not in the history', async () => {
    const chat = new Chat(model);
    const events: StreamEvent[] = [];
    for await (const e of chat.stream('Explain Raft consensus', { reasoning: { effort: 'low' } })) events.push(e);
    const turn = chat.lastTurn;
    const expected = 'The user asks about Raft, consensus. I should check what matters most, then answer briefly and clearly.';
    expect(turn?.reasoning).toBe(expected);
    expect(events.filter((e) => e.type === 'reasoning-delta').map((e) => (e.type === 'reasoning-delta' ? e.text : '')).join('')).toBe(expected);
    const thought = expected.match(/\w+|[^\w\s]/g)?.length ?? 0;
    const answer = turn?.text.match(/\w+|[^\w\s]/g)?.length ?? 0;
    // Anthropic reports no separate thinking count (neither does the real API); output includes it.
    expect(turn?.usage.reasoningTokens).toBe(provider === 'sim-anthropic' ? undefined : thought);
    expect(turn?.usage.completionTokens).toBe(answer + thought);
    expect(chat.history[1]).toEqual({ role: 'assistant', content: turn?.text });
  });

  it('keeps reasoning per step in a tool loop (Anthropic: signed thinking replayed)', async () => {
    const chat = new Chat(model);
    const weather = tool({ name: 'get_weather', description: 'Current weather for a city', parameters: z.object({ city: z.string() }), execute: () => 'sunny' });
    const reply = await chat.send('Weather in Paris?', { tools: [weather], reasoning: { maxTokens: 2048 } });
    expect(reply).toBe('The get_weather tool returned sunny.');
    const steps = chat.lastTurn?.steps ?? [];
    expect(steps).toHaveLength(2);
    for (const s of steps) expect(s.reasoning).toMatch(/^The user asks about/);
    expect(JSON.stringify(chat.history)).not.toContain('The user asks about');
  });
});

it('sends reasoning in each provider form', () => {
  const request: CanonicalRequest = { model: 'm', messages: [{ role: 'user', content: 'hi' }], params: { reasoning: { effort: 'high' } }, stream: true };
  const base: Endpoint = { provider: 'x', protocol: 'openai', baseURL: 'http://x', headers: {}, compat: {} };
  expect(buildOpenAIBody(request, { ...base, compat: { reasoningFormat: 'openrouter' } }).reasoning).toEqual({ effort: 'high' });
  expect(buildOpenAIBody(request, { ...base, compat: { reasoningFormat: 'openai' } }).reasoning_effort).toBe('high');
  expect(buildAnthropicBody(request).thinking).toEqual({ type: 'enabled', budget_tokens: 16384 });
  expect(buildAnthropicBody(request).max_tokens).toBe(16384 + 4096);
  expect(buildGeminiBody(request).generationConfig).toEqual({ thinkingConfig: { thinkingBudget: 16384, includeThoughts: true } });
});

describe('switchboard ask --schema', () => {
  const run = (args: string[]) => runCLI(args, { env: { HOME: tmpdir() } });

  it('prints the validated JSON, one line per model with --json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-schema-'));
    const file = join(dir, 'city.json');
    writeFileSync(file, JSON.stringify({ type: 'object', properties: { city: { type: 'string' }, population: { type: 'integer' } }, required: ['city', 'population'] }));
    const one = await run(['ask', '-m', 'sim/llama@sim-anthropic', '--schema', file, 'Describe Lyon']);
    expect(one.stdout).toBe('{"city":"Lyon","population":3}\n');
    const many = await run(['ask', '-m', 'sim/llama@sim-fast', '-m', 'sim/llama@sim-gemini', '--schema', file, '--json', 'Describe Lyon']);
    const lines = many.stdout.trim().split('\n').map((l) => JSON.parse(l) as { model: string; object: unknown });
    expect(lines.map((l) => [l.model, l.object]).sort()).toEqual([
      ['sim/llama@sim-fast', { city: 'Lyon', population: 3 }],
      ['sim/llama@sim-gemini', { city: 'Lyon', population: 3 }],
    ]);
  });
});
