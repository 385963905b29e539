/**
 * The provider registry: for each provider its wire protocol, base URL, key variables,
 * extra headers and protocol quirks. Differences between vendors are data here, never
 * branches in protocol code.
 */
import { UnknownProviderError } from '../errors.js';
import { didYouMean } from '../suggest.js';
import type { ProtocolCompat, ProtocolName } from '../protocols/protocol.js';
import type { CloudName, CloudSettings } from './clouds/index.js';

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
  /** A key is sent when one of `keyEnv` is set, but none is required (local servers started with a key). */
  keyOptional?: boolean;
  /**
   * OpenRouter's name for this host (`provider.order` slugs), when OpenRouter routes to it:
   * `model@groq` without a Groq key but with an OpenRouter key goes through OpenRouter pinned to it.
   */
  openrouterSlug?: string;
  /**
   * An enterprise cloud (Azure OpenAI, Bedrock, Vertex AI): its address and credentials come
   * from the cloud's own variables (see providers/clouds/), not `baseURL` and `keyEnv`.
   */
  cloud?: CloudName;
  /** The cloud's settings from the config file (Azure deployments, Vertex project and location). */
  cloudSettings?: CloudSettings;
}

/** OpenRouter's attribution headers: they name the app in OpenRouter's rankings. */
export const OPENROUTER_HEADERS = {
  'HTTP-Referer': 'https://github.com/switchboard-llm/switchboard',
  'X-Title': 'switchboard',
};

/** A keyless server on the user's machine speaking the OpenAI protocol. */
function localServer(name: string, baseURL: string): ProviderConfig {
  const keyVar = `${name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_API_KEY`;
  return { name, protocol: 'openai', baseURL, keyEnv: [keyVar], keyOptional: true, local: true, compat: { reasoningFormat: 'none' } };
}

export const BUILTIN_PROVIDERS: ProviderConfig[] = [
  {
    name: 'openrouter',
    protocol: 'openai',
    baseURL: 'https://openrouter.ai/api/v1',
    keyEnv: ['OPENROUTER_API_KEY'],
    headers: OPENROUTER_HEADERS,
    compat: { usageAccounting: true, reasoningFormat: 'openrouter', webPlugin: true, cacheMarkers: true },
  },
  {
    name: 'openai',
    protocol: 'openai',
    baseURL: 'https://api.openai.com/v1',
    keyEnv: ['OPENAI_API_KEY'],
    compat: { maxTokensField: 'max_completion_tokens', reasoningFormat: 'openai', responsesAPI: 'when-required' },
    openrouterSlug: 'openai',
  },
  { name: 'anthropic', protocol: 'anthropic', baseURL: 'https://api.anthropic.com', keyEnv: ['ANTHROPIC_API_KEY'], openrouterSlug: 'anthropic' },
  {
    name: 'google',
    protocol: 'gemini',
    baseURL: 'https://generativelanguage.googleapis.com',
    keyEnv: ['GEMINI_API_KEY', 'GOOGLE_API_KEY'],
    baseURLEnv: ['GEMINI_BASE_URL', 'GOOGLE_BASE_URL'],
    openrouterSlug: 'google-ai-studio',
  },
  { name: 'groq', protocol: 'openai', baseURL: 'https://api.groq.com/openai/v1', keyEnv: ['GROQ_API_KEY'], compat: { reasoningFormat: 'openai' }, openrouterSlug: 'groq' },
  { name: 'together', protocol: 'openai', baseURL: 'https://api.together.xyz/v1', keyEnv: ['TOGETHER_API_KEY'], compat: { reasoningFormat: 'openai' }, openrouterSlug: 'together' },
  { name: 'fireworks', protocol: 'openai', baseURL: 'https://api.fireworks.ai/inference/v1', keyEnv: ['FIREWORKS_API_KEY'], compat: { reasoningFormat: 'openai' }, openrouterSlug: 'fireworks' },
  { name: 'deepseek', protocol: 'openai', baseURL: 'https://api.deepseek.com', keyEnv: ['DEEPSEEK_API_KEY'], compat: { reasoningFormat: 'none' }, openrouterSlug: 'deepseek' },
  // Mistral puts usage in the last chunk on its own and does not document stream_options.
  { name: 'mistral', protocol: 'openai', baseURL: 'https://api.mistral.ai/v1', keyEnv: ['MISTRAL_API_KEY'], compat: { streamUsage: false, reasoningFormat: 'none' }, openrouterSlug: 'mistral' },
  // xAI's completion_tokens leaves out the reasoning tokens it reports beside them.
  { name: 'xai', protocol: 'openai', baseURL: 'https://api.x.ai/v1', keyEnv: ['XAI_API_KEY'], compat: { reasoningFormat: 'openai', completionExcludesReasoning: true }, openrouterSlug: 'xai' },
  { name: 'cerebras', protocol: 'openai', baseURL: 'https://api.cerebras.ai/v1', keyEnv: ['CEREBRAS_API_KEY'], compat: { reasoningFormat: 'openai' }, openrouterSlug: 'cerebras' },
  { name: 'deepinfra', protocol: 'openai', baseURL: 'https://api.deepinfra.com/v1/openai', keyEnv: ['DEEPINFRA_API_KEY', 'DEEPINFRA_TOKEN'], compat: { reasoningFormat: 'openai' }, openrouterSlug: 'deepinfra' },
  // The clouds: addresses and credentials from their own variables (README, "Providers").
  { name: 'azure', protocol: 'openai', baseURL: '', keyEnv: [], cloud: 'azure', compat: { maxTokensField: 'max_completion_tokens', reasoningFormat: 'openai' } },
  { name: 'bedrock', protocol: 'bedrock', baseURL: '', keyEnv: [], cloud: 'bedrock' },
  { name: 'vertex', protocol: 'gemini', baseURL: '', keyEnv: [], cloud: 'vertex' },
  localServer('ollama', 'http://localhost:11434/v1'),
  localServer('lmstudio', 'http://localhost:1234/v1'),
  localServer('vllm', 'http://localhost:8000/v1'),
  localServer('llama.cpp', 'http://localhost:8080/v1'),
  { name: 'sim-fast', protocol: 'openai', baseURL: '', keyEnv: [], simulated: true, compat: { reasoningFormat: 'openrouter', webPlugin: true } },
  { name: 'sim-cheap', protocol: 'openai', baseURL: '', keyEnv: [], simulated: true, compat: { reasoningFormat: 'openrouter', webPlugin: true } },
  { name: 'sim-flaky', protocol: 'openai', baseURL: '', keyEnv: [], simulated: true, compat: { reasoningFormat: 'openrouter', webPlugin: true } },
  { name: 'sim-anthropic', protocol: 'anthropic', baseURL: '', keyEnv: [], simulated: true },
  { name: 'sim-gemini', protocol: 'gemini', baseURL: '', keyEnv: [], simulated: true },
  // The clouds as the simulator serves them: their own paths and auth headers (sim/clouds.ts).
  { name: 'sim-azure', protocol: 'openai', baseURL: '', keyEnv: [], simulated: true, cloud: 'azure', compat: { maxTokensField: 'max_completion_tokens', reasoningFormat: 'openai' } },
  { name: 'sim-bedrock', protocol: 'bedrock', baseURL: '', keyEnv: [], simulated: true, cloud: 'bedrock' },
  { name: 'sim-vertex', protocol: 'gemini', baseURL: '', keyEnv: [], simulated: true, cloud: 'vertex' },
];

/** `OPENROUTER_BASE_URL` for `openrouter`, `LLAMA_CPP_BASE_URL` for `llama.cpp`. */
export function defaultBaseURLEnv(name: string): string {
  return `${name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_BASE_URL`;
}

/** One deployment of a model group: a provider and its id for the model. */
export interface GroupMember {
  provider: string;
  /** The provider's own id for the model (default: the group's name). */
  providerModel: string;
  /** US dollars per million input and output tokens, when known (0 on a local server). */
  inputPrice?: number | undefined;
  outputPrice?: number | undefined;
}

export class ProviderRegistry {
  private readonly providers = new Map<string, ProviderConfig>();
  private readonly groups = new Map<string, GroupMember[]>();

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
    if (!config) throw new UnknownProviderError(name, this.names(), { suggestion: didYouMean(name, this.names()) });
    return config;
  }

  names(): string[] {
    return [...this.providers.keys()];
  }

  all(): ProviderConfig[] {
    return [...this.providers.values()];
  }

  /**
   * Name a model group: one model at several deployments (two local servers, a model at two
   * hosts). Modes and constraints on the group's name choose among the members.
   */
  registerGroup(model: string, members: GroupMember[]): this {
    this.groups.set(model, members.map((m) => ({ ...m })));
    return this;
  }

  /** Every model group, with its members. */
  allGroups(): [string, GroupMember[]][] {
    return [...this.groups];
  }

  /** The members of a model group, or undefined when `model` names none. */
  group(model: string): GroupMember[] | undefined {
    return this.groups.get(model);
  }
}

export const defaultRegistry = new ProviderRegistry();
