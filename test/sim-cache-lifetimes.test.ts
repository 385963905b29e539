/**
 * The simulator's Anthropic cache writes split by lifetime, as Anthropic reports them
 * (`usage.cache_creation.ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens`), and priced
 * at each lifetime's rate: 1.25x the input price for 5 minutes, 2x for an hour.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIM_PROVIDERS } from '../src/sim/profiles.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { priceTurn } from '../src/sim/turn.js';

let sim: RunningSimulator;
let client: Anthropic;
beforeAll(async () => {
  sim = await startSimulator({ timeScale: 0 });
  client = new Anthropic({ baseURL: `${sim.url}/sim-anthropic`, apiKey: 'sk-ant-local', maxRetries: 0 });
});
afterAll(() => sim.close());

describe('Anthropic cache writes by lifetime', () => {
  it('reports the 1-hour and 5-minute writes apart, and the sum as cache_creation_input_tokens', async () => {
    const system = 'You are a careful assistant who answers every question about rivers. '.repeat(120);
    const reply = await client.messages.create({
      model: 'llama',
      max_tokens: 50,
      system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Which river is the longest?', cache_control: { type: 'ephemeral' } }] }],
    });
    const usage = reply.usage;
    const split = usage.cache_creation;
    expect(split?.ephemeral_1h_input_tokens).toBeGreaterThan(1024);
    expect(split?.ephemeral_5m_input_tokens).toBeGreaterThan(0);
    expect(split?.ephemeral_5m_input_tokens).toBeLessThan(30);
    expect((split?.ephemeral_1h_input_tokens ?? 0) + (split?.ephemeral_5m_input_tokens ?? 0)).toBe(usage.cache_creation_input_tokens);
    // The same request again reads it all, writes nothing.
    const again = await client.messages.create({
      model: 'llama',
      max_tokens: 50,
      system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Which river is the longest?', cache_control: { type: 'ephemeral' } }] }],
    });
    expect(again.usage.cache_read_input_tokens).toBe(usage.cache_creation_input_tokens);
    expect(again.usage.cache_creation).toEqual({ ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 });
  });

  it('prices 1-hour writes at twice the input price and 5-minute writes at the write price', () => {
    const profile = SIM_PROVIDERS['sim-anthropic']!; // input $1, cache read $0.10, write $1.25, output $5 per million
    // 3,000 prompt tokens: 2,000 written for an hour, 30 for 5 minutes, 970 plain; 10 out.
    // 970 x 1 + 30 x 1.25 + 2,000 x 2 + 10 x 5 = 5,057.5 millionths of a dollar.
    expect(priceTurn({ promptTokens: 3000, cachedTokens: 0, cacheWriteTokens: 2030, cacheWrite1hTokens: 2000, completionTokens: 10 }, profile)).toBe(0.0050575);
    // All 2,030 for 5 minutes: 970 + 2,030 x 1.25 + 50 = 3,557.5.
    expect(priceTurn({ promptTokens: 3000, cachedTokens: 0, cacheWriteTokens: 2030, completionTokens: 10 }, profile)).toBe(0.0035575);
    expect(priceTurn({ promptTokens: 3000, cachedTokens: 0, cacheWriteTokens: 2030, cacheWrite1hTokens: 2000, completionTokens: 10 }, { ...profile, cacheWrite1hPrice: 3 })).toBe(0.0070575); // 2,000 x 3 instead of x 2
  });
});
