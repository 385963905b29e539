/**
 * The gateway's admission seam: who is calling (Authenticator -> Principal) and whether this
 * request may go upstream now (Admission -> Ticket, settled exactly once afterwards).
 */
import { SwitchboardError, type ErrorCode } from '../errors.js';
import type { CanonicalRequest, TokenUsage } from '../types.js';

/** Who is calling, once the credential has been checked. Never holds the credential itself. */
export interface Principal {
  kind: 'master' | 'virtual-key';
  /** Public id, e.g. 'sk-sb-ab12cd34' (safe to log). */
  keyId?: string;
  teamId?: string;
  admin: boolean;
  /** Glob patterns over model strings and aliases; undefined = all. */
  allowedModels?: string[];
}

export interface Authenticator {
  /** The credential as sent (Bearer, x-api-key, x-goog-api-key or ?key=); null when not accepted. */
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
  provider?: string;
  resolvedModel?: string;
}

/** One admitted request. settle() is called exactly once, whatever happens. */
export interface Ticket {
  /** Extra response headers (x-ratelimit-*, x-switchboard-budget-remaining). */
  headers: Record<string, string>;
  settle(outcome: SettleOutcome): Promise<void>;
}

export interface Admission {
  /** Throws an AdmissionError (status 403, 429 or 503) to refuse. */
  admit(req: AdmissionRequest): Promise<Ticket>;
}

export interface AdmissionErrorInit {
  status: 403 | 429 | 503;
  /** The wire error type: `insufficient_quota`, `rate_limit_exceeded`, `model_not_allowed`, `store_unavailable`. */
  type: string;
  /** The scope that refused: `key:<id>`, `team:<id>` or `total`. */
  scope?: string;
  retryAfterMs?: number;
  /** When the refusing budget's period resets (ms since the epoch). */
  resetAt?: number;
  headers?: Record<string, string>;
}

const CODE_FOR_STATUS: Record<AdmissionErrorInit['status'], ErrorCode> = { 403: 'permission', 429: 'rate_limit', 503: 'overloaded' };

/** A refused request, rendered by the gateway in the caller's protocol with Retry-After. */
export class AdmissionError extends SwitchboardError {
  readonly status: AdmissionErrorInit['status'];
  readonly type: string;
  readonly scope: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly resetAt: number | undefined;
  /** Headers for the refusal (x-ratelimit-*, Retry-After). */
  readonly headers: Record<string, string>;
  constructor(message: string, init: AdmissionErrorInit) {
    super(CODE_FOR_STATUS[init.status], message, { isRetryable: init.status !== 403 && init.retryAfterMs !== undefined });
    this.status = init.status;
    this.type = init.type;
    this.scope = init.scope;
    this.retryAfterMs = init.retryAfterMs;
    this.resetAt = init.resetAt;
    this.headers = { ...init.headers };
    if (init.retryAfterMs !== undefined) this.headers['retry-after'] = String(Math.max(1, Math.ceil(init.retryAfterMs / 1000)));
  }
}

/** Admits everything; settle records nothing. */
export const openAdmission: Admission = {
  admit: () => Promise.resolve({ headers: {}, settle: () => Promise.resolve() }),
};
