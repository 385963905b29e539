/**
 * Circuit breakers shared through Redis: a deployment that trips the breaker on one gateway
 * instance cools down on every instance, for the same time.
 *
 * Each instance keeps its own `CircuitBreakers` (a routing decision reads memory, no round
 * trip on the hot path). A trip there is sent to Redis off the request's path, as one script
 * that, on Redis's clock (TIME), records the cooldown's end in a sorted set
 * (`P:cb`, deployment -> end in ms, the key expiring with its last cooldown) and publishes
 * the trip on the channel `P:cb`. Every other instance hears it at once (pub/sub) and opens
 * its own breaker for the cooldown. An instance that starts, or whose subscription
 * reconnects after Redis was away (pub/sub keeps nothing for absent listeners), reads the
 * sorted set for the cooldowns still running, in their time left by Redis's clock.
 *
 * While Redis is down each instance's breakers work alone (a trip that cannot be sent is
 * warned about once). Only trips are shared: failures below the threshold, probes and
 * successes stay local, so after a cooldown each instance sends its own probe.
 */
import { CircuitBreakers, type BreakerOptions } from '../routing/retry.js';
import { runScript, Script, type RedisClient } from './redis-scripts.js';

/** KEYS: the sorted set. ARGV: deployment, cooldown ms, channel, instance. */
const TRIP = new Script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ms = tonumber(ARGV[2])
local ends = now + ms
local had = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not had or tonumber(had) < ends then redis.call('ZADD', KEYS[1], ends, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now)) end
redis.call('PUBLISH', ARGV[3], cjson.encode({ i = ARGV[4], k = ARGV[1], ms = ms }))
return 1
`);

/** KEYS: the sorted set. Returns {deployment, ms left, ...} for the cooldowns still running. */
const RUNNING = new Script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  out[#out + 1] = rows[i]
  out[#out + 1] = tonumber(rows[i + 1]) - now
end
return out
`);

export interface RedisBreakerOptions extends BreakerOptions {
  /** Commands (trips, reads of running cooldowns). */
  client: RedisClient;
  /** Key prefix with its hash tag (default `{switchboard}`). */
  prefix?: string;
  /** This instance's name: its own trips coming back on the channel are not applied twice. */
  instance: string;
  warn: (message: string) => void;
}

export class RedisBreakerSync {
  readonly breakers: CircuitBreakers;
  readonly #client: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #key: string;
  readonly #instance: string;
  readonly #warn: (message: string) => void;
  #failing = false;
  #closed = false;
  /** Trips sent and not yet answered (tests wait on them). */
  #sending = new Set<Promise<void>>();

  private constructor(options: RedisBreakerOptions) {
    this.#client = options.client;
    this.#subscriber = options.client.duplicate();
    this.#subscriber.on('error', () => {});
    this.#key = `${options.prefix ?? '{switchboard}'}:cb`;
    this.#instance = options.instance;
    this.#warn = options.warn;
    const { client: _client, prefix: _prefix, instance: _instance, warn: _warn, ...breakerOptions } = options;
    this.breakers = new CircuitBreakers({ ...breakerOptions, onTrip: (key, ms) => this.#publish(key, ms) });
  }

  /** Subscribe, then take in the cooldowns already running. */
  static async open(options: RedisBreakerOptions): Promise<RedisBreakerSync> {
    const sync = new RedisBreakerSync(options);
    await sync.#subscriber.connect();
    await sync.#subscriber.subscribe(sync.#key, (message) => sync.#heard(message));
    // After a reconnect the client subscribes again by itself; trips made meanwhile are read back.
    sync.#subscriber.on('ready', () => void sync.#reload());
    await sync.loadRunning();
    return sync;
  }

  #heard(message: string): void {
    try {
      const m = JSON.parse(message) as { i?: unknown; k?: unknown; ms?: unknown };
      if (m.i === this.#instance || typeof m.k !== 'string' || typeof m.ms !== 'number') return;
      this.breakers.coolDown(m.k, m.ms);
    } catch {
      // not ours
    }
  }

  #publish(key: string, ms: number): void {
    const sent = runScript(this.#client, TRIP, [this.#key], [key, String(Math.round(ms)), this.#key, this.#instance]).then(
      () => {
        if (this.#failing) this.#warn('the shared circuit breakers (Redis) are back.');
        this.#failing = false;
      },
      (err: unknown) => {
        if (!this.#failing) this.#warn(`could not share a circuit breaker trip through Redis (${err instanceof Error ? err.message : String(err)}); breakers work per instance until it returns.`);
        this.#failing = true;
      },
    );
    this.#sending.add(sent);
    void sent.finally(() => this.#sending.delete(sent));
  }

  /** Open every breaker whose cooldown is still running on Redis; false when Redis did not answer. */
  async loadRunning(): Promise<boolean> {
    try {
      const rows = (await runScript(this.#client, RUNNING, [this.#key], [])) as (string | number)[];
      for (let i = 0; i + 1 < rows.length; i += 2) this.breakers.coolDown(String(rows[i]), Number(rows[i + 1]));
      return true;
    } catch {
      return false;
    }
  }

  /** After the subscription came back: read the cooldowns, once the command connection is back too. */
  async #reload(): Promise<void> {
    for (let i = 0; i < 20 && !this.#closed; i++) {
      if (await this.loadRunning()) return;
      await new Promise((r) => setTimeout(r, 250).unref());
    }
  }

  /** Wait for the trips being sent. */
  async flush(): Promise<void> {
    await Promise.all([...this.#sending]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
    if (this.#subscriber.isOpen) await this.#subscriber.close();
  }
}
