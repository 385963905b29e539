/**
 * Typed errors. Every error switchboard raises is a SwitchboardError with a stable `code`.
 * Errors from a provider carry the HTTP status, the provider's own message and whether a
 * retry may help; `isRetryable` is decided once, in the constructor, from the status.
 * No message ever contains an API key: messages pass through `redactSecrets`.
 */

const registeredSecrets = new Set<string>();

/** URLs already redacted (the transport redacts the same few on every request); emptied when a secret is added. */
const redactedURLs = new Map<string, string>();
const REDACTED_URLS_KEPT = 1000;

/** Remember a secret (an API key) so that it is scrubbed from every error message. */
export function registerSecret(secret: string | undefined): void {
  if (secret && secret.length >= 6 && !registeredSecrets.has(secret)) {
    registeredSecrets.add(secret);
    redactedURLs.clear();
  }
}

/** Key shapes, and places a credential sits in (a captured prefix is kept, the rest redacted). */
const KEY_PATTERNS: RegExp[] = [
  /\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}/g, // OpenAI, Anthropic (sk-ant-...), OpenRouter (sk-or-...)
  /\bAIza[0-9A-Za-z_-]{20,}/g, // Google API keys
  /\b(gsk|xai|fw|csk)_[A-Za-z0-9]{8,}/g, // Groq, xAI, Fireworks, Cerebras
];
const CREDENTIAL_PLACES: RegExp[] = [
  /(Bearer\s+)[A-Za-z0-9._~+/-]{8,}=*/gi,
  /(Basic\s+)[A-Za-z0-9+/]{6,}=*/gi,
  // Query parameters that carry credentials (Gemini's `?key=`, `?api_key=`, signed URLs).
  /([?&](?:key|api[-_]?key|apikey|token|access[-_]?token|auth|password|secret|sig|signature)=)[^&#\s"']+/gi,
  // Credentials in a URL's user-info (`https://user:secret@host`).
  /(\b[a-z][a-z0-9+.-]*:\/\/)[^\s/@:"']*:[^\s/@"']+(?=@)/gi,
];

/** Remove API keys (registered ones and anything shaped like a key) from a text. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const secret of registeredSecrets) {
    if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  }
  for (const pattern of KEY_PATTERNS) out = out.replace(pattern, '[redacted]');
  for (const pattern of CREDENTIAL_PLACES) out = out.replace(pattern, (_match, prefix: string) => `${prefix}[redacted]`);
  return out;
}

/** A URL fit to print or store: no user-info at all, credential query parameters and known secrets redacted. */
export function redactURL(url: string): string {
  let safe = redactedURLs.get(url);
  if (safe === undefined) {
    safe = redactSecrets(url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@?#\s]*@/i, '$1'));
    if (redactedURLs.size >= REDACTED_URLS_KEPT) redactedURLs.clear();
    redactedURLs.set(url, safe);
  }
  return safe;
}

export type ErrorCode =
  | 'authentication'
  | 'permission'
  | 'rate_limit'
  | 'bad_request'
  | 'not_found'
  | 'server'
  | 'overloaded'
  | 'timeout'
  | 'aborted'
  | 'network'
  | 'protocol'
  | 'missing_key'
  | 'model_string'
  | 'unknown_provider'
  | 'config'
  | 'invalid_input'
  | 'invalid_history'
  | 'context_length'
  | 'output_limit'
  | 'no_deployment'
  | 'validation';

export class SwitchboardError extends Error {
  readonly code: ErrorCode;
  /** Whether trying the same request again may succeed. */
  readonly isRetryable: boolean;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; isRetryable?: boolean }) {
    super(redactSecrets(message), options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.isRetryable = options?.isRetryable ?? false;
  }
}

export interface APIErrorInit {
  status: number;
  provider: string;
  /** The provider's own error message, as it sent it. */
  providerMessage: string;
  url?: string;
  /** Milliseconds to wait before retrying, from `Retry-After` or the provider's body. */
  retryAfterMs?: number;
  /** The provider's error type, e.g. `overloaded_error`, `RESOURCE_EXHAUSTED`. */
  providerCode?: string;
}

/** An error response from a provider: HTTP status and the provider's message. */
export class APIError extends SwitchboardError {
  readonly status: number;
  readonly provider: string;
  readonly providerMessage: string;
  readonly providerCode: string | undefined;
  readonly url: string | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(code: ErrorCode, init: APIErrorInit, message?: string) {
    const text = message ?? `${init.provider} answered ${init.status}: ${init.providerMessage}`;
    super(code, text, { isRetryable: isRetryableStatus(init.status) });
    this.status = init.status;
    this.provider = init.provider;
    this.providerMessage = redactSecrets(init.providerMessage);
    this.providerCode = init.providerCode;
    this.url = init.url === undefined ? undefined : redactSecrets(init.url);
    this.retryAfterMs = init.retryAfterMs;
  }
}

export class AuthenticationError extends APIError {
  constructor(init: APIErrorInit) {
    super('authentication', init, `${init.provider} rejected the API key (${init.status}): ${init.providerMessage}`);
  }
}
export class PermissionError extends APIError {
  constructor(init: APIErrorInit) {
    super('permission', init);
  }
}
export class RateLimitError extends APIError {
  constructor(init: APIErrorInit) {
    const wait = init.retryAfterMs === undefined ? '' : ` (retry after ${Math.ceil(init.retryAfterMs / 1000)} s)`;
    super('rate_limit', init, `${init.provider} is rate limiting requests${wait}: ${init.providerMessage}`);
  }
}
export class BadRequestError extends APIError {
  constructor(init: APIErrorInit) {
    super('bad_request', init);
  }
}
export class NotFoundError extends APIError {
  constructor(init: APIErrorInit) {
    super('not_found', init);
  }
}
export class ServerError extends APIError {
  constructor(init: APIErrorInit, code: 'server' | 'overloaded' = 'server') {
    super(code, init);
  }
}

/** Statuses worth retrying: timeouts, conflicts, rate limits and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** 403 answers that mean the credentials themselves were refused (AWS: a bad signature, an unknown or expired key). */
const CREDENTIAL_REFUSALS = new Set([
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'UnrecognizedClientException',
  'ExpiredTokenException',
  'MissingAuthenticationTokenException',
]);

/** Build the typed error that fits an HTTP status. */
export function apiErrorFromStatus(init: APIErrorInit): APIError {
  const { status } = init;
  if (status === 401 || (status === 403 && CREDENTIAL_REFUSALS.has(init.providerCode ?? ''))) return new AuthenticationError(init);
  if (status === 403) return new PermissionError(init);
  if (status === 404) return new NotFoundError(init);
  if (status === 429) return new RateLimitError(init);
  if (status === 529 || init.providerCode === 'overloaded_error') return new ServerError(init, 'overloaded');
  if (status >= 500) return new ServerError(init);
  return new BadRequestError(init);
}

export class TimeoutError extends SwitchboardError {
  constructor(message: string) {
    super('timeout', message, { isRetryable: true });
  }
}
export class AbortError extends SwitchboardError {
  constructor(message = 'The request was aborted.') {
    super('aborted', message);
  }
}
export class NetworkError extends SwitchboardError {
  constructor(message: string, cause?: unknown) {
    super('network', message, { cause, isRetryable: true });
  }
}
/** The provider answered something that is not its protocol: HTML, bad JSON, a cut stream. */
export class ProtocolError extends SwitchboardError {
  readonly url: string | undefined;
  constructor(message: string, options?: { url?: string; isRetryable?: boolean; cause?: unknown }) {
    super('protocol', message, { isRetryable: options?.isRetryable ?? false, cause: options?.cause });
    this.url = options?.url;
  }
}
/** An error event sent inside a 200 stream. */
export class StreamError extends APIError {}

export class MissingKeyError extends SwitchboardError {
  readonly provider: string;
  readonly envVar: string;
  constructor(provider: string, envVar: string) {
    super(
      'missing_key',
      `No API key for ${provider}: set the ${envVar} environment variable (or put it in .env), or pass apiKey.`,
    );
    this.provider = provider;
    this.envVar = envVar;
  }
}
/**
 * A cloud provider's credentials are missing or unusable (no AWS keys, an unreadable
 * service-account file, a token exchange refused). The message names what to set, never a secret.
 */
export class MissingCredentialsError extends SwitchboardError {
  readonly provider: string;
  constructor(provider: string, message: string, cause?: unknown) {
    super('missing_key', message, { cause });
    this.provider = provider;
  }
}
export class ModelStringError extends SwitchboardError {
  readonly input: string;
  readonly position: number | undefined;
  constructor(input: string, message: string, position?: number) {
    const pointer =
      position === undefined ? '' : `\n  ${input}\n  ${' '.repeat(Math.max(0, position))}^`;
    super('model_string', `Invalid model string "${input}": ${message}${pointer}`);
    this.input = input;
    this.position = position;
  }
}
export class UnknownProviderError extends SwitchboardError {
  readonly provider: string;
  /** The closest modes or providers, e.g. `did you mean "lowest-cost"?` ('' when none is close). */
  readonly suggestion: string;
  /**
   * `modes` is given where a routing mode could stand (after `@` in a model string): the
   * message then lists the modes too.
   */
  constructor(provider: string, known: string[], options: { suggestion?: string; modes?: readonly string[] } = {}) {
    const what = options.modes ? 'provider or mode' : 'provider';
    const suggestion = options.suggestion ?? '';
    const modes = options.modes ? ` Modes: ${options.modes.join(', ')}.` : '';
    super('unknown_provider', `Unknown ${what} "${provider}"${suggestion ? `; ${suggestion}` : '.'}${modes} Providers: ${known.join(', ')}.`);
    this.provider = provider;
    this.suggestion = suggestion;
  }
}
export class ConfigError extends SwitchboardError {
  constructor(message: string) {
    super('config', message);
  }
}
export class InvalidInputError extends SwitchboardError {
  constructor(message: string) {
    super('invalid_input', message);
  }
}
export class InvalidHistoryError extends SwitchboardError {
  constructor(message: string) {
    super('invalid_history', message);
  }
}

/**
 * The conversation needs more tokens than the model's context holds: found before sending
 * (from the catalog or the local server's own figure), or reported by the server.
 */
export class ContextLengthError extends SwitchboardError {
  /** Tokens of the messages (estimated, or as the server counted them) plus the reply's reserve. */
  readonly requiredTokens: number;
  readonly contextLength: number;
  /** The provider that refused the prompt, when it was the server that said so. */
  readonly provider: string | undefined;
  constructor(requiredTokens: number, contextLength: number, detail = '', provider?: string) {
    super(
      'context_length',
      `The conversation needs about ${requiredTokens} tokens (with the reply's reserve) but the model's context holds ${contextLength}${detail}.`,
    );
    this.requiredTokens = requiredTokens;
    this.contextLength = contextLength;
    this.provider = provider;
  }
}

/**
 * The reply reached its output limit (`maxTokens`, or the server's) in the middle of a tool
 * call: the call's arguments are cut off, so it is neither run nor kept in the history.
 */
export class OutputLimitError extends SwitchboardError {
  /** The model string that answered. */
  readonly model: string;
  /** The tools whose calls were cut off. */
  readonly tools: string[];
  constructor(model: string, tools: string[]) {
    super(
      'output_limit',
      `${model} reached its output limit in the middle of a call to ${tools.join(', ')}; the incomplete call was not run. Raise maxTokens (or the server's limit) and ask again.`,
    );
    this.model = model;
    this.tools = tools;
  }
}

/** A reply that did not satisfy the requested schema, even after one retry with the validation error. */
export class StructuredOutputError extends SwitchboardError {
  /** The model string that answered. */
  readonly model: string;
  /** The raw text of the last reply. */
  readonly text: string;
  /** What was wrong with it (JSON parse error or schema violations). */
  readonly issues: string;
  constructor(model: string, text: string, issues: string) {
    super('validation', `${model} did not return JSON matching the schema (after one retry): ${issues}`);
    this.model = model;
    this.text = text;
    this.issues = issues;
  }
}
