/**
 * Simulators for the official-SDK tests: one where a provider fails every request in one
 * chosen way, and one where its first request fails and the next succeeds (for checking that
 * an SDK's own retry honours Retry-After).
 */
import { FailureInjector, type SimFailureKind } from '../../src/sim/failures.js';
import { startSimulator, type RunningSimulator } from '../../src/sim/server.js';

/** A simulator where every request to `provider` fails with `kind`. */
export async function failingSimulator(provider: string, kind: SimFailureKind): Promise<RunningSimulator> {
  const sim = await startSimulator({ failureKinds: [kind] });
  sim.setProviderProfile(provider, { failRate: 1 });
  return sim;
}

/** A seed whose first request to `provider` fails (at a 50 % rate) and whose second does not. */
function failThenPassSeed(provider: string, kind: SimFailureKind): number {
  for (let seed = 1; ; seed++) {
    const injector = new FailureInjector(seed, [kind]);
    if (injector.decide(provider, 0.5, 10) && !injector.decide(provider, 0.5, 10)) return seed;
  }
}

/** A simulator whose first request to `provider` fails with `kind` and whose second succeeds. */
export async function failOnceSimulator(provider: string, kind: SimFailureKind): Promise<RunningSimulator> {
  const sim = await startSimulator({ failureKinds: [kind], seed: failThenPassSeed(provider, kind) });
  sim.setProviderProfile(provider, { failRate: 0.5 });
  return sim;
}

/** The real fetch, counting the requests that go through it. */
export function countingFetch(): { fetch: typeof fetch; count: () => number } {
  let n = 0;
  return {
    fetch: (input, init) => {
      n++;
      return fetch(input, init);
    },
    count: () => n,
  };
}
