/**
 * Custom providers from a config file: `switchboard.config.json` in the working directory,
 * else `$SWITCHBOARD_HOME/config.json`. The shape:
 *
 * ```json
 * { "providers": [
 *   { "name": "my-vllm", "protocol": "openai", "baseURL": "http://gpu-box:8000/v1", "keyEnv": "MY_VLLM_KEY" }
 * ] }
 * ```
 * `keyEnv` is a variable name or a list of them, and may be left out for keyless servers;
 * `headers` (string values) is optional; `local: true` marks a server of the user's own (its
 * replies cost 0, with no unknown-price warning). A provider named like a built-in one replaces it.
 *
 * `models` names model groups: one model at several deployments, so modes and constraints
 * choose among them (`tiny@tps`, `tiny@lowest-latency|providers:gpu-a,gpu-b`):
 *
 * ```json
 * { "models": { "tiny": [ { "provider": "gpu-a", "model": "tiny-q4" }, "gpu-b" ] } }
 * ```
 * A member is a provider name, or `{ provider, model?, inputPrice?, outputPrice? }` (model
 * defaults to the group's name; prices in $ per million tokens, 0 on a local provider).
 *
 * The clouds take settings of their own (environment variables win over them):
 * ```json
 * { "azure": { "deployments": { "my-gpt4o": "openai/gpt-4o" }, "apiVersion": "2024-10-21", "endpoint": "https://my-resource.openai.azure.com" },
 *   "vertex": { "project": "acme-prod", "location": "europe-west4" },
 *   "bedrock": { "region": "eu-central-1" } }
 * ```
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { ProtocolName } from '../protocols/protocol.js';
import type { Env } from './resolve.js';
import type { CloudName, CloudSettings } from './clouds/index.js';
import { BUILTIN_PROVIDERS, ProviderRegistry, type GroupMember, type ProviderConfig } from './registry.js';

export const CONFIG_FILE = 'switchboard.config.json';

export interface SwitchboardConfig {
  /** The file the configuration came from. */
  path: string;
  providers: ProviderConfig[];
  /** Model groups by name. */
  models: Record<string, GroupMember[]>;
  /** Settings of the clouds (`azure`, `vertex`, `bedrock`), by provider name. */
  clouds: Partial<Record<CloudName, CloudSettings>>;
}

/** Each cloud's settings and the type of each (string, or an object of strings). */
const CLOUD_FIELDS: Record<CloudName, Record<string, 'string' | 'map'>> = {
  azure: { deployments: 'map', apiVersion: 'string', endpoint: 'string' },
  vertex: { project: 'string', location: 'string' },
  bedrock: { region: 'string' },
};

const PROTOCOLS: ProtocolName[] = ['openai', 'openai-responses', 'anthropic', 'gemini'];
const PROVIDER_KEYS = new Set(['name', 'protocol', 'baseURL', 'keyEnv', 'headers', 'local']);
const MEMBER_KEYS = new Set(['provider', 'model', 'inputPrice', 'outputPrice']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new ConfigError(`Could not read ${path}: ${(err as Error).message}`);
  }
}

/** Validate parsed JSON as a configuration; errors name the file and the field. */
export function parseConfig(json: unknown, path: string): SwitchboardConfig {
  const fail = (where: string, message: string): never => {
    throw new ConfigError(`${path}: ${where} ${message}`);
  };
  if (!isRecord(json)) return fail('the file', 'must hold a JSON object like { "providers": [...] }.');
  const clouds: SwitchboardConfig['clouds'] = {};
  for (const key of Object.keys(json)) {
    if (key === 'providers' || key === 'models') continue;
    const fields = Object.hasOwn(CLOUD_FIELDS, key) ? CLOUD_FIELDS[key as CloudName] : undefined;
    if (!fields) fail(`"${key}"`, `is not a known setting (expected "providers", "models", ${Object.keys(CLOUD_FIELDS).map((c) => `"${c}"`).join(', ')}).`);
    clouds[key as CloudName] = parseCloud(json[key], fields as Record<string, 'string' | 'map'>, key, fail);
  }
  const list = json.providers ?? [];
  if (!Array.isArray(list)) return fail('"providers"', 'must be an array.');
  const seen = new Set<string>();
  const providers = list.map((entry: unknown, i): ProviderConfig => {
    const at = `providers[${i}]`;
    if (!isRecord(entry)) return fail(at, 'must be an object with name, protocol, baseURL and keyEnv.');
    for (const key of Object.keys(entry)) {
      if (!PROVIDER_KEYS.has(key)) fail(`${at}.${key}`, `is not a known field (expected ${[...PROVIDER_KEYS].join(', ')}).`);
    }
    const { name, protocol, baseURL, keyEnv, headers } = entry;
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
      return fail(`${at}.name`, `must be a name of letters, digits, ".", "_" or "-" (no "/" or "@"); got ${JSON.stringify(name)}.`);
    }
    const where = `${at} ("${name}")`;
    if (seen.has(name)) fail(where, 'is defined twice.');
    seen.add(name);
    if (typeof protocol !== 'string' || !PROTOCOLS.includes(protocol as ProtocolName)) {
      fail(`${where}.protocol`, `must be one of ${PROTOCOLS.join(', ')}; got ${JSON.stringify(protocol)}.`);
    }
    if (typeof baseURL !== 'string' || !/^https?:\/\/[^/]/.test(baseURL)) {
      fail(`${where}.baseURL`, `must be an http(s) URL; got ${JSON.stringify(baseURL)}.`);
    }
    let keys: string[] = [];
    if (typeof keyEnv === 'string') keys = [keyEnv];
    else if (Array.isArray(keyEnv) && keyEnv.every((k) => typeof k === 'string')) keys = keyEnv as string[];
    else if (keyEnv !== undefined) fail(`${where}.keyEnv`, 'must be an environment variable name or a list of them.');
    for (const key of keys) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
        fail(`${where}.keyEnv`, `must name environment variables (like MY_HOST_API_KEY), not hold a key; got a value of ${key.length} characters.`);
      }
    }
    const config: ProviderConfig = { name, protocol: protocol as ProtocolName, baseURL: (baseURL as string).replace(/\/+$/, ''), keyEnv: keys };
    if (headers !== undefined) {
      if (!isRecord(headers) || !Object.values(headers).every((v) => typeof v === 'string')) {
        fail(`${where}.headers`, 'must be an object of string values.');
      }
      config.headers = headers as Record<string, string>;
    }
    if (entry.local !== undefined) {
      if (typeof entry.local !== 'boolean') fail(`${where}.local`, `must be true or false; got ${JSON.stringify(entry.local)}.`);
      if (entry.local === true) {
        config.local = true;
        config.keyOptional = true;
      }
    }
    return config;
  });
  return { path, providers, clouds, models: parseModelGroups(json.models, fail) };
}

function parseModelGroups(raw: unknown, fail: (where: string, message: string) => never): Record<string, GroupMember[]> {
  if (raw === undefined) return {};
  if (!isRecord(raw)) return fail('"models"', 'must be an object of model names to lists of deployments.');
  const groups: Record<string, GroupMember[]> = {};
  for (const [model, list] of Object.entries(raw)) {
    const at = `models["${model}"]`;
    if (model === '' || /[@|]|->/.test(model)) fail(at, 'must be a model name without "@", "|" or "->".');
    if (!Array.isArray(list) || list.length === 0) return fail(at, 'must be a non-empty list of providers or { "provider": ..., "model": ... } objects.');
    groups[model] = list.map((m: unknown, i): GroupMember => {
      const where = `${at}[${i}]`;
      if (typeof m === 'string') return { provider: m, providerModel: model };
      if (!isRecord(m) || typeof m.provider !== 'string') return fail(where, 'must be a provider name or an object with "provider".');
      for (const key of Object.keys(m)) if (!MEMBER_KEYS.has(key)) fail(`${where}.${key}`, `is not a known field (expected ${[...MEMBER_KEYS].join(', ')}).`);
      if (m.model !== undefined && (typeof m.model !== 'string' || m.model === '')) fail(`${where}.model`, 'must be the provider\'s id for the model.');
      const member: GroupMember = { provider: m.provider, providerModel: typeof m.model === 'string' ? m.model : model };
      for (const key of ['inputPrice', 'outputPrice'] as const) {
        const v = m[key];
        if (v === undefined) continue;
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`${where}.${key}`, 'must be a non-negative number of $ per million tokens.');
        member[key] = v as number;
      }
      return member;
    });
  }
  return groups;
}

function parseCloud(value: unknown, fields: Record<string, 'string' | 'map'>, cloud: string, fail: (where: string, message: string) => never): CloudSettings {
  if (!isRecord(value)) return fail(`"${cloud}"`, `must be an object with ${Object.keys(fields).join(', ')}.`);
  for (const [key, v] of Object.entries(value)) {
    const kind = fields[key];
    if (!kind) fail(`"${cloud}".${key}`, `is not a known field (expected ${Object.keys(fields).join(', ')}).`);
    const ok = kind === 'string' ? typeof v === 'string' && v !== '' : isRecord(v) && Object.values(v).every((x) => typeof x === 'string');
    if (!ok) fail(`"${cloud}".${key}`, kind === 'string' ? 'must be a non-empty string.' : 'must be an object of strings (deployment name to catalog model).');
  }
  return value as CloudSettings;
}

/** The configuration in effect for a working directory, or undefined when there is no file. */
export function loadConfig(cwd: string, env: Env): SwitchboardConfig | undefined {
  const candidates = [join(cwd, CONFIG_FILE)];
  if (env.SWITCHBOARD_HOME) candidates.push(join(env.SWITCHBOARD_HOME, 'config.json'));
  for (const path of candidates) {
    const text = readIfPresent(path);
    if (text === undefined) continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`${path} is not valid JSON: ${(err as Error).message}`);
    }
    return parseConfig(json, path);
  }
  return undefined;
}

/** The built-in providers plus the ones the configuration file adds. */
export function createRegistry(cwd: string, env: Env): ProviderRegistry {
  const registry = new ProviderRegistry(BUILTIN_PROVIDERS);
  const config = loadConfig(cwd, env);
  for (const provider of config?.providers ?? []) registry.register(provider);
  for (const [model, members] of Object.entries(config?.models ?? {})) {
    for (const m of members) {
      if (!registry.has(m.provider)) throw new ConfigError(`${config?.path}: models["${model}"] names provider "${m.provider}", which is neither built in nor in "providers".`);
      // A local server's replies cost nothing: lowest-cost can compare it with priced hosts.
      if (registry.get(m.provider).local) {
        m.inputPrice ??= 0;
        m.outputPrice ??= 0;
      }
    }
    registry.registerGroup(model, members);
  }
  for (const [cloud, settings] of Object.entries(config?.clouds ?? {})) {
    if (registry.has(cloud)) registry.register({ ...registry.get(cloud), cloudSettings: settings });
  }
  return registry;
}
