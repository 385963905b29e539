/**
 * The live provider profiles of one running simulator. They start as the built-in
 * profiles (with the `failRate` option applied) and can be changed while the simulator
 * runs, for routing experiments: make a provider slow, expensive or unreliable and watch
 * the router react.
 */
import { SIM_PROVIDERS, type SimProviderProfile } from './profiles.js';

const NUMERIC_FIELDS = ['ttftMs', 'tokensPerSecond', 'inputPrice', 'outputPrice', 'cacheReadPrice', 'cacheWritePrice', 'cacheWrite1hPrice', 'failRate'] as const;

export class ProfileStore {
  private profiles = new Map<string, SimProviderProfile>();
  private readonly initial: Map<string, SimProviderProfile>;

  /** `failRate` overrides the rate of every provider that has one (sim-flaky). */
  constructor(failRate?: number) {
    this.initial = new Map(
      Object.entries(SIM_PROVIDERS).map(([name, profile]) => [
        name,
        profile.failRate !== undefined && failRate !== undefined ? { ...profile, failRate } : { ...profile },
      ]),
    );
    this.reset();
  }

  get(name: string): SimProviderProfile | undefined {
    return this.profiles.get(name);
  }

  names(): string[] {
    return [...this.profiles.keys()];
  }

  all(): Record<string, SimProviderProfile> {
    return Object.fromEntries([...this.profiles].map(([name, p]) => [name, { ...p }]));
  }

  /** Change some fields of a provider's profile; returns the profile now in force. */
  set(name: string, partial: Partial<SimProviderProfile>): SimProviderProfile {
    const current = this.profiles.get(name);
    if (!current) throw new Error(`unknown simulated provider "${name}"; known: ${this.names().join(', ')}`);
    const problem = validatePartial(partial);
    if (problem) throw new Error(problem);
    const next: SimProviderProfile = { ...current };
    for (const field of NUMERIC_FIELDS) {
      const value = partial[field];
      if (value !== undefined) next[field] = value;
    }
    if (partial.protocol !== undefined && partial.protocol !== current.protocol) {
      throw new Error(`the protocol of "${name}" is fixed (${current.protocol}); clients address it by URL`);
    }
    this.profiles.set(name, next);
    return { ...next };
  }

  reset(): void {
    this.profiles = new Map([...this.initial].map(([name, p]) => [name, { ...p }]));
  }
}

/** Why a partial profile (from user code or an HTTP body) is unusable, or undefined if fine. */
export function validatePartial(partial: unknown): string | undefined {
  if (typeof partial !== 'object' || partial === null || Array.isArray(partial)) return 'a profile must be a JSON object';
  const record = partial as Record<string, unknown>;
  const known = new Set<string>([...NUMERIC_FIELDS, 'protocol']);
  for (const [key, value] of Object.entries(record)) {
    if (!known.has(key)) return `unknown profile field "${key}"; known: ${[...known].join(', ')}`;
    if (key === 'protocol') continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return `${key} must be a non-negative number`;
    if (key === 'tokensPerSecond' && value === 0) return 'tokensPerSecond must be greater than 0';
    if (key === 'failRate' && value > 1) return 'failRate must be between 0 and 1';
  }
  return undefined;
}
