/**
 * The gateway's configuration: a YAML file validated with a schema. Errors name the file,
 * the line and the key (`gateway.yaml:12: limits.max_in_flight: expected a positive integer`).
 * String values may reference environment variables (`${OPENAI_API_KEY}`, `${PORT:-4000}`);
 * the values read that way (provider keys, the master key) are never logged or returned.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isNode, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { ConfigError, registerSecret } from '../errors.js';
import { BUILTIN_PROVIDERS, type ProviderConfig } from '../providers/registry.js';
import { HEADER_NAME, originPatternText, parseOriginPattern } from './cors.js';

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

const providerSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, ".", "_" and "-"'),
    protocol: z.enum(['openai', 'openai-responses', 'anthropic', 'gemini']),
    base_url: z.string().regex(/^https?:\/\//, 'an http:// or https:// URL'),
    api_key: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
  })
  .strict();

const groupSchema = z
  .object({
    /** `weighted`: one deployment drawn by weight, the others as fallbacks; `fallback`: in the order written. */
    strategy: z.enum(['weighted', 'fallback']).default('weighted'),
    deployments: z
      .array(z.object({ model: z.string().min(1), weight: z.number().positive().default(1) }).strict())
      .min(1),
  })
  .strict();

/** A response-cache rule for one model name or key: `false` turns caching off there, an object on with overrides. */
const cacheRuleSchema = z.union([
  z.boolean(),
  z.object({ ttl_seconds: nonNegativeInt.optional(), any_temperature: z.boolean().optional() }).strict(),
]);

const schema = z
  .object({
    listen: z.object({ host: z.string().min(1).optional(), port: nonNegativeInt.max(65535).optional() }).strict().optional(),
    master_key: z.string().min(8, 'at least 8 characters').optional(),
    providers: z.array(providerSchema).optional(),
    keys: z.record(z.string(), z.string()).optional(),
    aliases: z.record(z.string(), z.string().min(1)).optional(),
    model_groups: z.record(z.string(), groupSchema).optional(),
    routing: z
      .object({
        max_retries: nonNegativeInt.max(10).optional(),
        retries_before_fallback: nonNegativeInt.max(10).optional(),
        attempt_timeout_ms: positiveInt.optional(),
        deadline_ms: positiveInt.optional(),
        on_unavailable: z.enum(['fail', 'wait']).optional(),
        fallbacks: z.record(z.string(), z.array(z.string().min(1)).min(1)).optional(),
      })
      .strict()
      .optional(),
    limits: z
      .object({
        max_body_bytes: positiveInt.optional(),
        max_in_flight: positiveInt.optional(),
        request_timeout_ms: positiveInt.optional(),
        body_timeout_ms: positiveInt.optional(),
        drain_timeout_ms: nonNegativeInt.optional(),
        keep_alive_ms: positiveInt.optional(),
      })
      .strict()
      .optional(),
    virtual_keys: z
      .object({
        enabled: z.boolean().optional(),
        ledger: z.string().min(1).optional(),
        redis_url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL').optional(),
        database_url: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL').optional(),
        time_zone: z.string().min(1).optional(),
        default_max_tokens: positiveInt.optional(),
        reservation_ttl_ms: positiveInt.optional(),
        on_store_error: z.enum(['closed', 'open']).optional(),
        unpriced_models: z.enum(['refuse', 'free']).optional(),
        total_budget: z
          .object({ amount: z.union([z.number().nonnegative(), z.string().regex(/^\$?\d+(\.\d{1,6})?$/, 'dollars, like 500 or 12.50')]), period: z.enum(['day', 'month', 'total']).default('month') })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    response_cache: z
      .object({
        enabled: z.boolean().optional(),
        store: z.enum(['memory', 'sqlite', 'redis']).optional(),
        ttl_seconds: nonNegativeInt.optional(),
        any_temperature: z.boolean().optional(),
        max_bytes: positiveInt.optional(),
        max_entry_bytes: positiveInt.optional(),
        scope: z.enum(['key', 'team', 'gateway']).optional(),
        models: z.record(z.string(), cacheRuleSchema).optional(),
        keys: z.record(z.string(), cacheRuleSchema).optional(),
      })
      .strict()
      .optional(),
    cors: z
      .object({
        origins: z.union([z.string(), z.array(z.string()).min(1, "at least one origin (or '*' for any)")], {
          error: (issue) => `${issue.input === undefined ? 'is required: ' : ''}'*' or a list of origins, such as [https://app.example.com, http://localhost:*]`,
        }),
        max_age_seconds: nonNegativeInt.max(86_400, 'at most 86400 (a day; browsers cap it lower)').optional(),
        expose_headers: z.array(z.string().regex(HEADER_NAME, 'a header name')).optional(),
      })
      .strict()
      .optional(),
    logging: z
      .object({
        requests: z.boolean().optional(),
        access_log: z.boolean().optional(),
        content: z.boolean().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type RawGatewayConfig = z.infer<typeof schema>;

export interface ModelGroup {
  strategy: 'weighted' | 'fallback';
  deployments: { model: string; weight: number }[];
}

/** A validated configuration with every default filled in and environment references resolved. */
export interface GatewayConfig {
  /** Where it came from (`(built-in)` for the embedded default). */
  source: string;
  host: string;
  port: number;
  /** Undefined: no master key, the gateway admits every caller. */
  masterKey: string | undefined;
  /** Providers added or replaced by the config. */
  providers: ProviderConfig[];
  /** Environment the router reads keys from: the process's, plus keys given in the config. */
  env: Record<string, string | undefined>;
  aliases: Map<string, string>;
  groups: Map<string, ModelGroup>;
  routing: {
    maxRetries: number | undefined;
    retriesBeforeFallback: number | undefined;
    attemptTimeoutMs: number | undefined;
    deadlineMs: number | undefined;
    onUnavailable: 'fail' | 'wait';
    fallbacks: Map<string, string[]>;
  };
  limits: { maxBodyBytes: number; maxInFlight: number; requestTimeoutMs: number; bodyTimeoutMs: number; drainTimeoutMs: number; keepAliveMs: number };
  logging: { requests: boolean; accessLog: boolean; content: boolean };
  /** The response cache (docs/caching.md, "In the gateway"); undefined when the config has no `response_cache`. */
  responseCache: GatewayCacheConfig | undefined;
  /** Cross-origin calls from browsers (cors.ts); undefined when the config has no `cors`: no CORS headers at all. */
  cors: GatewayCorsConfig | undefined;
  /** Virtual keys, budgets and rate limits (docs/keys.md). */
  virtualKeys: {
    /** On by default when there is a master key. */
    enabled: boolean;
    /** The ledger file; default `$SWITCHBOARD_LEDGER`, else `$SWITCHBOARD_HOME/ledger.db`. */
    ledger: string | undefined;
    /** Shared hot state (budgets, rate windows, the ledger's queue): `$SWITCHBOARD_REDIS_URL` or `redis_url` (docs/deploy.md). */
    redisUrl: string | undefined;
    /** Shared ledger: `$SWITCHBOARD_DATABASE_URL` or `database_url`; with neither URL the stores are memory and SQLite. */
    databaseUrl: string | undefined;
    timeZone: string;
    defaultMaxTokens: number | undefined;
    reservationTtlMs: number | undefined;
    onStoreError: 'closed' | 'open';
    /** A model with no known price under a budget: refused (403), or held and charged at $0. */
    unpricedModels: 'refuse' | 'free';
    totalBudget: { amount: string; period: 'day' | 'month' | 'total' } | undefined;
  };
}

/** One cache rule as configured: false = off; otherwise on, with the settings it overrides. */
export type GatewayCacheRule = false | { ttlSeconds?: number; anyTemperature?: boolean };

export interface GatewayCacheConfig {
  /** Caching for every model and key without a rule of its own (default true). */
  enabled: boolean;
  /** Where entries live; default `redis` when a Redis URL is configured, else `memory`. */
  store: 'memory' | 'sqlite' | 'redis';
  ttlSeconds: number;
  anyTemperature: boolean;
  /** The store's bound in bytes (memory and SQLite; Redis is bounded by its maxmemory). */
  maxBytes: number | undefined;
  /** Replies larger than this are not stored (default 1 MiB). */
  maxEntryBytes: number;
  /** Who shares entries: each virtual key its own (default), a team, or the whole gateway. */
  scope: 'key' | 'team' | 'gateway';
  /** Rules by alias, model group or model string as the caller names it. */
  models: Map<string, GatewayCacheRule>;
  /** Rules by virtual key id (`sk-sb-...` id, never the key) or `master`; a key's rule wins over a model's. */
  keys: Map<string, GatewayCacheRule>;
}

export interface GatewayCorsConfig {
  /** `*`: any origin; else origins and patterns (`http://localhost:*`, `https://*.example.com`), lower-cased, default ports dropped. */
  origins: '*' | string[];
  /** How long a browser may keep a preflight's answer (default 7200, Chromium's own cap). */
  maxAgeSeconds: number;
  /** Response headers browser code may read besides the gateway's own (cors.ts EXPOSED_HEADERS), lower-cased. */
  exposeHeaders: string[];
}

export const DEFAULT_PORT = 4000;
export const DEFAULT_LIMITS = { maxBodyBytes: 10 * 1024 * 1024, maxInFlight: 1024, requestTimeoutMs: 600_000, bodyTimeoutMs: 60_000, drainTimeoutMs: 30_000, keepAliveMs: 15_000 };

/** The name of the environment variable that holds a config provider's key inside the gateway. */
function keyVariable(provider: string): string {
  return `SWITCHBOARD_GATEWAY_KEY_${provider.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`;
}

/** The line (1-based) of the key (or list item) at a path, or of the nearest ancestor that exists. */
function lineOf(doc: Document, counter: LineCounter, path: readonly PropertyKey[]): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined = isNode(node) && node.range ? counter.linePos(node.range[0]).line : undefined;
  for (const segment of path) {
    let next: unknown;
    let at: [number, number, number] | null | undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === segment);
      next = pair?.value;
      at = isNode(pair?.key) ? pair.key.range : undefined;
    } else if (isSeq(node) && typeof segment === 'number') {
      next = node.items[segment];
      at = isNode(next) ? next.range : undefined;
    }
    if (!at) break;
    line = counter.linePos(at[0]).line;
    node = next;
  }
  return line;
}

function where(source: string, line: number | undefined, path: readonly PropertyKey[]): string {
  const key = path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
  return `${source}${line === undefined ? '' : `:${line}`}${key ? `: ${key}` : ''}`;
}

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replace `${VAR}` references in every string; a variable that is not set (and has no default) is an error. */
function substitute(value: unknown, env: Record<string, string | undefined>, fail: (path: PropertyKey[], message: string) => never, path: PropertyKey[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(REFERENCE, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      return fail(path, `refers to \${${name}}, which is not set in the environment (set it, or write \${${name}:-default})`);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substitute(v, env, fail, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, env, fail, [...path, k])]));
  }
  return value;
}

/** Parse and validate a configuration's text. Throws a ConfigError naming file, line and key. */
export function parseGatewayConfig(text: string, source: string, env: Record<string, string | undefined> = process.env): GatewayConfig {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e && e.pos ? counter.linePos(e.pos[0]).line : undefined;
    throw new ConfigError(`${source}${line === undefined ? '' : `:${line}`}: not valid YAML: ${e?.message.split('\n')[0] ?? 'syntax error'}`);
  }
  const fail = (path: readonly PropertyKey[], message: string): never => {
    throw new ConfigError(`${where(source, lineOf(doc, counter, path), path)}: ${message}`);
  };
  const json = substitute(doc.toJS() ?? {}, env, fail);
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue;
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0] ?? ''] : issue.path;
    const message = issue.code === 'unrecognized_keys' ? `is not a known setting (known here: ${knownKeys(issue.path)})` : issue.message;
    return fail(path, message);
  }
  return buildConfig(parsed.data, source, env, fail);
}

function knownKeys(path: readonly PropertyKey[]): string {
  let s: z.ZodType = schema;
  for (const p of path) {
    const def = (s as unknown as { shape?: Record<string, z.ZodType>; element?: z.ZodType; unwrap?: () => z.ZodType });
    if (typeof p === 'number' && def.element) s = def.element;
    else if (def.shape && typeof p === 'string' && def.shape[p]) s = def.shape[p];
    while ((s as unknown as { unwrap?: () => z.ZodType }).unwrap) s = (s as unknown as { unwrap: () => z.ZodType }).unwrap();
  }
  const shape = (s as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape).join(', ') : '';
}

function buildConfig(raw: RawGatewayConfig, source: string, baseEnv: Record<string, string | undefined>, fail: (path: PropertyKey[], message: string) => never): GatewayConfig {
  const env: Record<string, string | undefined> = { ...baseEnv };
  const providers: ProviderConfig[] = [];
  (raw.providers ?? []).forEach((p, i) => {
    if (providers.some((q) => q.name === p.name)) fail(['providers', i, 'name'], `"${p.name}" is defined twice`);
    const config: ProviderConfig = { name: p.name, protocol: p.protocol, baseURL: p.base_url.replace(/\/+$/, ''), keyEnv: [] };
    if (p.headers) config.headers = p.headers;
    if (p.api_key !== undefined) {
      const variable = keyVariable(p.name);
      env[variable] = p.api_key;
      config.keyEnv = [variable];
      registerSecret(p.api_key);
    }
    providers.push(config);
  });
  for (const [name, key] of Object.entries(raw.keys ?? {})) {
    const builtin = BUILTIN_PROVIDERS.find((b) => b.name === name);
    if (!builtin || builtin.keyEnv.length === 0) fail(['keys', name], `"${name}" is not a built-in provider that takes a key (known: ${BUILTIN_PROVIDERS.filter((b) => b.keyEnv.length > 0 && !b.local).map((b) => b.name).join(', ')})`);
    env[builtin?.keyEnv[0] ?? ''] = key;
    registerSecret(key);
  }
  const aliases = new Map(Object.entries(raw.aliases ?? {}));
  const groups = new Map<string, ModelGroup>();
  for (const [name, g] of Object.entries(raw.model_groups ?? {})) {
    if (aliases.has(name)) fail(['model_groups', name], `"${name}" is also an alias; a name means one thing`);
    groups.set(name, { strategy: g.strategy, deployments: g.deployments });
  }
  const masterKey = raw.master_key ?? (baseEnv.SWITCHBOARD_MASTER_KEY || undefined);
  registerSecret(masterKey);
  const limits = raw.limits ?? {};
  const logging = raw.logging ?? {};
  const routing = raw.routing ?? {};
  const vk = raw.virtual_keys ?? {};
  if (vk.time_zone !== undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: vk.time_zone });
    } catch {
      fail(['virtual_keys', 'time_zone'], `"${vk.time_zone}" is not a time zone; use an IANA name such as UTC or Europe/Berlin`);
    }
  }
  if (raw.response_cache?.store === 'redis' && !nonEmpty(env.SWITCHBOARD_REDIS_URL) && !vk.redis_url) {
    fail(['response_cache', 'store'], 'is redis, but no Redis is configured: set virtual_keys.redis_url or SWITCHBOARD_REDIS_URL, or use memory or sqlite');
  }
  return {
    source,
    cors: raw.cors ? corsConfig(raw.cors, fail) : undefined,
    responseCache: raw.response_cache ? cacheConfig(raw.response_cache, env, vk.redis_url) : undefined,
    host: raw.listen?.host ?? '127.0.0.1',
    port: raw.listen?.port ?? DEFAULT_PORT,
    masterKey,
    providers,
    env,
    aliases,
    groups,
    routing: {
      maxRetries: routing.max_retries,
      retriesBeforeFallback: routing.retries_before_fallback,
      attemptTimeoutMs: routing.attempt_timeout_ms,
      deadlineMs: routing.deadline_ms,
      onUnavailable: routing.on_unavailable ?? 'fail',
      fallbacks: new Map(Object.entries(routing.fallbacks ?? {})),
    },
    limits: {
      maxBodyBytes: limits.max_body_bytes ?? DEFAULT_LIMITS.maxBodyBytes,
      maxInFlight: limits.max_in_flight ?? DEFAULT_LIMITS.maxInFlight,
      requestTimeoutMs: limits.request_timeout_ms ?? DEFAULT_LIMITS.requestTimeoutMs,
      bodyTimeoutMs: limits.body_timeout_ms ?? DEFAULT_LIMITS.bodyTimeoutMs,
      drainTimeoutMs: limits.drain_timeout_ms ?? DEFAULT_LIMITS.drainTimeoutMs,
      keepAliveMs: limits.keep_alive_ms ?? DEFAULT_LIMITS.keepAliveMs,
    },
    logging: { requests: logging.requests ?? true, accessLog: logging.access_log ?? true, content: logging.content ?? false },
    virtualKeys: {
      enabled: vk.enabled ?? masterKey !== undefined,
      ledger: vk.ledger,
      redisUrl: nonEmpty(env.SWITCHBOARD_REDIS_URL) ?? vk.redis_url,
      databaseUrl: nonEmpty(env.SWITCHBOARD_DATABASE_URL) ?? vk.database_url,
      timeZone: vk.time_zone ?? 'UTC',
      defaultMaxTokens: vk.default_max_tokens,
      reservationTtlMs: vk.reservation_ttl_ms,
      onStoreError: vk.on_store_error ?? 'closed',
      unpricedModels: vk.unpriced_models ?? 'refuse',
      totalBudget: vk.total_budget ? { amount: String(vk.total_budget.amount).replace(/^\$/, ''), period: vk.total_budget.period } : undefined,
    },
  };
}

function cacheRule(rule: boolean | { ttl_seconds?: number | undefined; any_temperature?: boolean | undefined }): GatewayCacheRule {
  if (rule === false) return false;
  if (rule === true) return {};
  const out: Exclude<GatewayCacheRule, false> = {};
  if (rule.ttl_seconds !== undefined) out.ttlSeconds = rule.ttl_seconds;
  if (rule.any_temperature !== undefined) out.anyTemperature = rule.any_temperature;
  return out;
}

function cacheConfig(raw: NonNullable<RawGatewayConfig['response_cache']>, env: Record<string, string | undefined>, redisUrl: string | undefined): GatewayCacheConfig {
  const redis = nonEmpty(env.SWITCHBOARD_REDIS_URL) ?? redisUrl;
  return {
    enabled: raw.enabled ?? true,
    store: raw.store ?? (redis ? 'redis' : 'memory'),
    ttlSeconds: raw.ttl_seconds ?? 86_400,
    anyTemperature: raw.any_temperature ?? false,
    maxBytes: raw.max_bytes,
    maxEntryBytes: raw.max_entry_bytes ?? 1024 * 1024,
    scope: raw.scope ?? 'key',
    models: new Map(Object.entries(raw.models ?? {}).map(([k, v]) => [k, cacheRule(v)])),
    keys: new Map(Object.entries(raw.keys ?? {}).map(([k, v]) => [k, cacheRule(v)])),
  };
}

/** `cors` with each origin checked (a wrong one names its place in the list) and written as a browser sends it. */
function corsConfig(raw: NonNullable<RawGatewayConfig['cors']>, fail: (path: PropertyKey[], message: string) => never): GatewayCorsConfig {
  const exposeHeaders = (raw.expose_headers ?? []).map((h) => h.toLowerCase());
  const maxAgeSeconds = raw.max_age_seconds ?? 7200;
  if (typeof raw.origins === 'string' && raw.origins.trim() === '*') return { origins: '*', maxAgeSeconds, exposeHeaders };
  // A single origin may be written without the list's brackets.
  const listed = typeof raw.origins === 'string' ? [raw.origins] : raw.origins;
  const origins = listed.map((text, i) => {
    const pattern = parseOriginPattern(text);
    return typeof pattern === 'string' ? fail(typeof raw.origins === 'string' ? ['cors', 'origins'] : ['cors', 'origins', i], pattern) : originPatternText(pattern);
  });
  return { origins, maxAgeSeconds, exposeHeaders };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/**
 * The embedded default: no file, the simulator's models, and the master key from
 * SWITCHBOARD_MASTER_KEY when it is set.
 */
export function defaultGatewayConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  return parseGatewayConfig('{}', '(built-in)', env);
}

/** Read and parse a config file. */
export async function loadGatewayConfig(path: string, env: Record<string, string | undefined> = process.env): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the gateway config (${(err as Error).message})`);
  }
  return parseGatewayConfig(text, path, env);
}
