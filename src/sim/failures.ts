/**
 * Injected failures for providers with a failure rate (sim-flaky by default). Each request
 * to such a provider draws from that provider's own seeded PRNG, so a run of requests fails
 * the same way every time, whatever other providers are doing meanwhile.
 */
import { createRng, hashString, pick, type Rng } from './random.js';

/**
 * HTTP 500; HTTP 429 with Retry-After; a stream (or body) cut off midway with no terminator;
 * and, when asked for by name, overload (Anthropic's 529 `overloaded_error`, 503 elsewhere)
 * and an error event inside a 200 stream (a body that is not streamed gets a 500 instead).
 */
export type SimFailureKind = 'server-error' | 'rate-limit' | 'cut-stream' | 'overloaded' | 'stream-error';
/** The kinds a failing request picks from by default. */
export const SIM_FAILURE_KINDS: readonly SimFailureKind[] = ['server-error', 'rate-limit', 'cut-stream'];
/** Every kind there is, for validating options. */
export const ALL_SIM_FAILURE_KINDS: readonly SimFailureKind[] = [...SIM_FAILURE_KINDS, 'overloaded', 'stream-error'];

export type SimFailure =
  | { kind: 'server-error' }
  | { kind: 'rate-limit' }
  | { kind: 'overloaded' }
  /** The connection is destroyed (cut-stream), or an error event is sent (stream-error), after `afterTokens` content tokens. */
  | { kind: 'cut-stream' | 'stream-error'; afterTokens: number };

export class FailureInjector {
  private readonly rngs = new Map<string, Rng>();

  constructor(
    private readonly seed: number,
    private readonly kinds: readonly SimFailureKind[] = SIM_FAILURE_KINDS,
  ) {
    if (kinds.length === 0) throw new Error('failure kinds must not be empty');
  }

  /** Decide whether this request fails; `tokens` is the length of the reply it would get. */
  decide(provider: string, failRate: number, tokens: number): SimFailure | undefined {
    if (!(failRate > 0)) return undefined;
    let rng = this.rngs.get(provider);
    if (!rng) {
      rng = createRng(hashString(`${this.seed}:${provider}`));
      this.rngs.set(provider, rng);
    }
    // Always draw the same number of values per request so one outcome never shifts the next.
    const roll = rng();
    const kind = pick(rng, this.kinds);
    const cutRoll = rng();
    if (roll >= failRate) return undefined;
    if (kind !== 'cut-stream' && kind !== 'stream-error') return { kind };
    // Cut somewhere strictly inside the reply: at least one token, never all of them.
    return { kind, afterTokens: tokens <= 1 ? 0 : 1 + Math.floor(cutRoll * (tokens - 1)) };
  }
}
