/**
 * The provider registry: for each provider its wire protocol, base URL, key variables,
 * extra headers and protocol quirks. Differences between vendors are data here, never
 * branches in protocol code.
 */
import { UnknownProviderError } from '../errors.js';
import type { ProtocolCompat, ProtocolName } from '../protocols/protocol.js';

export interface ProviderConfig {
  name: string;
  protocol: ProtocolName;
  /** Base URL; for the OpenAI protocol it includes the version path (`.../v1`). */
  baseURL: string;
  /** Environment variables that may hold the key, first set one wins. Empty for keyless servers. */
  keyEnv: string[];
  /** Environment variables that override the base URL (default `<NAME>_BASE_URL`). */
  baseURLEnv?: string[];
  headers?: Record<string, string>;
  compat?: ProtocolCompat;
  /** A server on the user's machine that needs no key (ollama, lmstudio, ...). */
  local?: boolean;
  /** Served by the built-in simulator; its base URL is filled in when the simulator starts. */
  simulated?: boolean;
}

/** OpenRouter's attribution headers: they name the app in OpenRouter's rankings. */
export const OPENROUTER_HEADERS = {
  'HTTP-Referer': 'https://github.com/switchboard-llm/switchboard',
  'X-Title': 'switchboard',
};

export const BUILTIN_PROVIDERS: ProviderConfig[] = [
  {
    name: 'openrouter',
    protocol: 'openai',
    baseURL: 'https://openrouter.ai/api/v1',
    keyEnv: ['OPENROUTER_API_KEY'],
    headers: OPENROUTER_HEADERS,
    compat: { usageAccounting: true, reasoningFormat: 'openrouter' },
  },
  { name: 'sim-fast', protocol: 'openai', baseURL: '', keyEnv: [], simulated: true, compat: { reasoningFormat: 'openrouter' } },
  { name: 'sim-cheap', protocol: 'openai', baseURL: '', keyEnv: [], simulated: true, compat: { reasoningFormat: 'openrouter' } },
  { name: 'sim-flaky', protocol: 'openai', baseURL: '', keyEnv: [], simulated: true, compat: { reasoningFormat: 'openrouter' } },
  { name: 'sim-anthropic', protocol: 'anthropic', baseURL: '', keyEnv: [], simulated: true },
  { name: 'sim-gemini', protocol: 'gemini', baseURL: '', keyEnv: [], simulated: true },
];

/** `OPENROUTER_BASE_URL` for `openrouter`, `LLAMA_CPP_BASE_URL` for `llama.cpp`. */
export function defaultBaseURLEnv(name: string): string {
  return `${name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_BASE_URL`;
}

export class ProviderRegistry {
  private readonly providers = new Map<string, ProviderConfig>();

  constructor(configs: ProviderConfig[] = BUILTIN_PROVIDERS) {
    for (const config of configs) this.providers.set(config.name, config);
  }

  /** Add or replace a provider (a custom OpenAI-compatible host, say). */
  register(config: ProviderConfig): this {
    this.providers.set(config.name, config);
    return this;
  }

  has(name: string): boolean {
    return this.providers.has(name);
  }

  get(name: string): ProviderConfig {
    const config = this.providers.get(name);
    if (!config) throw new UnknownProviderError(name, this.names());
    return config;
  }

  names(): string[] {
    return [...this.providers.keys()];
  }

  all(): ProviderConfig[] {
    return [...this.providers.values()];
  }
}

export const defaultRegistry = new ProviderRegistry();
