/**
 * The simulator's HTTP server: routing and the simulated model's timing and failures.
 * `/{provider}/...` is answered in the provider's protocol: the protocol's server half reads
 * the request into a canonical one and writes the simulated model's canonical events back
 * (src/sim/ itself never reads or writes wire JSON). `/_sim/profiles` steers provider
 * profiles while it runs; `GET /` describes what is served.
 *
 * Keys are optional, but a key beginning with `sk-bad` is refused the way the provider refuses
 * a wrong key, so apps can test their authentication error path.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { APIError, apiErrorFromStatus, RateLimitError, ServerError, type SwitchboardError } from '../errors.js';
import { getProtocolServer } from '../protocols/index.js';
import { WireRequestError, type ProtocolServer, type ResponseMeta, type ServerProtocolName } from '../protocols/protocol.js';
import type { Message } from '../types.js';
import { VERSION } from '../version.js';
import { anthropicThinkingReplayError, canonicalModel, simRequestFrom } from './conversation.js';
import { sendJson, sendStream, sendTruncatedJson, type StreamEncoder } from './delivery.js';
import { ENDPOINTS_LISTING_PREFIX, sendEndpointsListing } from './endpoints-listing.js';
import { ALL_SIM_FAILURE_KINDS, FailureInjector, SIM_FAILURE_KINDS, type SimFailureKind } from './failures.js';
import { ProfileStore } from './profile-store.js';
import { SIM_MODELS, type SimModelProfile, type SimProviderProfile } from './profiles.js';
import { CLOUD_ENDPOINT_HINTS, cloudCredentialProblem, cloudRouteFor } from './clouds.js';
import { ENDPOINT_HINTS, routeFor } from './routes.js';
import { allEvents, candidatesTotal, planTurn, plannedTiming, priceTurn, requestTokens, totalDelay, turnEvents, type PlannedTurn } from './turn.js';
import { PromptCacheModel, TooManyBreakpointsError } from './prompt-cache.js';
import { simulatorProviderURL } from './urls.js';

export type { SimFailureKind } from './failures.js';

export interface SimulatorOptions {
  /** Port to listen on; 0 picks a free one. */
  port?: number;
  host?: string;
  /** Let the process exit while the server is still listening (embedded use). */
  unref?: boolean;
  /** Multiplies every delay; 0 answers at once. Default from SWITCHBOARD_SIM_TIME_SCALE, else 1. */
  timeScale?: number;
  /** Share of sim-flaky requests that fail. Default from SWITCHBOARD_SIM_FAIL_RATE, else the profile's. */
  failRate?: number;
  /** Which failures a failing request picks from; default server-error, rate-limit and cut-stream (overloaded and stream-error on request). */
  failureKinds?: SimFailureKind[];
  /** Seed of the failure PRNG; the same seed gives the same sequence of failures. Default 1. */
  seed?: number;
  /**
   * Report each streamed reply's simulated generation speed as llama.cpp's `timings` on its
   * last event, in every protocol (default false: only llama.cpp reports one). A client that
   * reads it (the router does) measures the simulated speed however loaded the machine is.
   */
  timings?: boolean;
}

export interface RunningSimulator {
  /** Origin, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Stop listening and drop every connection (keep-alive ones included). */
  close(): Promise<void>;
  /** Change some fields of a provider's profile while running; returns the profile now in force. */
  setProviderProfile(name: string, partial: Partial<SimProviderProfile>): SimProviderProfile;
  /** Back to the profiles the simulator started with. */
  resetProfiles(): void;
}

/** Largest request body accepted (inline media included). */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** Tool call ids in each protocol's style. */
const CALL_PREFIX: Record<ServerProtocolName, string> = { openai: 'call_', 'openai-responses': 'call_', anthropic: 'toolu_', gemini: 'call_', bedrock: 'tooluse_' };

/** The header each provider names its request id in. */
const REQUEST_ID_HEADER: Partial<Record<ServerProtocolName, string>> = { openai: 'x-request-id', 'openai-responses': 'x-request-id', anthropic: 'request-id', bedrock: 'x-amzn-requestid' };

/** How each provider refuses a wrong key (Gemini answers 400 API_KEY_INVALID, not 401). */
const BAD_KEY: Record<SimProviderProfile['protocol'], () => WireRequestError> = {
  openai: () => new WireRequestError(401, 'invalid_request_error', 'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.', undefined, 'invalid_api_key'),
  anthropic: () => new WireRequestError(401, 'authentication_error', 'invalid x-api-key'),
  gemini: () => new WireRequestError(400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', undefined, 'API_KEY_INVALID'),
  bedrock: () => new WireRequestError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.'),
};

/** The key a request carries, wherever the protocol puts it. */
function credentialOf(req: IncomingMessage, query: URLSearchParams): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '');
  const header = req.headers['x-api-key'] ?? req.headers['x-goog-api-key'];
  if (typeof header === 'string') return header;
  return query.get('key') ?? undefined;
}

/** A request id in the provider's style (`req_...`). */
function requestId(): string {
  return `req_${randomBytes(12).toString('hex')}`;
}

/** How many finished responses the simulator keeps for `previous_response_id`. */
const REMEMBERED_RESPONSES = 1000;

/**
 * Recent Responses API conversations by response id, so a request can continue one with
 * `previous_response_id` as against OpenAI (which stores responses by default). Oldest go first.
 */
class ResponseMemory {
  private readonly conversations = new Map<string, Message[]>();

  get(id: string): Message[] | undefined {
    return this.conversations.get(id);
  }

  remember(id: string, messages: Message[]): void {
    this.conversations.set(id, messages);
    if (this.conversations.size > REMEMBERED_RESPONSES) this.conversations.delete(this.conversations.keys().next().value as string);
  }
}

/** The assistant message a planned turn adds to the history. */
function assistantMessage(turn: PlannedTurn): Message {
  const message: Message = { role: 'assistant', content: turn.text === '' && turn.toolCalls.length > 0 ? null : turn.text };
  if (turn.toolCalls.length > 0) message.tool_calls = turn.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  return message;
}

/** The frames of one planned turn, through a protocol's stream writer. */
function encoderFor(server: ProtocolServer, meta: ResponseMeta, turn: PlannedTurn) {
  const writer = server.createStreamWriter(meta);
  const events = turnEvents(turn);
  const encoder: StreamEncoder = {
    head: () => writer.start() + writer.write(events.before),
    piece: (text) => writer.write([{ type: 'text-delta', text }]),
    tail: () => writer.write(events.after) + writer.end(events.end),
  };
  return { writer, encoder, contentType: writer.contentType, encoding: writer.encoding };
}

/** A non-negative number from an option or an environment variable, else the fallback. */
function numberSetting(option: number | undefined, env: string | undefined, fallback: number): number {
  if (option !== undefined && Number.isFinite(option) && option >= 0) return option;
  const fromEnv = env === undefined || env === '' ? NaN : Number(env);
  return Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : fallback;
}

/** An error of the simulator itself (control endpoints, unknown providers), answered in the OpenAI shape. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A refusal with an HTTP status, typed as the provider's error; the server half writes it in its own vocabulary. */
function wireError(status: number, message: string): APIError {
  return apiErrorFromStatus({ status, provider: 'simulator', providerMessage: message });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `request body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
}

/** Models a provider serves, by canonical name. */
function servedModels(provider: string): Record<string, SimModelProfile> {
  return Object.fromEntries(Object.entries(SIM_MODELS).filter(([, m]) => m.providers.includes(provider)));
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  const timeScale = numberSetting(options.timeScale, process.env.SWITCHBOARD_SIM_TIME_SCALE, 1);
  const failRateEnv = numberSetting(options.failRate, process.env.SWITCHBOARD_SIM_FAIL_RATE, NaN);
  // What each simulated provider holds in its prompt cache, for the life of this server.
  const promptCache = new PromptCacheModel();
  const profiles = new ProfileStore(Number.isNaN(failRateEnv) ? undefined : Math.min(1, failRateEnv));
  const unknownKind = options.failureKinds?.find((k) => !ALL_SIM_FAILURE_KINDS.includes(k));
  if (unknownKind !== undefined) throw new TypeError(`Unknown simulator failure kind "${String(unknownKind)}"; expected one of ${ALL_SIM_FAILURE_KINDS.join(', ')}.`);
  const failures = new FailureInjector(options.seed ?? 1, options.failureKinds ?? SIM_FAILURE_KINDS);
  const responses = new ResponseMemory();
  let origin = '';

  function describe() {
    return {
      name: 'switchboard simulator',
      version: VERSION,
      timeScale,
      models: Object.fromEntries(
        Object.entries(SIM_MODELS).map(([name, m]) => [name, { ids: [name, `sim/${name}`], providers: m.providers, contextLength: m.contextLength, replyWords: m.replyWords }]),
      ),
      providers: Object.fromEntries(
        Object.entries(profiles.all()).map(([name, p]) => [name, { ...p, baseURL: simulatorProviderURL(origin, name, p.protocol, p.cloud), endpoint: p.cloud ? CLOUD_ENDPOINT_HINTS[p.cloud] : ENDPOINT_HINTS[p.protocol] }]),
      ),
      control: { 'GET /_sim/profiles': 'current provider profiles', 'POST /_sim/profiles/{provider}': 'change profile fields (JSON)', 'DELETE /_sim/profiles': 'reset profiles' },
    };
  }

  /** `/_sim/...`: read and change provider profiles. Errors use the OpenAI shape. */
  async function control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (path === '/_sim/profiles' && req.method === 'GET') return sendJson(res, 200, { providers: profiles.all() });
    if (path === '/_sim/profiles' && req.method === 'DELETE') {
      profiles.reset();
      return sendJson(res, 200, { providers: profiles.all() });
    }
    const match = /^\/_sim\/profiles\/([^/]+)$/.exec(path);
    if (match?.[1] && req.method === 'POST') {
      const name = decodeURIComponent(match[1]);
      if (!profiles.get(name)) throw new HttpError(404, `unknown simulated provider "${name}"; known: ${profiles.names().join(', ')}`);
      const body = await readJson(req);
      try {
        return sendJson(res, 200, { provider: name, profile: profiles.set(name, body as Partial<SimProviderProfile>) });
      } catch (error) {
        throw new HttpError(400, (error as Error).message);
      }
    }
    throw new HttpError(404, `no control endpoint ${req.method} ${path}`);
  }

  function listed(provider: string, profile: SimProviderProfile) {
    return Object.entries(servedModels(provider)).map(([id, m]) => ({ id, displayName: `${id} (simulated)`, contextLength: m.contextLength, ownedBy: 'switchboard-sim', pricing: { input: profile.inputPrice, output: profile.outputPrice } }));
  }

  /** Answer a typed error in the protocol's own shape. */
  function sendError(res: ServerResponse, server: ProtocolServer, error: SwitchboardError | WireRequestError, headers: Record<string, string>, delayMs = 0): void {
    const answer = server.writeError(error);
    sendJson(res, answer.status, answer.body, { ...headers, ...answer.headers }, delayMs);
  }

  /** The prompt cache's reads and writes for a request; a fifth breakpoint is refused as Anthropic refuses it. */
  function cacheUse(protocol: ServerProtocolName, scope: string, request: Parameters<PromptCacheModel['forRequest']>[2]) {
    try {
      return promptCache.forRequest(protocol, scope, request);
    } catch (err) {
      if (err instanceof TooManyBreakpointsError) throw new WireRequestError(400, 'invalid_request_error', err.message);
      throw err;
    }
  }

  async function generate(req: IncomingMessage, res: ServerResponse, provider: string, profile: SimProviderProfile, route: { kind: 'generate' | 'count'; protocol: ServerProtocolName; pathModel?: string; pathStream?: boolean; modelInPath?: boolean }, headers: Record<string, string>): Promise<void> {
    const { protocol } = route;
    const server = getProtocolServer(protocol);
    const ctx = { headers: req.headers, counting: route.kind === 'count', ...(route.pathModel === undefined ? {} : { pathModel: route.pathModel }), ...(route.pathStream === undefined ? {} : { pathStream: route.pathStream }) };
    const wireBody = await readJson(req);
    // Vertex's Claude and Azure's deployment paths name the model in the path; the body may not.
    const record = route.modelInPath && typeof wireBody === 'object' && wireBody !== null ? (wireBody as Record<string, unknown>) : undefined;
    if (record && record.model === undefined) record.model = route.pathModel;
    const parsed = server.parseRequest(wireBody, ctx);
    const modelName = canonicalModel(parsed.model);
    const model = SIM_MODELS[modelName];
    if (!model || !model.providers.includes(provider)) {
      const served = Object.keys(servedModels(provider));
      throw wireError(404, `${provider} does not serve model ${parsed.model}; it serves ${served.join(', ')} (also as ${served.map((m) => `sim/${m}`).join(', ')})`);
    }
    if (parsed.previousResponseId !== undefined) {
      const earlier = responses.get(parsed.previousResponseId);
      if (!earlier) throw new WireRequestError(400, 'invalid_request_error', `Previous response with id '${parsed.previousResponseId}' not found.`, 'previous_response_id', 'previous_response_not_found');
      parsed.request.messages = [...earlier, ...parsed.request.messages];
    }
    const request = simRequestFrom(parsed);
    if (route.kind === 'count') return sendJson(res, 200, server.writeTokenCount?.(requestTokens(request)), headers);
    if (protocol === 'anthropic') {
      const broken = anthropicThinkingReplayError(parsed);
      if (broken) throw wireError(400, broken);
    }
    const turn = planTurn(request, provider, profile, model, timeScale, CALL_PREFIX[protocol]);
    if (options.timings) turn.timing = plannedTiming(turn);
    const cached = cacheUse(protocol, `${provider}\u0000${modelName}`, request);
    turn.cachedTokens = cached.readTokens;
    turn.cacheWriteTokens = cached.writeTokens;
    turn.cacheWrite1hTokens = cached.write1hTokens;
    turn.cost = priceTurn(turn, profile);
    const failure = failures.decide(provider, profile.failRate ?? 0, turn.pieces.length);
    const ttft = turn.delays[0] ?? 0;
    if (failure?.kind === 'server-error' || (failure?.kind === 'stream-error' && !parsed.stream)) {
      return sendError(res, server, new ServerError({ status: 500, provider, providerMessage: `${provider} had an internal error (simulated)` }), headers, ttft);
    }
    if (failure?.kind === 'overloaded') {
      return sendError(res, server, new ServerError({ status: 503, provider, providerMessage: 'Overloaded' }, 'overloaded'), headers, ttft);
    }
    if (failure?.kind === 'rate-limit') {
      // Retry-After scaled like every other delay (so 0 with timeScale 0); the header takes whole seconds.
      const retryAfterMs = Math.round(timeScale * 1000);
      return sendError(res, server, new RateLimitError({ status: 429, provider, providerMessage: `${provider} is rate limited (simulated); retry after ${Math.ceil(retryAfterMs / 1000)} s`, retryAfterMs }), headers);
    }
    const meta: ResponseMeta = { id: turn.id, model: turn.model, created: turn.created, provider, promptTokens: turn.promptTokens };
    if (protocol === 'openai-responses') {
      // Instructions do not carry over to a continued response; the rest of the conversation does.
      responses.remember(`resp_${turn.id}`, [...parsed.request.messages.filter((m) => m.role !== 'system'), assistantMessage(turn)]);
    }
    if (parsed.includeUsage) meta.includeUsage = true;
    const cutAfter = failure?.kind === 'cut-stream' || failure?.kind === 'stream-error' ? failure.afterTokens : undefined;
    if (parsed.stream) {
      if ((parsed.choices ?? 1) > 1) throw wireError(400, 'the simulator streams one candidate only: ask for several (n, candidateCount) without streaming');
      const { writer, encoder, contentType, encoding } = encoderFor(server, meta, turn);
      const errorFrame = failure?.kind === 'stream-error' ? writer.error(new ServerError({ status: 503, provider, providerMessage: 'Overloaded' }, 'overloaded')) : undefined;
      return sendStream(res, turn, encoder, { headers, contentType, ...(encoding === undefined ? {} : { encoding }), ...(cutAfter === undefined ? {} : { cutAfter }), ...(errorFrame === undefined ? {} : { errorFrame }) });
    }
    const candidates = parsed.choices ?? 1;
    let body: unknown;
    if (candidates > 1 && server.writeChoices) {
      const turns = [turn, ...Array.from({ length: candidates - 1 }, (_, i) => planTurn(request, provider, profile, model, timeScale, CALL_PREFIX[protocol], i + 1))];
      body = server.writeChoices(turns.map((t) => ({ events: allEvents(t), end: turnEvents(t).end })), meta, candidatesTotal(turns, profile));
    } else body = server.writeResponse(allEvents(turn), meta, turnEvents(turn).end);
    if (cutAfter !== undefined) return sendTruncatedJson(res, body, totalDelay(turn), headers);
    return sendJson(res, 200, body, headers, totalDelay(turn));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    // A path whose escapes do not decode (`%zz`, a cut UTF-8 sequence) names nothing. Checked
    // once here: every part decoded below (a provider, a model) lies between ASCII delimiters,
    // so it decodes whenever the whole path does.
    try {
      decodeURIComponent(path);
    } catch {
      throw new HttpError(404, `no route for ${method} ${path}: the path's percent-escapes do not decode; GET ${origin}/ lists what the simulator serves`);
    }
    if (path === '/' && method === 'GET') return sendJson(res, 200, describe());
    if (path.startsWith('/_sim/')) return control(req, res, path);
    if (path.startsWith(ENDPOINTS_LISTING_PREFIX) && method === 'GET') return sendEndpointsListing(res, path, profiles, timeScale);

    const slash = path.indexOf('/', 1);
    const provider = decodeURIComponent(slash < 0 ? path.slice(1) : path.slice(1, slash));
    const subpath = slash < 0 ? '/' : path.slice(slash);
    const profile = profiles.get(provider);
    if (!profile) throw new HttpError(404, `no simulated provider "${provider}"; the simulator serves ${profiles.names().join(', ')} under ${origin}/{provider}/`);
    const route = profile.cloud ? cloudRouteFor(profile.cloud, method, subpath, url.searchParams) : routeFor(profile.protocol, method, subpath, url.searchParams);
    const protocol = route && 'protocol' in route ? route.protocol : profile.protocol;
    const server = getProtocolServer(protocol);
    const idHeader = REQUEST_ID_HEADER[protocol];
    const headers: Record<string, string> = idHeader ? { [idHeader]: requestId() } : {};
    try {
      if (!route) throw wireError(404, `${provider} speaks the ${profile.protocol} protocol and has no endpoint ${method} ${subpath}; use ${profile.cloud ? CLOUD_ENDPOINT_HINTS[profile.cloud] : ENDPOINT_HINTS[profile.protocol]}`);
      const refused = profile.cloud ? cloudCredentialProblem(profile.cloud, req.headers) : undefined;
      if (refused) throw refused;
      if (credentialOf(req, url.searchParams)?.startsWith('sk-bad')) throw BAD_KEY[profile.protocol]();
      if (route.kind === 'invalid') throw wireError(400, route.message);
      if (route.kind === 'models') return sendJson(res, 200, server.writeModelList(listed(provider, profile)), headers);
      return await generate(req, res, provider, profile, route, headers);
    } catch (error) {
      // Errors past this point are answered in the provider's own protocol.
      if (error instanceof HttpError) return sendError(res, server, wireError(error.status, error.message), headers);
      if (error instanceof WireRequestError || error instanceof APIError) return sendError(res, server, error, headers);
      throw error;
    }
  }

  const server = createServer((req, res) => {
    // Embedded in a program, each answer closes its connection: the client (fetch) would
    // otherwise hold the idle socket and keep a finished CLI alive ~150 ms before it exits.
    // On loopback a new connection per request costs next to nothing.
    if (options.unref) res.shouldKeepAlive = false;
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof Error ? error.message : String(error);
      sendJson(res, status, getProtocolServer('openai').writeError(wireError(status, message)).body);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (options.unref) {
    // Its connections must not keep the process alive either (keep-alive sockets idle for seconds).
    server.unref();
    server.on('connection', (socket) => socket.unref());
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  origin = `http://${host}:${address.port}`;

  let closing: Promise<void> | undefined;
  return {
    url: origin,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive and mid-stream sockets would hold close() open; drop them now.
        server.closeAllConnections();
      });
      return closing;
    },
    setProviderProfile: (name, partial) => profiles.set(name, partial),
    resetProfiles: () => profiles.reset(),
  };
}
