/**
 * End to end, as users meet switchboard: the simulator through every protocol, a
 * conversation that changes model and protocol halfway, and the CLI pointed at local
 * stand-ins for OpenAI, Anthropic and Gemini through their *_BASE_URL variables.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Chat } from '../src/index.js';
import { SIM_PROVIDERS } from '../src/sim/profiles.js';
import { runCLI } from './helpers/cli.js';
import { ANTHROPIC_STREAM, GEMINI_STREAM } from './helpers/fixtures.js';
import { sendSSE, sse, startStandIn, type StandIn } from './helpers/stand-in.js';

function cli(args: string[], env: Record<string, string>) {
  return runCLI(args, { env: { HOME: '/nonexistent', ...env } });
}

describe('the simulator through Chat', () => {
  it('two models: histories and usage keyed by model; resets', async () => {
    const chat = new Chat(['sim/llama', 'sim/mini'], { system: 'You are the best assistant in the world.' });
    const replies = await chat.send('Who created you?');
    expect(Object.keys(replies)).toEqual(['sim/llama', 'sim/mini']);
    expect(replies['sim/llama']).toMatch(/simulator/);
    for (const model of ['sim/llama', 'sim/mini']) {
      const history = chat.history[model]!;
      expect(history.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
      expect(history[2]!.content).toBe(replies[model]);
      const usage = chat.usage[model]!;
      expect(usage.promptTokens).toBeGreaterThan(0);
      expect(usage.completionTokens).toBeGreaterThan(0);
      expect(usage.totalTokens).toBe(usage.promptTokens + usage.completionTokens);
      expect(usage.cost).toBeGreaterThan(0);
    }
    // llama replies at greater length than mini.
    expect(chat.usage['sim/llama']!.completionTokens).not.toBe(chat.usage['sim/mini']!.completionTokens);
    chat.resetHistory();
    expect(chat.history['sim/mini']).toEqual([{ role: 'system', content: 'You are the best assistant in the world.' }]);
    chat.resetUsage();
    expect(chat.usage['sim/llama']).toEqual({ promptTokens: 0, completionTokens: 0, totalTokens: 0, cost: 0 });
  });

  it('a conversation switches provider and protocol halfway and keeps its memory', async () => {
    const chat = new Chat('sim/llama@sim-fast');
    await chat.send('Hi, nice to meet you. My name is Foo Barrymore, and I am 25 years old.');
    chat.model = 'sim/llama@sim-anthropic';
    const age = await chat.send('How old am I?');
    expect(age).toMatch(/25/);
    chat.model = 'sim/llama@sim-gemini';
    const name = await chat.send('What is my name?');
    expect(name).toMatch(/Foo/);
    expect(chat.history).toHaveLength(6);
    expect(chat.turns.map((t) => t.provider)).toEqual(['sim-fast', 'sim-anthropic', 'sim-gemini']);
    // Every turn was priced: the OpenAI-protocol sim reports its cost; the Anthropic and Gemini
    // ones report none, so the catalog's prices for those providers apply: tokens x $/M.
    for (const t of chat.turns) expect(t.usage.cost).toBeGreaterThan(0);
    for (const t of chat.turns.slice(1)) {
      const price = SIM_PROVIDERS[t.provider]!;
      expect(t.usage.cost).toBeCloseTo((t.usage.promptTokens * price.inputPrice + t.usage.completionTokens * price.outputPrice) / 1e6, 15);
    }
    expect(chat.usage.cost).toBeCloseTo(chat.turns.reduce((s, t) => s + (t.usage.cost ?? 0), 0), 12);
  });
});

describe('the CLI against local stand-ins for each provider', () => {
  let openai: StandIn;
  let anthropic: StandIn;
  let gemini: StandIn;
  beforeAll(async () => {
    openai = await startStandIn(async (_req, res) => {
      const chunk = (delta: object, finish: string | null = null) => ({ id: 'x', object: 'chat.completion.chunk', model: 'gpt-4o-mini-2024-07-18', choices: [{ index: 0, delta, finish_reason: finish }] });
      await sendSSE(
        res,
        sse([
          { data: chunk({ role: 'assistant', content: 'Hello' }) },
          { data: chunk({ content: ' from OpenAI' }) },
          { data: chunk({}, 'stop') },
          { data: { id: 'x', model: 'gpt-4o-mini-2024-07-18', choices: [], usage: { prompt_tokens: 1000, completion_tokens: 500, total_tokens: 1500, prompt_tokens_details: { cached_tokens: 400 } } } },
          { data: '[DONE]' },
        ]),
      );
    });
    anthropic = await startStandIn((_req, res) => sendSSE(res, ANTHROPIC_STREAM, [7, 300, 301, 900]));
    gemini = await startStandIn((_req, res) => sendSSE(res, GEMINI_STREAM, [50, 51, 400]));
  });
  afterAll(async () => {
    await Promise.all([openai.close(), anthropic.close(), gemini.close()]);
  });

  it('OPENAI_BASE_URL: text, usage with cached tokens, cost from published prices', async () => {
    const res = await cli(['ask', '-m', 'openai/gpt-4o-mini', '--json', 'hi'], { OPENAI_API_KEY: 'sk-proj-e2etestkey0001', OPENAI_BASE_URL: `${openai.url}/v1` });
    expect(res.stderr).toBe('');
    const line = JSON.parse(res.stdout) as Record<string, any>;
    expect(line.provider).toBe('openai');
    expect(line.text).toBe('Hello from OpenAI');
    expect(line.usage).toEqual({ promptTokens: 1000, completionTokens: 500, totalTokens: 1500, cachedTokens: 400 });
    // gpt-4o-mini: $0.15/M input, $0.075/M cached input, $0.60/M output.
    // 600 x 0.15 + 400 x 0.075 + 500 x 0.60 = 90 + 30 + 300 = 420 millionths of a dollar.
    expect(line.cost).toBeCloseTo(0.00042, 12);
    expect(openai.requests[0]?.url).toBe('/v1/chat/completions');
    expect(openai.requests[0]?.headers.authorization).toBe('Bearer sk-proj-e2etestkey0001');
  });

  it('ANTHROPIC_BASE_URL: cache read and write tokens counted into the prompt and priced', async () => {
    const res = await cli(['ask', '-m', 'anthropic/claude-sonnet-4.5', '--json', 'hi'], { ANTHROPIC_API_KEY: 'sk-ant-e2etestkey0001', ANTHROPIC_BASE_URL: anthropic.url });
    expect(res.stderr).toBe('');
    const line = JSON.parse(res.stdout) as Record<string, any>;
    expect(line.provider).toBe('anthropic');
    expect(line.text).toBe('Grüße aus 東京 🗼');
    // Anthropic reports 25 uncached input tokens beside 1,000 written to and 3,000 read from the cache.
    expect(line.usage).toEqual({ promptTokens: 4025, completionTokens: 89, totalTokens: 4114, cachedTokens: 3000, cacheWriteTokens: 1000 });
    // Claude Sonnet 4.5: $3/M input, $3.75/M cache write, $0.30/M cache read, $15/M output.
    // 25 x 3 + 1000 x 3.75 + 3000 x 0.30 + 89 x 15 = 75 + 3750 + 900 + 1335 = 6060 millionths.
    expect(line.cost).toBeCloseTo(0.00606, 12);
    const sent = anthropic.requests[0]!;
    expect(sent.url).toBe('/v1/messages');
    expect(sent.headers['x-api-key']).toBe('sk-ant-e2etestkey0001');
    expect(JSON.parse(sent.body).model).toBe('claude-sonnet-4-5');
  });

  it('GEMINI_BASE_URL: thoughts billed as output, cached tokens at the cache price', async () => {
    const res = await cli(['ask', '-m', 'google/gemini-2.5-flash', '--json', 'hi'], { GEMINI_API_KEY: 'AIzaSyE2eTestKey0000000000000000', GEMINI_BASE_URL: gemini.url });
    expect(res.stderr).toBe('');
    const line = JSON.parse(res.stdout) as Record<string, any>;
    expect(line.provider).toBe('google');
    expect(line.text).toBe('Ça va? Très bien 👍');
    expect(line.usage).toEqual({ promptTokens: 120, completionTokens: 80, totalTokens: 200, cachedTokens: 100, reasoningTokens: 50 });
    // Gemini 2.5 Flash: $0.30/M input, $0.03/M cached input, $2.50/M output (thinking included).
    // 20 x 0.30 + 100 x 0.03 + 80 x 2.50 = 6 + 3 + 200 = 209 millionths.
    expect(line.cost).toBeCloseTo(0.000209, 12);
    const sent = gemini.requests[0]!;
    expect(sent.url).toBe('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    expect(sent.url).not.toContain('key=');
    expect(sent.headers['x-goog-api-key']).toBe('AIzaSyE2eTestKey0000000000000000');
  });
});
