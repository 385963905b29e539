import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog, defaultCatalog, type Pricing } from '../src/catalog/catalog.js';
import { computeCost, costFor, priceFor, resetWarnings, setWarnHandler } from '../src/catalog/cost.js';

let warnings: string[] = [];
beforeEach(() => {
  warnings = [];
  resetWarnings();
  setWarnHandler((m) => warnings.push(m));
});
afterEach(() => {
  setWarnHandler(undefined);
});

describe('computeCost with published prices, canonical usage', () => {
  it('plain: gpt-4o-mini, 1,000 in and 500 out at $0.15 / $0.60 per million', () => {
    const pricing = priceFor('gpt-4o-mini');
    expect(pricing?.input).toBe(0.15);
    expect(pricing?.output).toBe(0.6);
    // 1000 * 0.15e-6 + 500 * 0.6e-6 = 0.00015 + 0.0003
    expect(computeCost({ promptTokens: 1000, completionTokens: 500, totalTokens: 1500 }, pricing)).toBe(0.00045);
  });

  it('OpenAI cached prompt: gpt-4o-mini, 2,000 in of which 1,536 cached at $0.075', () => {
    const pricing = priceFor('openai/gpt-4o-mini', 'openai');
    expect(pricing?.cacheRead).toBe(0.075);
    // 464 * 0.15 + 1536 * 0.075 + 100 * 0.6 = 69.6 + 115.2 + 60 = 244.8 millionths of a dollar
    const usage = { promptTokens: 2000, completionTokens: 100, totalTokens: 2100, cachedTokens: 1536 };
    expect(computeCost(usage, pricing)).toBe(0.0002448);
  });

  it('Anthropic cache write and read: claude sonnet 4 at 3 / 15 / write 3.75 / read 0.30', () => {
    const pricing = priceFor('claude-sonnet-4-20250514', 'anthropic');
    expect(pricing).toMatchObject({ input: 3, output: 15, cacheWrite: 3.75, cacheRead: 0.3 });
    // Anthropic reported input_tokens 100, cache_creation 2,000, cache_read 10,000, output 300;
    // canonical promptTokens = 12,100.
    // 100 * 3 + 2000 * 3.75 + 10000 * 0.3 + 300 * 15 = 300 + 7500 + 3000 + 4500 = 15,300 millionths
    const usage = { promptTokens: 12_100, completionTokens: 300, totalTokens: 12_400, cachedTokens: 10_000, cacheWriteTokens: 2_000 };
    expect(computeCost(usage, pricing)).toBe(0.0153);
  });

  it('reasoning tokens are inside completionTokens and counted once: o3-mini at 1.10 / 4.40', () => {
    const pricing = priceFor('o3-mini', 'openai');
    expect(pricing).toMatchObject({ input: 1.1, output: 4.4 });
    // 500 * 1.1 + 2,000 * 4.4 (1,800 of them reasoning) = 550 + 8,800 = 9,350 millionths
    const usage = { promptTokens: 500, completionTokens: 2000, totalTokens: 2500, reasoningTokens: 1800 };
    expect(computeCost(usage, pricing)).toBe(0.00935);
  });

  it('Gemini thinking tokens, and the long-context tier of gemini-2.5-pro', () => {
    const pricing = priceFor('gemini-2.5-pro', 'google');
    expect(pricing).toMatchObject({ input: 1.25, output: 10 });
    // Gemini reports candidates 200 + thoughts 800: canonical completionTokens 1,000.
    // 10,000 * 1.25 + 1,000 * 10 = 12,500 + 10,000 = 22,500 millionths
    expect(computeCost({ promptTokens: 10_000, completionTokens: 1000, totalTokens: 11_000, reasoningTokens: 800 }, pricing)).toBe(0.0225);
    // Above 200,000 prompt tokens the whole request is at 2.50 / 15:
    // 250,000 * 2.5 + 1,000 * 15 = 625,000 + 15,000 = 640,000 millionths
    expect(computeCost({ promptTokens: 250_000, completionTokens: 1000, totalTokens: 251_000 }, pricing)).toBe(0.64);
  });

  it('a per-request price is added once: perplexity sonar', () => {
    const pricing = priceFor('perplexity/sonar', 'perplexity');
    expect(pricing?.request).toBeGreaterThan(0);
    const p: Pricing = { input: 1, output: 1, request: 0.005 };
    // 1,000 * 1 + 1,000 * 1 = 2,000 millionths + 5,000 millionths per request
    expect(computeCost({ promptTokens: 1000, completionTokens: 1000, totalTokens: 2000 }, p)).toBe(0.007);
    const sonar = pricing as Pricing;
    const expected = (1000 * (sonar.input as number) + 1000 * (sonar.output as number)) / 1e6 + (sonar.request as number);
    expect(computeCost({ promptTokens: 1000, completionTokens: 1000, totalTokens: 2000 }, sonar)).toBeCloseTo(expected, 15);
  });

  it('a separate reasoning price bills reasoning apart from the other output', () => {
    const p: Pricing = { input: 2, output: 8, reasoning: 3 };
    // 100 * 2 + (1,000 - 600) * 8 + 600 * 3 = 200 + 3,200 + 1,800 = 5,200 millionths
    expect(computeCost({ promptTokens: 100, completionTokens: 1000, totalTokens: 1100, reasoningTokens: 600 }, p)).toBe(0.0052);
  });

  it('cached tokens without a cache-read price are billed at the input price', () => {
    const p: Pricing = { input: 0.5, output: 1.5 };
    // (1,000 - 400) * 0.5 + 400 * 0.5 + 0 = 500 millionths
    expect(computeCost({ promptTokens: 1000, completionTokens: 0, totalTokens: 1000, cachedTokens: 400 }, p)).toBe(0.0005);
  });

  it('gives the decimal figure exactly where float multiplication would not', () => {
    const p: Pricing = { input: 0.1, output: 0.3 };
    // 3 * 0.1 / 1e6 in floats is 3.0000000000000004e-7; 3 tokens at $0.10/M is exactly 0.0000003
    expect(computeCost({ promptTokens: 3, completionTokens: 0, totalTokens: 3 }, p)).toBe(0.0000003);
    // 10,000 in and out at 0.1 + 0.3: 1,000 + 3,000 millionths
    expect(computeCost({ promptTokens: 10_000, completionTokens: 10_000, totalTokens: 20_000 }, p)).toBe(0.004);
  });

  it('simulator prices per provider come from its profiles', () => {
    // sim-cheap: 0.1 / 0.3; 1,000 in and 1,000 out = 100 + 300 millionths
    expect(costFor({ promptTokens: 1000, completionTokens: 1000, totalTokens: 2000 }, 'sim/llama', 'sim-cheap')).toBe(0.0004);
    // sim-fast: 0.6 / 2.4 = 600 + 2,400 millionths
    expect(costFor({ promptTokens: 1000, completionTokens: 1000, totalTokens: 2000 }, 'sim/llama', 'sim-fast')).toBe(0.003);
  });

  it('unknown price: null and exactly one warning per model', () => {
    const usage = { promptTokens: 10, completionTokens: 10, totalTokens: 20 };
    expect(costFor(usage, 'nobody/no-such-model')).toBeNull();
    expect(costFor(usage, 'nobody/no-such-model')).toBeNull();
    expect(computeCost(usage, { input: 1 }, 'half/priced')).toBeNull();
    expect(computeCost(usage, { input: 1 }, 'half/priced')).toBeNull();
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('nobody/no-such-model');
    expect(warnings[1]).toContain('no output price known for half/priced');
  });

  it('a provider that does not serve the model has no price for it', () => {
    expect(priceFor('openai/gpt-4o-mini', 'groq')).toBeUndefined();
  });
});

describe('catalog lookups', () => {
  it('finds models by id, provider-native id and dated alias', () => {
    const catalog = defaultCatalog();
    expect(catalog.get('openai/gpt-4o-mini')?.id).toBe('openai/gpt-4o-mini');
    expect(catalog.get('gpt-4o-mini')?.id).toBe('openai/gpt-4o-mini');
    expect(catalog.get('gpt-4o-mini-2024-07-18')?.id).toBe('openai/gpt-4o-mini');
    expect(catalog.get('claude-sonnet-4-20250514')?.id).toBe('anthropic/claude-sonnet-4');
    expect(catalog.atProvider('groq', 'llama-3.3-70b-versatile')?.model.id).toBe('meta-llama/llama-3.3-70b-instruct');
  });

  it('a provider price that differs from the reference is kept per provider', () => {
    const catalog = new Catalog({
      source: {},
      generatedAt: '2026-01-01T00:00:00Z',
      models: [
        {
          id: 'v/m',
          name: 'M',
          pricing: { input: 1, output: 2 },
          providers: [
            { provider: 'a', model: 'm' },
            { provider: 'b', model: 'm-b', pricing: { input: 3, output: 4 } },
          ],
        },
      ],
    });
    expect(catalog.priceFor('v/m', 'a')).toEqual({ input: 1, output: 2 });
    expect(catalog.priceFor('m-b', 'b')).toEqual({ input: 3, output: 4 });
    expect(catalog.priceFor('v/m')).toEqual({ input: 1, output: 2 });
  });
});
