/**
 * The simulator's models and providers: each provider with its own time to first token,
 * output speed and price, so routing and cost have something real to work with.
 */

import type { SimCloud } from './clouds.js';

export interface SimProviderProfile {
  /** Wire protocol this simulated provider speaks. */
  protocol: 'openai' | 'anthropic' | 'gemini' | 'bedrock';
  /** A simulated cloud: addressed and authenticated as that cloud is (sim/clouds.ts). */
  cloud?: SimCloud;
  /** Median time to first token, milliseconds (before time scaling). */
  ttftMs: number;
  /** Output tokens per second. */
  tokensPerSecond: number;
  /** US dollars per million input and output tokens. */
  inputPrice: number;
  outputPrice: number;
  /**
   * Prompt caching (sim/prompt-cache.ts): US dollars per million input tokens read from the
   * cache, and (Anthropic only, which bills writes) written to it. The protocol picks the rules:
   * Anthropic caches at `cache_control` breakpoints, OpenAI and Gemini long prefixes by themselves.
   */
  cacheReadPrice: number;
  cacheWritePrice?: number;
  /** Writes under a 1-hour breakpoint (default twice the input price, Anthropic's rate). */
  cacheWrite1hPrice?: number;
  /** Share of requests that fail (500, 429 with Retry-After, or a stream cut midway). */
  failRate?: number;
}

export interface SimModelProfile {
  /** Providers serving this model. */
  providers: string[];
  contextLength: number;
  /** Typical reply length in words. */
  replyWords: number;
}

export const SIM_PROVIDERS: Record<string, SimProviderProfile> = {
  'sim-fast': { protocol: 'openai', ttftMs: 120, tokensPerSecond: 220, inputPrice: 0.6, outputPrice: 2.4, cacheReadPrice: 0.3 },
  'sim-cheap': { protocol: 'openai', ttftMs: 600, tokensPerSecond: 45, inputPrice: 0.1, outputPrice: 0.3, cacheReadPrice: 0.05 },
  'sim-flaky': { protocol: 'openai', ttftMs: 250, tokensPerSecond: 120, inputPrice: 0.3, outputPrice: 1.2, cacheReadPrice: 0.15, failRate: 0.3 },
  'sim-anthropic': { protocol: 'anthropic', ttftMs: 400, tokensPerSecond: 80, inputPrice: 1, outputPrice: 5, cacheReadPrice: 0.1, cacheWritePrice: 1.25 },
  'sim-gemini': { protocol: 'gemini', ttftMs: 300, tokensPerSecond: 160, inputPrice: 0.3, outputPrice: 2.5, cacheReadPrice: 0.075 },
  'sim-azure': { protocol: 'openai', cloud: 'azure', ttftMs: 200, tokensPerSecond: 140, inputPrice: 0.5, outputPrice: 2, cacheReadPrice: 0.25 },
  'sim-bedrock': { protocol: 'bedrock', cloud: 'bedrock', ttftMs: 350, tokensPerSecond: 100, inputPrice: 0.8, outputPrice: 3.2, cacheReadPrice: 0.08 },
  'sim-vertex': { protocol: 'gemini', cloud: 'vertex', ttftMs: 250, tokensPerSecond: 150, inputPrice: 0.35, outputPrice: 2.6, cacheReadPrice: 0.0875 },
};

export const SIM_MODELS: Record<string, SimModelProfile> = {
  llama: { providers: ['sim-fast', 'sim-cheap', 'sim-flaky', 'sim-anthropic', 'sim-gemini', 'sim-azure', 'sim-bedrock', 'sim-vertex'], contextLength: 131072, replyWords: 60 },
  mini: { providers: ['sim-fast', 'sim-cheap', 'sim-gemini'], contextLength: 32768, replyWords: 30 },
};

export const SIM_DEFAULT_PROVIDER = 'sim-fast';
