/**
 * The routing measurements every instance shares, on Redis: the `SharedMetricsBackend` behind
 * `SharedMetricsStore` (which sums each instance's samples per deployment per second and
 * calls `write` and `read` once a second each, whatever the traffic).
 *
 * Layout (P = the prefix with its hash tag, so Cluster keeps them in one slot):
 * - `P:m:<second>` one hash per second, fields `<instance> <deployment> <figure>` (separated
 *   by \x01): `ok` successes, `f:<code>` failures by code, `<timing>:n` how many samples carried
 *   a timing and `<timing>:l` the sum of their natural logs. Expires after `keepSeconds`.
 * - `P:m:idx` the seconds that have a hash (a sorted set), so a read visits only those.
 * `write` is one script of HINCRBY / HINCRBYFLOAT per field (buckets add up field by field, so
 * writes commute); `read` one script returning every hash from a second on. Both are one
 * round trip; neither is on a request's path.
 */
import { runScript, Script, type RedisClient } from './redis-scripts.js';
import type { MetricsBucket, SharedMetricsBackend } from './shared-metrics.js';

const SEP = '\u0001';

/** KEYS: the index. ARGV: hash prefix, keep seconds, then (second, field, amount) triples. */
const WRITE = new Script(`
local prefix, keep = ARGV[1], tonumber(ARGV[2])
local touched = {}
for i = 3, #ARGV, 3 do
  local second, field, amount = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = prefix .. second
  if string.sub(field, -2) == ':l' then redis.call('HINCRBYFLOAT', key, field, amount)
  else redis.call('HINCRBY', key, field, amount) end
  if not touched[second] then
    touched[second] = true
    redis.call('EXPIRE', key, keep)
    redis.call('ZADD', KEYS[1], tonumber(second), second)
  end
end
redis.call('EXPIRE', KEYS[1], keep)
return 1
`);

/** KEYS: the index. ARGV: hash prefix, first second wanted, oldest second kept. Returns {second, {field, value, ...}, ...}. */
const READ = new Script(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local seconds = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')
local out = {}
for _, second in ipairs(seconds) do
  out[#out + 1] = second
  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. second)
end
return out
`);

export interface RedisMetricsBackendOptions {
  client: RedisClient;
  /** Key prefix with its hash tag (default `{switchboard}`). */
  prefix?: string;
  /** How long a second's sums are kept (default 900 s: a starting instance reads the last 10 minutes). */
  keepSeconds?: number;
}

export class RedisMetricsBackend implements SharedMetricsBackend {
  readonly #client: RedisClient;
  readonly #index: string;
  readonly #hashPrefix: string;
  readonly #keep: number;
  /** Round trips made (the batching test and the benchmark read it). */
  calls = 0;

  constructor(options: RedisMetricsBackendOptions) {
    this.#client = options.client;
    const prefix = options.prefix ?? '{switchboard}';
    this.#index = `${prefix}:m:idx`;
    this.#hashPrefix = `${prefix}:m:`;
    this.#keep = options.keepSeconds ?? 900;
  }

  async write(buckets: readonly MetricsBucket[]): Promise<void> {
    const args = [this.#hashPrefix, String(this.#keep)];
    for (const b of buckets) {
      const head = `${b.instance}${SEP}${b.deployment}${SEP}`;
      const second = String(b.second);
      if (b.successes > 0) args.push(second, `${head}ok`, String(b.successes));
      for (const [code, n] of Object.entries(b.failures)) args.push(second, `${head}f:${code}`, String(n));
      for (const [field, s] of Object.entries(b.sums)) {
        if (!s || s.count === 0) continue;
        args.push(second, `${head}${field}:n`, String(s.count), second, `${head}${field}:l`, String(s.logSum));
      }
    }
    if (args.length === 2) return;
    this.calls++;
    await runScript(this.#client, WRITE, [this.#index], args);
  }

  async read(sinceSecond: number): Promise<MetricsBucket[]> {
    this.calls++;
    const oldest = Math.floor(Date.now() / 1000) - this.#keep;
    const reply = (await runScript(this.#client, READ, [this.#index], [this.#hashPrefix, String(sinceSecond), String(oldest)])) as (string | string[])[];
    const out: MetricsBucket[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const second = Number(reply[i]);
      const fields = reply[i + 1] as string[];
      const buckets = new Map<string, MetricsBucket>();
      for (let j = 0; j + 1 < fields.length; j += 2) {
        const [instance, deployment, figure] = (fields[j] as string).split(SEP) as [string, string, string | undefined];
        if (figure === undefined) continue;
        const id = `${instance}${SEP}${deployment}`;
        let b = buckets.get(id);
        if (!b) {
          b = { deployment, second, instance, successes: 0, failures: {}, sums: {} };
          buckets.set(id, b);
        }
        const value = Number(fields[j + 1]);
        if (figure === 'ok') b.successes = value;
        else if (figure.startsWith('f:')) b.failures[figure.slice(2)] = value;
        else {
          const field = figure.slice(0, -2) as keyof MetricsBucket['sums'];
          const s = (b.sums[field] ??= { count: 0, logSum: 0 });
          if (figure.endsWith(':n')) s.count = value;
          else s.logSum = value;
        }
      }
      out.push(...buckets.values());
    }
    return out;
  }
}
