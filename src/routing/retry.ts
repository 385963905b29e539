/**
 * Resilience pieces the router composes around each attempt: which failures to retry,
 * exponential backoff with full jitter (honouring Retry-After), an abortable sleep, and a
 * circuit breaker per deployment.
 */
import { APIError, AbortError, SwitchboardError } from '../errors.js';

export interface RetryOptions {
  /** Retries of the same deployment when no fallback follows it (default 2). */
  maxRetries?: number;
  /** Retries of the same deployment before moving on to a fallback (default 0). */
  retriesBeforeFallback?: number;
  /** First backoff ceiling in ms (default 250); doubles per retry. */
  baseDelayMs?: number;
  /** Backoff ceiling in ms (default 8000). */
  maxDelayMs?: number;
  /** A Retry-After longer than this moves on (or fails) instead of waiting (default 30000). */
  maxRetryAfterMs?: number;
}

export interface BreakerOptions {
  /** Consecutive failures that open the breaker (default 3). */
  failureThreshold?: number;
  /** How long an open breaker keeps the deployment out, in ms (default 15000); doubles on a failed probe, up to 8x. */
  cooldownMs?: number;
}

/** Whether a failure may go away when the same request is sent again. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof AbortError) return false;
  if (err instanceof APIError) {
    if ([400, 401, 403, 404].includes(err.status)) return false;
    return err.isRetryable || err.status === 429 || err.status >= 500;
  }
  return err instanceof SwitchboardError ? err.isRetryable : false;
}

/** Whether a failure says something about the deployment (and counts toward its breaker). */
export function countsAgainstDeployment(err: unknown): boolean {
  if (err instanceof AbortError) return false;
  if (err instanceof SwitchboardError && (err.code === 'bad_request' || err.code === 'context_length' || err.code === 'invalid_input')) return false;
  return true;
}

/** Full-jitter exponential backoff: a uniform wait in [0, min(max, base * 2^retry)], at least Retry-After. */
export function backoffDelay(retry: number, options: RetryOptions, random: () => number, retryAfterMs?: number): number {
  const base = options.baseDelayMs ?? 250;
  const cap = options.maxDelayMs ?? 8000;
  const jittered = random() * Math.min(cap, base * 2 ** retry);
  return retryAfterMs === undefined ? jittered : Math.max(retryAfterMs, jittered);
}

export function retryAfterOf(err: unknown): number | undefined {
  return err instanceof APIError ? err.retryAfterMs : undefined;
}

/** Wait `ms`, or reject with AbortError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortError());
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface BreakerState {
  failures: number;
  openUntil: number;
  trips: number;
  probing: boolean;
  /** The request whose failure was counted last: its retries do not count again. */
  lastRequest: object | undefined;
  /** Whether the deployment was answering before that failure (no failure counted, not open). */
  healthyBefore: boolean;
  /** The state before the last counted failure, to undo it when it was the request's own doing. */
  before: { failures: number; openUntil: number; trips: number } | undefined;
}

/**
 * One circuit breaker per deployment: failures of `failureThreshold` different requests in a
 * row open it for `cooldownMs`; after that one probe request goes through (others still skip
 * it); a success closes it, a failure opens it again for twice as long (up to 8x). Retries of
 * one request count once, and a failure that the request's retry repeats exactly, on a
 * deployment that had been answering, is the request's own (an input the server cannot
 * take) and does not count at all (`forgive`).
 */
export class CircuitBreakers {
  readonly #states = new Map<string, BreakerState>();
  readonly #threshold: number;
  readonly #cooldown: number;
  readonly #now: () => number;
  readonly #onTrip: ((key: string, cooldownMs: number) => void) | undefined;

  /**
   * `onTrip` hears of every trip this set makes (the deployment and its cooldown), so a shared
   * store can tell other instances; what they learn comes back through `coolDown`.
   */
  constructor(options: BreakerOptions & { now?: () => number; onTrip?: (key: string, cooldownMs: number) => void } = {}) {
    this.#threshold = options.failureThreshold ?? 3;
    this.#cooldown = options.cooldownMs ?? 15_000;
    this.#now = options.now ?? Date.now;
    this.#onTrip = options.onTrip;
  }

  #get(key: string): BreakerState {
    let s = this.#states.get(key);
    if (!s) {
      s = { failures: 0, openUntil: 0, trips: 0, probing: false, lastRequest: undefined, healthyBefore: true, before: undefined };
      this.#states.set(key, s);
    }
    return s;
  }

  /** `closed`, `open` (cooling down) or `half-open` (cooldown over, one probe allowed). */
  state(key: string): 'closed' | 'open' | 'half-open' {
    const s = this.#states.get(key);
    if (!s || s.trips === 0 || s.openUntil === 0) return 'closed';
    return this.#now() < s.openUntil ? 'open' : 'half-open';
  }

  /** Ms until the deployment may be tried again (0 when it may be tried now). */
  remainingMs(key: string): number {
    const s = this.#states.get(key);
    if (!s || s.openUntil === 0) return 0;
    const left = s.openUntil - this.#now();
    if (left > 0) return left;
    return s.probing ? 1 : 0;
  }

  /** Take permission to send a request; false while cooling down or while another probe runs. */
  acquire(key: string): boolean {
    const state = this.state(key);
    if (state === 'closed') return true;
    if (state === 'open') return false;
    const s = this.#get(key);
    if (s.probing) return false;
    s.probing = true;
    return true;
  }

  /** Permission whatever the state: the deployment is the only one left (counts as the probe). */
  forceAcquire(key: string): void {
    const s = this.#get(key);
    if (s.openUntil !== 0) s.probing = true;
  }

  success(key: string): void {
    const s = this.#get(key);
    s.failures = 0;
    s.openUntil = 0;
    s.trips = 0;
    s.probing = false;
    s.lastRequest = undefined;
    s.healthyBefore = true;
    s.before = undefined;
  }

  /** A failure that counts against the deployment; `request` identifies the request, so its retries count once. */
  failure(key: string, request?: object): void {
    const s = this.#get(key);
    const wasProbe = s.probing;
    s.probing = false;
    if (request !== undefined && request === s.lastRequest) return;
    s.before = { failures: s.failures, openUntil: s.openUntil, trips: s.trips };
    s.healthyBefore = s.failures === 0 && s.openUntil === 0;
    s.lastRequest = request;
    s.failures++;
    if (wasProbe || s.failures >= this.#threshold) {
      s.trips++;
      const cooldown = this.#cooldown * Math.min(8, 2 ** (s.trips - 1));
      s.openUntil = this.#now() + cooldown;
      this.#onTrip?.(key, cooldown);
    }
  }

  /**
   * Open the breaker for `cooldownMs` from now because another instance tripped it: the same
   * state as a local trip (skipped, then one probe), without telling anyone again. A longer
   * cooldown already running is kept.
   */
  coolDown(key: string, cooldownMs: number): void {
    if (cooldownMs <= 0) return;
    const s = this.#get(key);
    const until = this.#now() + cooldownMs;
    if (until <= s.openUntil) return;
    s.openUntil = until;
    s.trips = Math.max(s.trips, 1);
    s.failures = 0;
    s.probing = false;
  }

  /**
   * Undo the failure `request` counted: its retry failed the same way, and the deployment had
   * been answering before it, so the request itself is the cause. A deployment that was
   * already failing gets no such pardon (a dead server fails every request the same way).
   */
  forgive(key: string, request: object): void {
    const s = this.#states.get(key);
    if (!s || s.lastRequest !== request || !s.before || !s.healthyBefore) return;
    s.failures = s.before.failures;
    s.openUntil = s.before.openUntil;
    s.trips = s.before.trips;
    s.before = undefined;
  }

  /** Give back a permission that was not used to decide anything (an aborted attempt). */
  release(key: string): void {
    const s = this.#states.get(key);
    if (s) s.probing = false;
  }
}
