/**
 * The gateway: one node:http server that speaks the OpenAI, Anthropic and Gemini APIs at
 * once and puts the library's Router behind them.
 *
 * A request goes: a browser's CORS preflight, answered at once when the config has `cors`
 * (cors.ts) -> in-flight limit (503 past it) -> endpoint by path -> credential (master or
 * virtual key) -> body (size limit, JSON) -> the caller's server half parses it (4xx in the
 * caller's own shape) -> model name to model string (aliases, groups, fallbacks) -> checks
 * (model string, media) -> admission -> proxy.ts (router, streaming) -> metrics, one JSON log
 * line, one request-log row, the admission's settle.
 *
 * `reload()` swaps the configuration between requests: a request in flight keeps the one it
 * started with. `shutdown()` stops accepting, lets requests in flight finish up to a
 * deadline, then aborts the rest.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { estimateTokens } from '../catalog/context.js';
import { APIError, MissingKeyError, ServerError, SwitchboardError, redactSecrets } from '../errors.js';
import { getProtocolServer } from '../protocols/index.js';
import { statelessRefusal } from '../protocols/openai-responses-server.js';
import { createPooledFetch } from '../protocols/pooled-fetch.js';
import { WireRequestError, type ProtocolServer, type ServerProtocolName, type ServerRequest } from '../protocols/protocol.js';
import { ProviderRegistry } from '../providers/registry.js';
import { checkModelString, defaultMetricsStore, defaultPriorStore, type RouteOptions } from '../routing/router.js';
import type { ConversationLog, RequestRecord } from '../store/conversation-log.js';
import type { Ledger } from '../store/ledger.js';
import { countRedisInto, traceRedis } from '../store/redis-trace.js';
import { femtoToDollars } from '../money.js';
import type { Message } from '../types.js';
import type { CacheStore } from '../cache/store.js';
import type { AdminHandler } from './admin-api.js';
import { AdmissionError, masterKeyAuthenticator, modelAllowed, openAdmission, openAuthenticator, type Admission, type Authenticator, type Principal, type Ticket } from './admission.js';
import type { GatewayConfig } from './config.js';
import { ConsoleAssets } from './console-assets.js';
import { createConsoleApi, type ConsoleApi } from './console-api.js';
import { CorsPolicy, isPreflight, pageMayCall } from './cors.js';
import { clientError, credentialOf, decodePathPart, isJsonContentType, parseJsonBody, readBody, requestIdOf, responseId } from './http.js';
import { GatewayMetrics } from './metrics.js';
import { listedModels, routeModelFor } from './models.js';
import { proxyModelRequest, type ProxyOutcome } from './proxy.js';
import { RequestLogWriter } from './request-log.js';
import { GatewayResponseCache, type CacheLookup } from './response-cache.js';

export interface GatewayOptions {
  config: GatewayConfig;
  /** Who may call; default: the config's master key, or everyone when it has none. */
  authenticator?: Authenticator | undefined;
  /** Budgets and rate limits; default: admit everything. */
  admission?: Admission | undefined;
  /** The request log (the CLI's conversation log); false for none. Default: none. */
  requestLog?: ConversationLog | false | undefined;
  /** Where the one-line JSON access log goes (default: stdout, batched). */
  accessLog?: ((lines: string) => void) | undefined;
  /** Warnings and reload messages (default: stderr). */
  warn?: ((message: string) => void) | undefined;
  /** Random source for weighted model groups. */
  random?: (() => number) | undefined;
  /** The admin API, mounted under /admin/ (see admin-api.ts); callers authenticate as for models. */
  admin?: AdminHandler | undefined;
  /** Whether the stores behind admission answer; /readyz reports it and fails when `ready` is false. */
  readiness?: (() => { ready: boolean; detail: Record<string, unknown> }) | undefined;
  /** The spend ledger, for the console's spend endpoint (console-api.ts); its budgets' time zone. */
  ledger?: Ledger | undefined;
  timeZone?: string | undefined;
  /** The console's built files (default: dist/console); false serves no console. */
  console?: ConsoleAssets | false | undefined;
  /** The response cache's store when it is shared (Redis); default: the config's memory or SQLite store. */
  cacheStore?: CacheStore | undefined;
  /**
   * The text of `GET /metrics` when this process is one of several (`serve --workers N`):
   * the whole server's series, summed in the primary (cluster-metrics.ts). Default: this process's.
   */
  metricsText?: (() => Promise<string>) | undefined;
  /** This process's metrics registry (default: a new one). */
  metrics?: GatewayMetrics | undefined;
}

interface Serving {
  config: GatewayConfig;
  registry: ProviderRegistry;
  authenticator: Authenticator;
  routeOptions: Omit<RouteOptions, 'signal' | 'collected'>;
  /** Model strings this configuration has already found valid (checkModelString), so each is checked once. */
  checkedModels: Set<string>;
  /** The config's `cors` rules; undefined (no CORS headers, OPTIONS refused as before) without one. */
  cors: CorsPolicy | undefined;
  /** No master key and no custom authenticator: any caller is served (cors.ts pageMayCall). */
  open: boolean;
}

/** Past this many distinct model strings the set of checked ones starts again. */
const CHECKED_MODELS_KEPT = 10_000;

type EndpointKind = 'generate' | 'count' | 'models';
interface Matched {
  protocol: ServerProtocolName;
  kind: EndpointKind;
  pathModel?: string;
  pathStream?: boolean;
}

const GEMINI_PATH = /^\/v1(?:beta)?\/models\/(.+):(generateContent|streamGenerateContent|countTokens)$/;

/** Which endpoint a method and path name; undefined when none. */
function matchEndpoint(method: string, path: string, req: IncomingMessage): Matched | undefined {
  if (method === 'POST') {
    if (path === '/v1/chat/completions') return { protocol: 'openai', kind: 'generate' };
    if (path === '/v1/responses') return { protocol: 'openai-responses', kind: 'generate' };
    if (path === '/v1/responses/input_tokens') return { protocol: 'openai-responses', kind: 'count' };
    if (path === '/v1/messages') return { protocol: 'anthropic', kind: 'generate' };
    if (path === '/v1/messages/count_tokens') return { protocol: 'anthropic', kind: 'count' };
    const g = GEMINI_PATH.exec(path);
    const model = g ? decodePathPart(g[1] as string) : undefined;
    if (g && model !== undefined) {
      if (g[2] === 'countTokens') return { protocol: 'gemini', kind: 'count', pathModel: model };
      return { protocol: 'gemini', kind: 'generate', pathModel: model, pathStream: g[2] === 'streamGenerateContent' };
    }
    return undefined;
  }
  if (method === 'GET') {
    if (path === '/v1/models') return { protocol: req.headers['anthropic-version'] !== undefined ? 'anthropic' : 'openai', kind: 'models' };
    if (path === '/v1beta/models') return { protocol: 'gemini', kind: 'models' };
  }
  return undefined;
}

/** The method a path is served with (what a preflight may ask for); undefined when it is no endpoint. */
function methodServed(path: string, req: IncomingMessage): 'POST' | 'GET' | undefined {
  if (matchEndpoint('POST', path, req)) return 'POST';
  if (matchEndpoint('GET', path, req)) return 'GET';
  return undefined;
}

/** The protocol a request most likely speaks, for answering one that matched no endpoint. */
function guessProtocol(path: string, req: IncomingMessage): ServerProtocolName {
  if (req.headers['anthropic-version'] !== undefined || path.startsWith('/v1/messages')) return 'anthropic';
  if (path.startsWith('/v1beta') || req.headers['x-goog-api-key'] !== undefined) return 'gemini';
  return 'openai';
}

/** Media may be data: URIs or http(s) URLs; local paths and file:// are refused. */
function checkMedia(messages: readonly Message[]): void {
  for (const m of messages) {
    if (m.role !== 'user' || typeof m.content === 'string') continue;
    for (const part of m.content) {
      const ref = part.type === 'image_url' ? part.image_url.url : part.type === 'file' ? part.file.file_data : undefined;
      if (ref !== undefined && !/^(data:|https?:\/\/)/i.test(ref)) {
        throw clientError(400, `Media must be an http(s) URL or a base64 data: URI; "${ref.slice(0, 40)}" is neither (the gateway never reads local files).`);
      }
    }
  }
}

/** The last user message's text, for the request log when content logging is on. */
function lastUserText(messages: readonly Message[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as Message;
    if (m.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    return m.content.map((p) => (p.type === 'text' ? p.text : `[${p.type}]`)).join(' ');
  }
  return '';
}

/** A model string the router cannot run, said in the caller's terms. */
function modelError(err: unknown, name: string): SwitchboardError {
  if (err instanceof MissingKeyError) {
    return new ServerError({ status: 503, provider: 'gateway', providerMessage: `The model "${name}" is not available on this gateway: ${err.message}` });
  }
  if (err instanceof SwitchboardError) {
    const status = err.code === 'unknown_provider' ? 404 : 400;
    return new APIError(status === 404 ? 'not_found' : 'bad_request', { status, provider: 'gateway', providerMessage: err.message });
  }
  return clientError(400, `The model "${name}" cannot be used: ${String(err)}`);
}

/** How long a finished reply's last bytes wait for its spend to be recorded (a slow store delays no reply longer). */
const SETTLE_BEFORE_END_MS = 250;

/** Wait for `promise`, but no longer than `ms`. */
function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

export class Gateway {
  readonly server: Server;
  readonly metrics: GatewayMetrics;
  #serving: Serving;
  readonly #admission: Admission;
  readonly #admin: AdminHandler | undefined;
  readonly #consoleApi: ConsoleApi;
  readonly #console: ConsoleAssets | undefined;
  readonly #readiness: GatewayOptions['readiness'];
  readonly #metricsText: GatewayOptions['metricsText'];
  readonly #customAuthenticator: Authenticator | undefined;
  readonly #requestLog: RequestLogWriter | undefined;
  readonly #warn: (message: string) => void;
  readonly #random: () => number;
  readonly #accessLog: ((lines: string) => void) | undefined;
  #accessBuffer = '';
  #accessTimer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #draining = false;
  #idle: (() => void) | undefined;
  readonly #active = new Set<ServerResponse>();
  readonly #sockets = new Set<Socket>();
  /** Upstream connections, pooled per origin for every request and every configuration. */
  readonly #fetch = createPooledFetch();
  readonly #cache: GatewayResponseCache;

  constructor(options: GatewayOptions) {
    this.#warn = options.warn ?? ((m) => process.stderr.write(`switchboard serve: ${m}\n`));
    this.#customAuthenticator = options.authenticator;
    this.#admission = options.admission ?? openAdmission;
    this.#admin = options.admin;
    this.#readiness = options.readiness;
    this.metrics = options.metrics ?? new GatewayMetrics();
    countRedisInto({
      requestCommands: this.metrics.redisCommands.cell({ path: 'request' }),
      requestRoundTrips: this.metrics.redisRoundTrips.cell(),
      backgroundCommands: this.metrics.redisCommands.cell({ path: 'background' }),
    });
    this.#metricsText = options.metricsText;
    this.#random = options.random ?? Math.random;
    this.#serving = this.#servingFor(options.config);
    this.#cache = new GatewayResponseCache(options.config, options.cacheStore, this.#warn);
    const accessEnabled = options.config.logging.accessLog;
    this.#accessLog = accessEnabled ? (options.accessLog ?? ((lines) => process.stdout.write(lines))) : undefined;
    this.#requestLog = options.requestLog ? new RequestLogWriter(options.requestLog, this.#warn) : undefined;
    this.#consoleApi = createConsoleApi({
      config: () => this.#serving.config,
      logPath: options.requestLog ? options.requestLog.path : undefined,
      ledger: options.ledger,
      timeZone: options.timeZone,
    });
    this.#console = options.console === false ? undefined : (options.console ?? new ConsoleAssets());
    this.server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
      traceRedis(() => this.#handle(req, res)).catch((err: unknown) => {
        this.#warn(`internal error: ${redactSecrets(err instanceof Error ? (err.stack ?? err.message) : String(err))}`);
        if (!res.headersSent) {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          this.#serving.cors?.addResponseHeaders(headers, req.headers.origin);
          res.writeHead(500, headers);
          res.end('{"error":{"message":"internal gateway error","type":"server_error"}}');
        } else res.destroy();
      });
    });
    this.server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  get config(): GatewayConfig {
    return this.#serving.config;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  #servingFor(config: GatewayConfig): Serving {
    const registry = new ProviderRegistry();
    for (const p of config.providers) registry.register(p);
    const authenticator = this.#customAuthenticator ?? (config.masterKey ? masterKeyAuthenticator(config.masterKey) : openAuthenticator);
    const cors = config.cors ? new CorsPolicy(config.cors) : undefined;
    if (cors?.anyOrigin && authenticator === openAuthenticator) {
      this.#warn("cors.origins is '*' and there is no master key: any web page a visitor opens can use this gateway's models");
    }
    const retry: NonNullable<RouteOptions['retry']> = {};
    if (config.routing.maxRetries !== undefined) retry.maxRetries = config.routing.maxRetries;
    if (config.routing.retriesBeforeFallback !== undefined) retry.retriesBeforeFallback = config.routing.retriesBeforeFallback;
    return {
      config,
      registry,
      authenticator,
      checkedModels: new Set(),
      cors,
      open: authenticator === openAuthenticator,
      routeOptions: {
        registry,
        env: config.env,
        // Looked up once per configuration rather than on every request.
        metrics: defaultMetricsStore(config.env),
        priors: defaultPriorStore(config.env),
        retry,
        onUnavailable: config.routing.onUnavailable,
        // The request timeout (limits) is kept by the proxy with the controller it has anyway.
        deadlineMs: config.routing.deadlineMs,
        attemptTimeoutMs: config.routing.attemptTimeoutMs,
        endpoints: new Map(),
      },
    };
  }

  /** Serve a new configuration from the next request on; requests in flight keep theirs. */
  reload(config: GatewayConfig): void {
    this.#serving = this.#servingFor(config);
    this.#cache.configure(config);
    this.metrics.reloads.inc({ result: 'ok' });
  }

  /** Count a refused reload (the old configuration stays). */
  reloadFailed(message: string): void {
    this.metrics.reloads.inc({ result: 'refused' });
    this.#warn(`the new configuration was refused, the old one stays: ${message}`);
  }

  async listen(port = this.config.port, host = this.config.host): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${shownHost}:${address.port}`;
  }

  /**
   * Stop accepting, wait for requests in flight up to `deadlineMs`, abort what is left, flush
   * the logs and close.
   */
  async shutdown(deadlineMs = this.config.limits.drainTimeoutMs): Promise<{ drained: boolean; aborted: number }> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    let drained = true;
    if (this.#inFlight > 0) {
      drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), deadlineMs);
        this.#idle = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
    }
    const aborted = this.#active.size;
    for (const res of this.#active) res.destroy();
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    this.#flushAccessLog();
    await this.#requestLog?.close();
    await this.#cache.close();
    return { drained, aborted };
  }

  #log(entry: Record<string, unknown>): void {
    if (!this.#accessLog) return;
    this.#accessBuffer += `${JSON.stringify(entry)}\n`;
    if (this.#accessBuffer.length > 65_536) this.#flushAccessLog();
    else if (!this.#accessTimer) {
      this.#accessTimer = setTimeout(() => this.#flushAccessLog(), 100);
      this.#accessTimer.unref();
    }
  }

  #flushAccessLog(): void {
    if (this.#accessTimer) clearTimeout(this.#accessTimer);
    this.#accessTimer = undefined;
    if (this.#accessBuffer === '' || !this.#accessLog) return;
    const lines = this.#accessBuffer;
    this.#accessBuffer = '';
    this.#accessLog(lines);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = performance.now();
    const requestId = requestIdOf(req);
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const method = req.method ?? 'GET';

    if (method === 'GET' && (path === '/healthz' || path === '/readyz' || path === '/metrics')) {
      this.#operations(path, res, requestId);
      return;
    }

    if ((method === 'GET' || method === 'HEAD') && this.#console?.handles(path)) {
      this.#console.serve(req, res, path);
      return;
    }

    if (path.startsWith('/admin/')) {
      await this.#adminRequest(req, res, path, q < 0 ? new URLSearchParams() : new URLSearchParams(rawUrl.slice(q + 1)), requestId);
      return;
    }

    // One configuration for the whole request, preflight included.
    const serving = this.#serving;
    const headers: Record<string, string> = { 'x-request-id': requestId };
    if (serving.cors) {
      const allowedMethod = method === 'OPTIONS' && isPreflight(req.headers) ? methodServed(path, req) : undefined;
      if (allowedMethod) {
        this.#preflight(serving.cors, req, res, allowedMethod, path, headers);
        return;
      }
      serving.cors.addResponseHeaders(headers, req.headers.origin);
    }

    let matched = matchEndpoint(method, path, req);
    let server: ProtocolServer;
    try {
      server = getProtocolServer(matched?.protocol ?? guessProtocol(path, req));
    } catch {
      // A protocol without a server half in this build: answered in the OpenAI shape.
      server = getProtocolServer('openai');
      matched = undefined;
    }
    if (this.#draining) headers.connection = 'close';
    const logBase = { request_id: requestId, method, path, protocol: server.name };

    const refuse = (err: SwitchboardError | WireRequestError, reason: string, extra: Record<string, unknown> = {}): void => {
      const answer = server.writeError(err);
      const body = JSON.stringify(answer.body);
      const extraHeaders = err instanceof AdmissionError ? err.headers : undefined;
      // A body that did not arrive in time will not be read to its end (a client trickling it
      // is not worth the wait): the connection closes once the answer is out. Other refusals
      // keep it, their unread rest drained, so a client still uploading can read the answer.
      if (answer.status === 408) res.setHeader('connection', 'close');
      res.writeHead(answer.status, { ...headers, ...extraHeaders, ...answer.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
      this.metrics.rejected.inc({ reason });
      this.metrics.requests.inc({ protocol: server.name, status: String(answer.status) });
      this.metrics.errors.inc({ protocol: server.name, error_type: reason });
      const at = new Date().toISOString();
      const message = err instanceof APIError ? err.providerMessage : err.message;
      const durationMs = round(performance.now() - receivedAt);
      this.#log({ ts: at, ...logBase, status: answer.status, error_type: reason, error: message, duration_ms: durationMs, ...extra });
      // A caller who got past authentication is in the request log even when refused.
      if (this.#requestLog && typeof extra.key_id === 'string') {
        this.#requestLog.add({
          requestId,
          at,
          keyId: extra.key_id,
          protocol: server.name,
          model: typeof extra.model === 'string' ? extra.model : '(unreadable request)',
          provider: null,
          resolvedModel: null,
          user: '',
          reply: null,
          promptTokens: 0,
          completionTokens: 0,
          totalTokens: 0,
          cost: null,
          costFemto: null,
          savedFemto: null,
          ttftMs: null,
          latencyMs: durationMs,
          tokensPerSecond: null,
          overheadMs: durationMs,
          status: answer.status,
          error: message,
        });
      }
    };

    if (!matched) {
      const known = method === 'POST' || method === 'GET';
      refuse(clientError(known ? 404 : 405, `${method} ${path} is not an endpoint of this gateway; see GET /v1/models and POST /v1/chat/completions, /v1/responses, /v1/messages, /v1beta/models/{model}:generateContent.`), 'not_found');
      return;
    }

    if (req.headers.origin !== undefined && !pageMayCall(serving.cors, req.headers, serving.open)) {
      const origin = req.headers.origin;
      refuse(
        clientError(403, `Requests from web pages at ${origin} are refused: add the origin to cors.origins in the gateway's config to let that page call (docs/gateway.md, "Browsers (CORS)").`),
        'cors_origin_not_allowed',
        { origin },
      );
      return;
    }

    const limit = serving.config.limits.maxInFlight;
    if (this.#draining || this.#inFlight >= limit) {
      const why = this.#draining ? 'The gateway is shutting down; retry on another instance.' : `The gateway is serving its limit of ${limit} requests; retry shortly.`;
      refuse(new AdmissionError(503, why, { retryAfterMs: 1000, scope: 'gateway' }), this.#draining ? 'draining' : 'overloaded');
      return;
    }

    this.#inFlight++;
    this.metrics.inFlight.value = this.#inFlight;
    this.#active.add(res);
    try {
      const query = q < 0 ? undefined : new URLSearchParams(rawUrl.slice(q + 1));
      const credential = credentialOf(req, query);
      let principal: Principal | null;
      try {
        // No credential is checked like an empty one: the open authenticator admits it, the others refuse it.
        principal = await serving.authenticator.authenticate(credential ?? '');
      } catch (err) {
        // An authenticator whose store is down refuses in the caller's shape (503), not as a crash.
        if (!(err instanceof SwitchboardError)) throw err;
        req.resume();
        refuse(err, 'authentication_unavailable');
        return;
      }
      if (!principal) {
        const message = credential === undefined
          ? 'No API key: send the gateway key as "Authorization: Bearer KEY", "x-api-key: KEY" or "x-goog-api-key: KEY".'
          : 'The API key is not valid for this gateway.';
        req.resume();
        refuse(new APIError('authentication', { status: 401, provider: 'gateway', providerMessage: message }), 'authentication');
        return;
      }
      if (matched.kind === 'models') {
        const body = JSON.stringify(server.writeModelList(listedModels(serving.config).filter((m) => modelAllowed(principal, m.id))));
        res.writeHead(200, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
        res.end(body);
        this.metrics.requests.inc({ protocol: server.name, status: '200' });
        this.#log({ ts: new Date().toISOString(), ...logBase, status: 200, key_id: principal.keyId, duration_ms: round(performance.now() - receivedAt) });
        return;
      }
      await this.#modelRequest(req, res, { serving, server, matched, principal, headers, receivedAt, requestId, refuse, logBase });
    } finally {
      this.#active.delete(res);
      this.#inFlight--;
      this.metrics.inFlight.value = this.#inFlight;
      if (this.#inFlight === 0 && this.#idle) this.#idle();
    }
  }

  /**
   * A browser's preflight for an endpoint: answered before authentication and the in-flight
   * limit, outside the request log and the request metrics. A refused origin gets an access-log
   * line, so an origin missing from `cors.origins` shows where an operator looks.
   */
  #preflight(cors: CorsPolicy, req: IncomingMessage, res: ServerResponse, allowedMethod: string, path: string, headers: Record<string, string>): void {
    if (cors.answerPreflight(req.headers, res, allowedMethod, headers)) {
      this.metrics.corsPreflights.inc({ result: 'allowed' });
      return;
    }
    this.metrics.corsPreflights.inc({ result: 'refused' });
    this.#log({ ts: new Date().toISOString(), request_id: headers['x-request-id'], method: 'OPTIONS', path, status: 403, error_type: 'cors_origin_not_allowed', origin: req.headers.origin });
  }

  async #modelRequest(
    req: IncomingMessage,
    res: ServerResponse,
    x: {
      serving: Serving;
      server: ProtocolServer;
      matched: Matched;
      principal: Principal;
      headers: Record<string, string>;
      receivedAt: number;
      requestId: string;
      refuse: (err: SwitchboardError | WireRequestError, reason: string, extra?: Record<string, unknown>) => void;
      logBase: Record<string, unknown>;
    },
  ): Promise<void> {
    const { serving, server, matched, principal, refuse } = x;
    const config = serving.config;
    let parsed: ServerRequest;
    try {
      if (!isJsonContentType(req)) {
        req.resume();
        throw clientError(415, `Content-Type ${String(req.headers['content-type'])} is not supported; send application/json.`);
      }
      // A compressed body would be read as broken JSON; inflating it would let a few kilobytes
      // expand past max_body_bytes before the limit could see them.
      const encoding = req.headers['content-encoding'];
      if (encoding !== undefined && encoding !== '' && encoding.toLowerCase() !== 'identity') {
        req.resume();
        throw clientError(415, `Content-Encoding ${encoding} is not supported; send the JSON body uncompressed.`);
      }
      const body = parseJsonBody(await readBody(req, config.limits.maxBodyBytes, config.limits.bodyTimeoutMs));
      const ctx: Parameters<ProtocolServer['parseRequest']>[1] = { headers: req.headers };
      if (matched.pathModel !== undefined) ctx.pathModel = matched.pathModel;
      if (matched.pathStream !== undefined) ctx.pathStream = matched.pathStream;
      if (matched.kind === 'count') ctx.counting = true;
      parsed = server.parseRequest(body, ctx);
      // The gateway keeps no responses: a continuation must carry its whole input.
      if (parsed.previousResponseId !== undefined) throw statelessRefusal('previous_response_id');
      checkMedia(parsed.request.messages);
    } catch (err) {
      if (err instanceof WireRequestError || err instanceof SwitchboardError) {
        refuse(err, 'bad_request', { key_id: principal.keyId });
        return;
      }
      throw err;
    }

    const name = parsed.model;
    if (!modelAllowed(principal, name)) {
      refuse(new APIError('permission', { status: 403, provider: 'gateway', providerMessage: `This key may not use the model "${name}". Allowed models: ${(principal.allowedModels ?? []).join(', ') || 'none'}.` }), 'permission', { key_id: principal.keyId, model: name });
      return;
    }
    if (matched.kind === 'count') {
      const tokens = estimateTokens(parsed.request.messages);
      const body = JSON.stringify(server.writeTokenCount?.(tokens) ?? { input_tokens: tokens });
      res.writeHead(200, { ...x.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
      this.metrics.requests.inc({ protocol: server.name, status: '200' });
      this.#log({ ts: new Date().toISOString(), ...x.logBase, status: 200, key_id: principal.keyId, model: name, duration_ms: round(performance.now() - x.receivedAt) });
      return;
    }

    const routeModel = routeModelFor(config, name, this.#random);
    if (!serving.checkedModels.has(routeModel)) {
      try {
        checkModelString(routeModel, { registry: serving.registry, env: config.env });
      } catch (err) {
        refuse(modelError(err, name), 'bad_model', { key_id: principal.keyId, model: name });
        return;
      }
      if (serving.checkedModels.size >= CHECKED_MODELS_KEPT) serving.checkedModels.clear();
      serving.checkedModels.add(routeModel);
    }

    let ticket: Ticket;
    try {
      ticket = await this.#admission.admit({ principal, model: routeModel, request: parsed.request, protocol: server.name });
    } catch (err) {
      if (err instanceof SwitchboardError) {
        refuse(err, err instanceof AdmissionError ? `admission_${err.status}` : 'admission', { key_id: principal.keyId, model: name });
        return;
      }
      throw err;
    }

    const cache = await this.#cache.lookup({ config, principal, parsed, headers: req.headers, registry: serving.registry });
    const startedAt = new Date().toISOString();
    const meta: Parameters<ProtocolServer['createStreamWriter']>[0] = { id: responseId(), model: name, created: Math.floor(Date.now() / 1000) };
    if (parsed.includeUsage !== undefined) meta.includeUsage = parsed.includeUsage;
    let settling: Promise<void> | undefined;
    const settle = (o: ProxyOutcome): Promise<void> => {
      if (settling) return settling;
      const status: 'ok' | 'error' | 'cancelled' = o.cancelled ? 'cancelled' : o.error ? 'error' : 'ok';
      const spend: Parameters<Ticket['settle']>[0] = { status, costFemto: o.costFemto };
      if (o.savedFemto !== null && o.savedFemto !== 0n) spend.savedFemto = o.savedFemto;
      // A hit used no tokens upstream: it is charged nothing and counts against no token limit.
      if (o.usage && cache?.state !== 'hit') spend.usage = o.usage;
      if (o.provider) spend.provider = o.provider;
      if (o.resolvedModel) spend.resolvedModel = o.resolvedModel;
      settling = ticket.settle(spend).catch((err: unknown) => this.#warn(`admission settle failed: ${err instanceof Error ? err.message : String(err)}`));
      return settling;
    };
    const outcome = await proxyModelRequest({
        res,
        server,
        parsed,
        routeModel,
        routeOptions: serving.routeOptions,
        registry: serving.registry,
        meta,
        headers: cache ? { ...x.headers, ...ticket.headers, ...cache.headers } : { ...x.headers, ...ticket.headers },
        keepAliveMs: config.limits.keepAliveMs,
        receivedAt: x.receivedAt,
      keepText: config.logging.content,
      fetch: this.#fetch,
      timeoutMs: config.limits.requestTimeoutMs,
      cache,
      // A ticket that records nothing, or a hit (it spent nothing), need not hold its last bytes for the ledger.
      beforeEnd: ticket.recordsSpend === false || cache?.state === 'hit' ? undefined : (o) => within(settle(o), SETTLE_BEFORE_END_MS),
    });
    // proxyModelRequest never throws, so settle() runs exactly once, whatever happened (a
    // reply that succeeded was settled before its last bytes; this is then a no-op).
    void settle(outcome);
    this.#finish(x, parsed, outcome, startedAt, cache);
  }

  #finish(
    x: { server: ProtocolServer; principal: Principal; receivedAt: number; requestId: string; logBase: Record<string, unknown>; serving: Serving },
    parsed: ServerRequest,
    outcome: ProxyOutcome,
    startedAt: string,
    cache?: CacheLookup,
  ): void {
    const durationMs = performance.now() - x.receivedAt;
    const overheadMs = Math.max(0, durationMs - outcome.upstreamMs);
    const err = outcome.error;
    const errorType = outcome.cancelled ? 'cancelled' : err ? (err instanceof WireRequestError ? err.type : err.code) : undefined;
    const provider = outcome.provider ?? 'none';
    const usage = outcome.usage;
    const saved = outcome.savedFemto === null ? undefined : femtoToDollars(outcome.savedFemto);
    this.metrics.observe({
      protocol: x.server.name,
      model: parsed.model,
      provider,
      status: outcome.status,
      errorType,
      durationS: durationMs / 1000,
      ttftS: outcome.ttftMs === undefined ? undefined : outcome.ttftMs / 1000,
      itlS: outcome.itlMs === undefined ? undefined : outcome.itlMs / 1000,
      inputTokens: usage?.promptTokens,
      outputTokens: usage?.completionTokens,
      costUsd: outcome.cost,
      overheadS: overheadMs / 1000,
      cache: cache?.state,
      savedUsd: saved,
    });
    this.#log({
      ts: startedAt,
      ...x.logBase,
      status: outcome.status,
      key_id: x.principal.keyId,
      model: parsed.model,
      provider: outcome.provider,
      resolved_model: outcome.resolvedModel,
      stream: parsed.stream,
      prompt_tokens: usage?.promptTokens,
      completion_tokens: usage?.completionTokens,
      cost: outcome.cost,
      ttft_ms: outcome.ttftMs === undefined ? undefined : round(outcome.ttftMs),
      duration_ms: round(durationMs),
      overhead_ms: round(overheadMs),
      error_type: errorType,
      error: err instanceof APIError ? err.providerMessage : err?.message,
      cache: cache?.state,
      saved_cost: saved,
    });
    if (!this.#requestLog) return;
    const logContent = x.serving.config.logging.content;
    const record: RequestRecord = {
      requestId: x.requestId,
      at: startedAt,
      keyId: x.principal.keyId ?? null,
      protocol: x.server.name,
      model: parsed.model,
      provider: outcome.provider ?? null,
      resolvedModel: outcome.resolvedModel ?? null,
      // Empty without content logging: the full-text index then has nothing to do (half the row's cost).
      user: logContent ? lastUserText(parsed.request.messages) : '',
      reply: logContent && !err ? outcome.text : null,
      promptTokens: usage?.promptTokens ?? 0,
      completionTokens: usage?.completionTokens ?? 0,
      totalTokens: usage?.totalTokens ?? 0,
      cost: outcome.cost,
      costFemto: outcome.costFemto === null ? null : String(outcome.costFemto),
      savedFemto: outcome.savedFemto === null ? null : String(outcome.savedFemto),
      ttftMs: outcome.ttftMs === undefined ? null : round(outcome.ttftMs),
      latencyMs: round(durationMs),
      tokensPerSecond: usage && outcome.ttftMs !== undefined && durationMs > outcome.ttftMs ? round(usage.completionTokens / ((durationMs - outcome.ttftMs) / 1000)) : null,
      overheadMs: round(overheadMs),
      status: outcome.status,
      error: err ? (outcome.cancelled ? 'cancelled by the client' : err.message) : null,
    };
    this.#requestLog.add(record);
  }

  /** An /admin/ request: the same credentials as model requests, then the admin API's JSON answer. */
  async #adminRequest(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, requestId: string): Promise<void> {
    const answer = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), 'x-request-id': requestId });
      res.end(text);
      this.#log({ ts: new Date().toISOString(), request_id: requestId, method: req.method, path, status });
    };
    const credential = credentialOf(req, query);
    const principal = credential === undefined ? null : await this.#serving.authenticator.authenticate(credential);
    if (!principal) {
      req.resume();
      answer(401, { error: { message: 'The admin API takes the master key or an admin key as "Authorization: Bearer KEY".', type: 'invalid_request_error' } });
      return;
    }
    let body: unknown;
    try {
      const text = await readBody(req, this.config.limits.maxBodyBytes, this.config.limits.bodyTimeoutMs);
      body = text === '' ? undefined : parseJsonBody(text);
    } catch (err) {
      // Too large (413), too slow (408: the connection closes, as for model requests) or not JSON (400).
      const status = err instanceof APIError && err.status !== undefined ? err.status : 400;
      if (status === 408) res.setHeader('connection', 'close');
      answer(status, { error: { message: err instanceof Error ? err.message : String(err), type: 'invalid_request_error' } });
      return;
    }
    const request = { method: req.method ?? 'GET', path, query, body, principal };
    const result = (await this.#consoleApi(request)) ?? (await this.#admin?.(request));
    if (result) answer(result.status, result.body);
    else answer(404, { error: { message: `${request.method} ${path}: keys and teams are managed while virtual keys are on (a master key in the config or SWITCHBOARD_MASTER_KEY).`, type: 'not_found' } });
  }

  #operations(path: string, res: ServerResponse, requestId: string): void {
    if (path === '/metrics') {
      const send = (status: number, body: string): void => {
        res.writeHead(status, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'x-request-id': requestId });
        res.end(body);
      };
      if (!this.#metricsText) send(200, this.metrics.render());
      // A scrape that cannot see every worker fails rather than report part of the server.
      else this.#metricsText().then((body) => send(200, body), (err: unknown) => send(503, `# ${err instanceof Error ? err.message : String(err)}\n`));
      return;
    }
    const logOk = this.#requestLog?.healthy ?? true;
    const stores = path === '/readyz' ? this.#readiness?.() : undefined;
    const ready = path === '/healthz' || (!this.#draining && logOk && stores?.ready !== false);
    const requestLog = this.#requestLog ? (logOk ? 'ok' : 'failing') : 'off';
    const body = JSON.stringify(
      path === '/healthz'
        ? { status: 'ok' }
        : { status: this.#draining ? 'draining' : ready ? 'ready' : 'not ready', config: this.config.source, requestLog, ...(stores ? { stores: stores.detail } : {}) },
    );
    res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json', 'x-request-id': requestId });
    res.end(body);
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
