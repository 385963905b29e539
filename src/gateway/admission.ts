/**
 * The gateway's admission seam: who is calling (authentication) and whether this request may
 * go ahead (budgets, rate limits). The gateway ships the master-key authenticator and an open
 * admission that admits everything; virtual keys and budgets plug in behind the same
 * interfaces (docs/gateway.md, "Authentication", says how they are used).
 */
import { hash, timingSafeEqual } from 'node:crypto';
import { SwitchboardError } from '../errors.js';
import type { CanonicalRequest, TokenUsage } from '../types.js';

/** Who is calling, once the credential has been checked. Never holds the credential itself. */
export interface Principal {
  kind: 'master' | 'virtual-key';
  /** Public id, e.g. 'sk-sb-ab12cd' (safe to log). */
  keyId?: string;
  teamId?: string;
  admin: boolean;
  /** Glob patterns over model strings and aliases; undefined = all. */
  allowedModels?: string[];
}

export interface Authenticator {
  /** The credential as sent (Bearer, x-api-key, x-goog-api-key or ?key=; '' when none was sent); null when not accepted. */
  authenticate(credential: string): Promise<Principal | null>;
}

export interface AdmissionRequest {
  principal: Principal;
  /** The model string after alias resolution. */
  model: string;
  request: CanonicalRequest;
  /** The caller's protocol, for messages. */
  protocol: string;
}

export interface SettleOutcome {
  status: 'ok' | 'error' | 'cancelled';
  usage?: TokenUsage;
  /** Exact cost, integer femto-dollars; null = unknown price. */
  costFemto?: bigint | null;
  /** What caching saved (a response-cache hit's price, a prompt cache's discount), femto-dollars. */
  savedFemto?: bigint;
  provider?: string;
  resolvedModel?: string;
}

/** One admitted request. settle() is called exactly once, whatever happens. */
export interface Ticket {
  /** Extra response headers (x-ratelimit-*, x-switchboard-budget-remaining). */
  headers: Record<string, string>;
  settle(outcome: SettleOutcome): Promise<void>;
  /** False when settle() records nothing, so no reply need wait for it; default true. */
  recordsSpend?: boolean;
}

export interface Admission {
  /** Throws an AdmissionError (status 403 or 429 or 503, with retryAfterMs, scope, resetAt) to refuse. */
  admit(req: AdmissionRequest): Promise<Ticket>;
}

/** A refused request: the gateway renders it in the caller's protocol, with Retry-After when given. */
export class AdmissionError extends SwitchboardError {
  readonly status: 403 | 429 | 503;
  readonly retryAfterMs: number | undefined;
  /** Which limit refused it ('key', 'team', 'model', 'gateway' ...). */
  readonly scope: string | undefined;
  /** When the limit resets (ISO time), when known. */
  readonly resetAt: string | undefined;
  /** The OpenAI-style error type and code (`insufficient_quota`, `rate_limit_exceeded`), when it is not the status's usual one. */
  readonly wireType: string | undefined;
  /** Headers for the refusal besides Retry-After (x-ratelimit-*, x-switchboard-budget-remaining). */
  readonly headers: Record<string, string>;
  constructor(
    status: 403 | 429 | 503,
    message: string,
    options: { retryAfterMs?: number; scope?: string; resetAt?: string; wireType?: string; headers?: Record<string, string> } = {},
  ) {
    super(status === 403 ? 'permission' : status === 429 ? 'rate_limit' : 'overloaded', message, { isRetryable: status !== 403 });
    this.status = status;
    this.retryAfterMs = options.retryAfterMs;
    this.scope = options.scope;
    this.resetAt = options.resetAt;
    this.wireType = options.wireType;
    this.headers = options.headers ?? {};
  }
}

/** One call, no Hash object: this runs for every request. */
function digest(text: string): Buffer {
  return hash('sha256', text, 'buffer');
}

/**
 * Accepts exactly one key. Both sides are hashed first so the comparison takes the same time
 * whatever the length or content of what was sent.
 */
export function masterKeyAuthenticator(masterKey: string): Authenticator {
  const expected = digest(masterKey);
  const principal: Principal = { kind: 'master', keyId: 'master', admin: true };
  return {
    authenticate(credential: string): Promise<Principal | null> {
      return Promise.resolve(credential !== '' && timingSafeEqual(digest(credential), expected) ? principal : null);
    },
  };
}

/** Admits every caller (no master key configured): the gateway is open, and says so when it starts. */
export const openAuthenticator: Authenticator = {
  authenticate: () => Promise.resolve({ kind: 'master', keyId: 'open', admin: true }),
};

const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const OPEN_TICKET: Ticket = { headers: NO_HEADERS, settle: () => Promise.resolve(), recordsSpend: false };

/** Admits everything; settling writes nothing (the request log is written by the gateway itself). */
export const openAdmission: Admission = {
  admit: () => Promise.resolve(OPEN_TICKET),
};

/** Whether a model string is allowed by a principal's glob patterns (`*` matches any run of characters). */
export function modelAllowed(principal: Principal, model: string, alias?: string): boolean {
  const patterns = principal.allowedModels;
  if (patterns === undefined) return true;
  return patterns.some((p) => globMatch(p, model) || (alias !== undefined && globMatch(p, alias)));
}

function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(text);
}
