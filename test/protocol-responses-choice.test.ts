/**
 * Which OpenAI API a provider speaks: Chat Completions by default, the Responses API for the
 * models the catalog lists as Responses-only (built-in `openai`), for every model
 * (`compat.responsesAPI: 'always'`) or by protocol name. Then whole turns through it against
 * the simulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Call, Chat, ProviderRegistry, tool } from '../src/index.js';
import { needsResponsesAPI } from '../src/catalog/responses-only.js';
import { endpointFor, resolveModel } from '../src/providers/resolve.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';

describe('choosing the Responses API', () => {
  const env = { OPENAI_API_KEY: 'sk-test-aaaaaaaaaaaa' };
  const ctx = { registry: new ProviderRegistry(), env };
  const protocolOf = async (model: string) => (await endpointFor(resolveModel(model, ctx), ctx)).protocol;

  it('sends Responses-only models to /v1/responses and the rest to Chat Completions', async () => {
    expect(await protocolOf('o3-pro@openai')).toBe('openai-responses');
    expect(await protocolOf('openai/gpt-5-codex')).toBe('openai-responses');
    expect(await protocolOf('gpt-4o-mini@openai')).toBe('openai');
    expect(needsResponsesAPI('o3')).toBe(false);
    expect(needsResponsesAPI('o1-pro-2025-03-19')).toBe(true);
  });
});

let sim: RunningSimulator;
beforeAll(async () => {
  sim = await startSimulator();
});
afterAll(() => sim.close());

describe('switchboard over the Responses API against the simulator', () => {
  const registry = () =>
    new ProviderRegistry([
      { name: 'sim-responses', protocol: 'openai', baseURL: `${sim.url}/sim-fast/v1`, keyEnv: [], keyOptional: true, compat: { responsesAPI: 'always' } },
      { name: 'sim-responses-named', protocol: 'openai-responses', baseURL: `${sim.url}/sim-fast/v1`, keyEnv: [], keyOptional: true },
    ]);

  it.each(['sim-responses', 'sim-responses-named'])('streams a reply with usage through %s', async (provider) => {
    const call = new Call(`llama@${provider}`, { registry: registry(), env: {} });
    let text = '';
    let usage: { completionTokens: number } | undefined;
    for await (const event of call.stream('Write 30 tokens about trains.')) {
      if (event.type === 'text-delta') text += event.text;
      if (event.type === 'finish') usage = event.result.usage;
    }
    expect(usage?.completionTokens).toBe(30);
    expect(text.length).toBeGreaterThan(0);
  });

  it('keeps a conversation and runs tools', async () => {
    const chat = new Chat('llama@sim-responses', { registry: registry(), env: {} });
    await chat.send('My name is Zoë Kravitz.');
    expect((await chat.send('What is my name?')).startsWith('Your name is Zoë Kravitz.')).toBe(true);
    const cities: string[] = [];
    const weather = tool({
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: z.object({ city: z.string() }),
      execute: ({ city }) => {
        cities.push(city);
        return { city, temperature: 17 };
      },
    });
    const withTools = new Chat('llama@sim-responses', { registry: registry(), env: {} });
    const reply = await withTools.send('What is the weather in Braga?', { tools: [weather] });
    expect(cities).toHaveLength(1);
    expect(reply).toContain('"temperature":17');
  });
});
