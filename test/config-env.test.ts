import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { createRegistry, loadConfig, parseConfig } from '../src/providers/config.js';
import { loadEnv } from '../src/providers/env.js';
import { endpointFor, resolveModel, type Env } from '../src/providers/resolve.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'switchboard-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const configError = (json: unknown): string => {
  try {
    parseConfig(json, 'switchboard.config.json');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('config file', () => {
  it('reads switchboard.config.json in the working directory and registers its providers', async () => {
    writeFileSync(
      join(dir, 'switchboard.config.json'),
      JSON.stringify({ providers: [{ name: 'gpu-box', protocol: 'openai', baseURL: 'http://gpu-box:8000/v1/', keyEnv: 'GPU_BOX_KEY', headers: { 'X-Team': 'ml' } }] }),
    );
    const env: Env = { GPU_BOX_KEY: 'gpu-secret-key-1' };
    const config = loadConfig(dir, env);
    expect(config?.path).toBe(join(dir, 'switchboard.config.json'));
    expect(config?.providers).toEqual([{ name: 'gpu-box', protocol: 'openai', baseURL: 'http://gpu-box:8000/v1', keyEnv: ['GPU_BOX_KEY'], headers: { 'X-Team': 'ml' } }]);
    const registry = createRegistry(dir, env);
    expect(registry.has('openrouter')).toBe(true);
    const deployment = resolveModel('qwen3-32b@gpu-box', { registry, env });
    expect(deployment).toMatchObject({ provider: 'gpu-box', providerModel: 'qwen3-32b' });
    expect(await endpointFor(deployment, { registry, env })).toMatchObject({ baseURL: 'http://gpu-box:8000/v1', apiKey: 'gpu-secret-key-1', headers: { 'X-Team': 'ml' } });
  });

  it('falls back to $SWITCHBOARD_HOME/config.json, and the working directory wins', () => {
    const home = join(dir, 'home');
    mkdirSync(home);
    writeFileSync(join(home, 'config.json'), JSON.stringify({ providers: [{ name: 'claude-proxy', protocol: 'anthropic', baseURL: 'https://proxy.example.com' }] }));
    const work = join(dir, 'work');
    mkdirSync(work);
    expect(loadConfig(work, { SWITCHBOARD_HOME: home })?.providers[0]).toEqual({ name: 'claude-proxy', protocol: 'anthropic', baseURL: 'https://proxy.example.com', keyEnv: [] });
    writeFileSync(join(work, 'switchboard.config.json'), JSON.stringify({ providers: [] }));
    expect(loadConfig(work, { SWITCHBOARD_HOME: home })?.providers).toEqual([]);
    expect(loadConfig(join(dir, 'empty'), {})).toBeUndefined();
  });

  it('explains invalid files by field', () => {
    writeFileSync(join(dir, 'switchboard.config.json'), '{ "providers": [ }');
    expect(() => loadConfig(dir, {})).toThrow(/switchboard\.config\.json is not valid JSON/);
    expect(configError([])).toMatch(/must hold a JSON object/);
    expect(configError({ provider: [] })).toMatch(/"provider" is not a known setting/);
    expect(configError({ providers: {} })).toMatch(/"providers" must be an array/);
    expect(configError({ providers: [{ name: 'a/b', protocol: 'openai', baseURL: 'http://x' }] })).toMatch(/providers\[0\]\.name must be a name/);
    expect(configError({ providers: [{ name: 'x', protocol: 'cohere', baseURL: 'http://x' }] })).toMatch(/providers\[0\] \("x"\)\.protocol must be one of openai, openai-responses, anthropic, gemini; got "cohere"/);
    expect(configError({ providers: [{ name: 'x', protocol: 'openai', baseURL: 'gpu-box:8000' }] })).toMatch(/baseURL must be an http\(s\) URL/);
    expect(configError({ providers: [{ name: 'x', protocol: 'openai', baseURL: 'http://x', keyEnv: 3 }] })).toMatch(/keyEnv must be an environment variable name/);
    expect(configError({ providers: [{ name: 'x', protocol: 'openai', baseURL: 'http://x', apiKey: 'k' }] })).toMatch(/providers\[0\]\.apiKey is not a known field/);
    expect(configError({ providers: [{ name: 'x', protocol: 'openai', baseURL: 'http://x' }, { name: 'x', protocol: 'openai', baseURL: 'http://y' }] })).toMatch(/defined twice/);
  });

  it('refuses a key pasted into keyEnv without repeating it', () => {
    const message = configError({ providers: [{ name: 'x', protocol: 'openai', baseURL: 'http://x', keyEnv: 'sk-live-abc123-def' }] });
    expect(message).toMatch(/must name environment variables/);
    expect(message).not.toContain('sk-live-abc123-def');
  });
});

describe('.env loading', () => {
  it('reads .env from the working directory; variables already set win', () => {
    writeFileSync(join(dir, '.env'), '# keys\nOPENROUTER_API_KEY=sk-or-from-file\nexport GROQ_API_KEY="gsk_from_file"\nEMPTY=\nMULTI="a\nb"\n');
    const env: Env = { OPENROUTER_API_KEY: 'sk-or-from-shell' };
    const names = loadEnv(dir, env);
    expect(names.sort()).toEqual(['EMPTY', 'GROQ_API_KEY', 'MULTI']);
    expect(env.OPENROUTER_API_KEY).toBe('sk-or-from-shell');
    expect(env.GROQ_API_KEY).toBe('gsk_from_file');
    expect(env.MULTI).toBe('a\nb');
  });

  it('does nothing without a .env file', () => {
    const env: Env = {};
    expect(loadEnv(dir, env)).toEqual([]);
    expect(env).toEqual({});
  });
});
