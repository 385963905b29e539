import { describe, expect, it } from 'vitest';
import { MissingKeyError, ModelStringError, UnknownProviderError } from '../src/errors.js';
import { ProviderRegistry } from '../src/providers/registry.js';
import { endpointFor, resolveModel, type Env } from '../src/providers/resolve.js';

const OR = { OPENROUTER_API_KEY: 'sk-or-v1-aaaaaaaaaaaa' };
const ANT = { ANTHROPIC_API_KEY: 'sk-ant-bbbbbbbbbbbb' };

function resolve(input: string, env: Env = {}) {
  return resolveModel(input, { registry: new ProviderRegistry(), env });
}

describe('vendor/model (OpenRouter slugs)', () => {
  it('goes through OpenRouter when the user has an OpenRouter key', () => {
    expect(resolve('anthropic/claude-sonnet-4.5', { ...OR, ...ANT })).toEqual({ model: 'anthropic/claude-sonnet-4.5', provider: 'openrouter', providerModel: 'anthropic/claude-sonnet-4.5' });
  });
  it("goes direct with only the maker's key, in the maker's spelling", () => {
    expect(resolve('anthropic/claude-sonnet-4.5', ANT)).toEqual({ model: 'anthropic/claude-sonnet-4.5', provider: 'anthropic', providerModel: 'claude-sonnet-4-5' });
    expect(resolve('openai/gpt-4o-mini', { OPENAI_API_KEY: 'sk-cccccccccccc' })).toMatchObject({ provider: 'openai', providerModel: 'gpt-4o-mini' });
    expect(resolve('google/gemini-2.5-flash', { GOOGLE_API_KEY: 'AIzaxxxxxxxxxxxxxxxxxxxxxx' })).toMatchObject({ provider: 'google', providerModel: 'gemini-2.5-flash' });
    expect(resolve('mistralai/mistral-large-latest', { MISTRAL_API_KEY: 'm-key-123456' })).toMatchObject({ provider: 'mistral', providerModel: 'mistral-large-latest' });
    expect(resolve('x-ai/grok-4', { XAI_API_KEY: 'xai-123456789' })).toMatchObject({ provider: 'xai', providerModel: 'grok-4' });
  });
  it('goes through OpenRouter for vendors without a direct provider, and with no keys at all', () => {
    expect(resolve('meta-llama/llama-3.3-70b-instruct', ANT)).toMatchObject({ provider: 'openrouter', providerModel: 'meta-llama/llama-3.3-70b-instruct' });
    expect(resolve('anthropic/claude-sonnet-4.5')).toMatchObject({ provider: 'openrouter' });
    expect(resolve('openrouter/auto', OR)).toMatchObject({ provider: 'openrouter', providerModel: 'openrouter/auto' });
  });
  it('sends provider/model straight to a provider of ours, local servers included', () => {
    expect(resolve('ollama/llama3.2')).toEqual({ model: 'ollama/llama3.2', provider: 'ollama', providerModel: 'llama3.2' });
    expect(resolve('llama.cpp/qwen3-8b')).toMatchObject({ provider: 'llama.cpp', providerModel: 'qwen3-8b' });
    expect(resolve('groq/llama-3.3-70b-versatile', OR)).toMatchObject({ provider: 'groq', providerModel: 'llama-3.3-70b-versatile' });
  });
});

describe('model@provider', () => {
  it('pins a provider of ours', () => {
    expect(resolve('claude-sonnet-4@anthropic', ANT)).toEqual({ model: 'claude-sonnet-4', provider: 'anthropic', providerModel: 'claude-sonnet-4' });
    expect(resolve('llama-3.3-70b-versatile@groq', { GROQ_API_KEY: 'gsk_12345678901' })).toMatchObject({ provider: 'groq', providerModel: 'llama-3.3-70b-versatile' });
    // A pin beats the OpenRouter key when the user holds the pinned provider's key.
    expect(resolve('openai/gpt-4o@openai', { ...OR, OPENAI_API_KEY: 'sk-dddddddddddd' })).toMatchObject({ provider: 'openai', providerModel: 'gpt-4o' });
    expect(resolve('meta-llama/Llama-3.3-70B-Instruct-Turbo@together')).toMatchObject({ provider: 'together', providerModel: 'meta-llama/Llama-3.3-70B-Instruct-Turbo' });
  });
  it('means through OpenRouter with @openrouter, and pins a host inside OpenRouter with @openrouter/<host>', () => {
    expect(resolve('moonshotai/kimi-k2@openrouter', OR)).toEqual({ model: 'moonshotai/kimi-k2', provider: 'openrouter', providerModel: 'moonshotai/kimi-k2' });
    expect(resolve('moonshotai/kimi-k2@openrouter/groq', OR)).toEqual({
      model: 'moonshotai/kimi-k2',
      provider: 'openrouter',
      providerModel: 'moonshotai/kimi-k2',
      openrouterHost: 'groq',
      extraBody: { provider: { order: ['groq'], allow_fallbacks: false } },
    });
  });
  it('asks OpenRouter for a host it knows and we do not, when the user has an OpenRouter key', () => {
    expect(resolve('moonshotai/kimi-k2@novita', OR)).toMatchObject({ provider: 'openrouter', extraBody: { provider: { order: ['novita'], allow_fallbacks: false } } });
  });
  it('asks OpenRouter for one of our hosts when the user lacks its key but has an OpenRouter key', () => {
    expect(resolve('meta-llama/llama-3.3-70b-instruct@groq', OR)).toMatchObject({ provider: 'openrouter', openrouterHost: 'groq' });
    expect(resolve('google/gemini-2.5-flash@google', OR)).toMatchObject({ provider: 'openrouter', openrouterHost: 'google-ai-studio' });
    // A host-specific id (no vendor/) cannot go through OpenRouter: it stays direct and asks for the key.
    expect(resolve('llama-3.3-70b-versatile@groq', OR)).toMatchObject({ provider: 'groq' });
  });
  it('rejects an unknown provider, listing the known ones', () => {
    const err = (() => {
      try {
        resolve('some-model@nowhere');
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected an error');
    })();
    expect(err).toBeInstanceOf(UnknownProviderError);
    expect(err.message).toContain('"nowhere"');
    expect(err.message).toContain('openrouter, openai, anthropic, google');
    expect(err.message).toContain('ollama');
  });
  it('rejects malformed strings with a pointer', () => {
    expect(() => resolve('gpt-4o')).toThrow(ModelStringError);
    expect(() => resolve('x@')).toThrow(/provider name after "@" is missing/);
    expect(() => resolve('x@openrouter/')).toThrow(/OpenRouter host after "openrouter\/" is missing/);
    expect(() => resolve('a b')).toThrow(/no spaces/);
  });
  it('keeps sim/ models as they were', () => {
    expect(resolve('sim/llama')).toEqual({ model: 'sim/llama', provider: 'sim-fast', providerModel: 'llama' });
    expect(resolve('sim/llama@sim-cheap')).toMatchObject({ provider: 'sim-cheap' });
  });
});

describe('endpointFor', () => {
  const ctx = (env: Env) => ({ registry: new ProviderRegistry(), env });
  it('builds endpoints from the registry with keys, headers and base-URL overrides', async () => {
    const google = await endpointFor(resolve('google/gemini-2.5-flash', { GEMINI_API_KEY: 'AIza-gemini-key-000000' }), ctx({ GEMINI_API_KEY: 'AIza-gemini-key-000000', GOOGLE_BASE_URL: 'http://proxy.local/' }));
    expect(google).toMatchObject({ provider: 'google', protocol: 'gemini', baseURL: 'http://proxy.local', apiKey: 'AIza-gemini-key-000000' });
    const anthropic = await endpointFor({ model: 'm', provider: 'anthropic', providerModel: 'm' }, ctx(ANT));
    expect(anthropic).toMatchObject({ protocol: 'anthropic', baseURL: 'https://api.anthropic.com' });
    const router = await endpointFor({ model: 'm', provider: 'openrouter', providerModel: 'm' }, ctx(OR));
    expect(router.headers['X-Title']).toBe('switchboard');
  });
  it('needs no key for local servers but sends one when set', async () => {
    expect((await endpointFor(resolve('ollama/llama3.2'), ctx({}))).apiKey).toBeUndefined();
    const vllm = await endpointFor(resolve('vllm/qwen'), ctx({ VLLM_API_KEY: 'local-key-123', VLLM_BASE_URL: 'http://gpu:8000/v1' }));
    expect(vllm).toMatchObject({ baseURL: 'http://gpu:8000/v1', apiKey: 'local-key-123' });
    expect((await endpointFor(resolve('llama.cpp/x'), ctx({}))).baseURL).toBe('http://localhost:8080/v1');
  });
  it('names the variable to set when a key is missing', async () => {
    await expect(endpointFor(resolve('claude-sonnet-4@anthropic'), ctx({}))).rejects.toThrow(MissingKeyError);
    await expect(endpointFor(resolve('claude-sonnet-4@anthropic'), ctx({}))).rejects.toThrow(/ANTHROPIC_API_KEY/);
  });
});
