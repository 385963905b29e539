/**
 * The simulator's HTTP server: routing only. `/{provider}/...` goes to the wire module of
 * the provider's protocol (OpenAI, Anthropic or Gemini); `/_sim/profiles` steers provider
 * profiles while it runs; `GET /` describes what is served. Replies, timing and failures
 * come from turn.ts, delivery.ts and failures.ts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { VERSION } from '../version.js';
import { anthropicWire } from './anthropic-wire.js';
import { canonicalModel } from './conversation.js';
import { sendJson, sendStream, sendTruncatedJson } from './delivery.js';
import { ENDPOINTS_LISTING_PREFIX, sendEndpointsListing } from './endpoints-listing.js';
import { FailureInjector, SIM_FAILURE_KINDS, type SimFailureKind } from './failures.js';
import { geminiWire } from './gemini-wire.js';
import { openaiWire } from './openai-wire.js';
import { ProfileStore } from './profile-store.js';
import { SIM_MODELS, type SimModelProfile, type SimProviderProfile } from './profiles.js';
import { planTurn, totalDelay } from './turn.js';
import { simulatorProviderURL } from './urls.js';
import type { SimWire } from './wire.js';

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
  /** Which failures a failing request picks from; default all three. */
  failureKinds?: SimFailureKind[];
  /** Seed of the failure PRNG; the same seed gives the same sequence of failures. Default 1. */
  seed?: number;
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

const WIRES: Record<SimProviderProfile['protocol'], SimWire> = {
  openai: openaiWire,
  anthropic: anthropicWire,
  gemini: geminiWire,
};

/** A non-negative number from an option or an environment variable, else the fallback. */
function numberSetting(option: number | undefined, env: string | undefined, fallback: number): number {
  if (option !== undefined && Number.isFinite(option) && option >= 0) return option;
  const fromEnv = env === undefined || env === '' ? NaN : Number(env);
  return Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : fallback;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
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
  const profiles = new ProfileStore(Number.isNaN(failRateEnv) ? undefined : Math.min(1, failRateEnv));
  const failures = new FailureInjector(options.seed ?? 1, options.failureKinds ?? SIM_FAILURE_KINDS);
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
        Object.entries(profiles.all()).map(([name, p]) => [name, { ...p, baseURL: simulatorProviderURL(origin, name, p.protocol), endpoint: WIRES[p.protocol].endpointHint }]),
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

  async function generate(req: IncomingMessage, res: ServerResponse, provider: string, profile: SimProviderProfile, wire: SimWire, route: { model?: string; stream?: boolean }): Promise<void> {
    const request = wire.readRequest(await readJson(req), { kind: 'generate', ...route });
    if (typeof request === 'string') throw new HttpError(400, request);
    const modelName = canonicalModel(request.model);
    const model = SIM_MODELS[modelName];
    if (!model || !model.providers.includes(provider)) {
      const served = Object.keys(servedModels(provider));
      throw new HttpError(404, `${provider} does not serve model ${request.model}; it serves ${served.join(', ')} (also as ${served.map((m) => `sim/${m}`).join(', ')})`);
    }
    const turn = planTurn(request, provider, profile, model, timeScale);
    const failure = failures.decide(provider, profile.failRate ?? 0, turn.pieces.length);
    const ttft = turn.delays[0] ?? 0;
    if (failure?.kind === 'server-error') {
      return sendJson(res, 500, wire.errorBody(500, `${provider} had an internal error (simulated)`), {}, ttft);
    }
    if (failure?.kind === 'rate-limit') {
      // Retry-After in seconds, scaled like every other delay (so 0 with timeScale 0).
      const seconds = Math.round(timeScale * 1000) / 1000;
      const headers = { 'retry-after': String(seconds), 'retry-after-ms': String(Math.round(seconds * 1000)) };
      return sendJson(res, 429, wire.errorBody(429, `${provider} is rate limited (simulated); retry after ${seconds} s`), headers);
    }
    const cutAfter = failure?.kind === 'cut-stream' ? failure.afterTokens : undefined;
    if (request.stream) return sendStream(res, turn, wire.streamEncoder(turn, request), cutAfter);
    if (cutAfter !== undefined) return sendTruncatedJson(res, wire.response(turn), totalDelay(turn));
    return sendJson(res, 200, wire.response(turn), {}, totalDelay(turn));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/' && method === 'GET') return sendJson(res, 200, describe());
    if (path.startsWith('/_sim/')) return control(req, res, path);
    if (path.startsWith(ENDPOINTS_LISTING_PREFIX) && method === 'GET') return sendEndpointsListing(res, path, profiles, timeScale);

    const slash = path.indexOf('/', 1);
    const provider = decodeURIComponent(slash < 0 ? path.slice(1) : path.slice(1, slash));
    const subpath = slash < 0 ? '/' : path.slice(slash);
    const profile = profiles.get(provider);
    if (!profile) throw new HttpError(404, `no simulated provider "${provider}"; the simulator serves ${profiles.names().join(', ')} under ${origin}/{provider}/`);
    const wire = WIRES[profile.protocol];
    const route = wire.route(method, subpath, url.searchParams);
    if (!route) {
      return sendJson(res, 404, wire.errorBody(404, `${provider} speaks the ${profile.protocol} protocol and has no endpoint ${method} ${subpath}; use ${wire.endpointHint}`));
    }
    try {
      if (route.kind === 'invalid') throw new HttpError(400, route.message);
      if (route.kind === 'models') {
        const list = wire.modelList?.(servedModels(provider), profile);
        return sendJson(res, 200, list);
      }
      return await generate(req, res, provider, profile, wire, route);
    } catch (error) {
      // Errors past this point are answered in the provider's own protocol.
      if (!(error instanceof HttpError)) throw error;
      return sendJson(res, error.status, wire.errorBody(error.status, error.message));
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
      sendJson(res, status, openaiWire.errorBody(status, message));
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
