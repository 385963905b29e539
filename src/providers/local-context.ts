/**
 * The context length a local server was started with, asked of the server itself: the
 * catalog cannot know it (llama.cpp runs with whatever `-c` says, Ollama with its `num_ctx`).
 * Each server publishes it in its own place:
 * - llama.cpp: `GET /props` -> `default_generation_settings.n_ctx`
 * - vLLM: `GET /v1/models` -> `data[].max_model_len`
 * - LM Studio: `GET /api/v0/models/{model}` -> `loaded_context_length`, else `max_context_length`
 * - Ollama: `POST /api/show {model}` -> `num_ctx` in `parameters`, else `model_info["<arch>.context_length"]`
 * The places are tried in that order, each briefly; the answer (or its absence) is kept per
 * server and model for the life of the process, and replaced by the figure the server gives
 * when it refuses a prompt as too long (llama.cpp's `n_ctx`).
 */
import type { Endpoint } from '../protocols/protocol.js';

/** Milliseconds one question to a local server may take. */
const PROBE_TIMEOUT_MS = 2000;

const known = new Map<string, Promise<number | undefined>>();

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function tokens(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

async function getJSON(url: string, endpoint: Endpoint, signal: AbortSignal | undefined, body?: unknown): Promise<unknown> {
  const timeout = AbortSignal.timeout(PROBE_TIMEOUT_MS);
  const headers: Record<string, string> = { accept: 'application/json', ...endpoint.headers };
  if (endpoint.apiKey) headers.authorization = `Bearer ${endpoint.apiKey}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(url, {
      method: body === undefined ? 'GET' : 'POST',
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return (await res.json()) as unknown;
  } catch {
    return undefined;
  }
}

type Probe = (root: string, endpoint: Endpoint, model: string, signal: AbortSignal | undefined) => Promise<number | undefined>;

const PROBES: Probe[] = [
  async (root, endpoint, _model, signal) => {
    const props = await getJSON(`${root}/props`, endpoint, signal);
    if (!isRecord(props)) return undefined;
    const settings = isRecord(props.default_generation_settings) ? props.default_generation_settings : {};
    return tokens(settings.n_ctx) ?? tokens(props.n_ctx);
  },
  async (_root, endpoint, model, signal) => {
    const list = await getJSON(`${endpoint.baseURL}/models`, endpoint, signal);
    const entries = isRecord(list) && Array.isArray(list.data) ? list.data : [];
    const entry = entries.find((e): e is Record<string, unknown> => isRecord(e) && e.id === model);
    return entry ? (tokens(entry.max_model_len) ?? tokens(entry.loaded_context_length) ?? tokens(entry.context_length) ?? tokens(entry.max_context_length)) : undefined;
  },
  async (root, endpoint, model, signal) => {
    const info = await getJSON(`${root}/api/v0/models/${encodeURIComponent(model)}`, endpoint, signal);
    return isRecord(info) ? (tokens(info.loaded_context_length) ?? tokens(info.max_context_length)) : undefined;
  },
  async (root, endpoint, model, signal) => {
    const show = await getJSON(`${root}/api/show`, endpoint, signal, { model });
    if (!isRecord(show)) return undefined;
    const numCtx = typeof show.parameters === 'string' ? /(?:^|\n)\s*num_ctx\s+(\d+)/.exec(show.parameters)?.[1] : undefined;
    if (numCtx !== undefined) return tokens(Number(numCtx));
    const info = isRecord(show.model_info) ? show.model_info : {};
    const key = Object.keys(info).find((k) => k.endsWith('.context_length'));
    return key === undefined ? undefined : tokens(info[key]);
  },
];

/** The server's context length for `model`, or undefined when it does not say. */
export function localContextLength(endpoint: Endpoint, model: string, signal?: AbortSignal): Promise<number | undefined> {
  const key = `${endpoint.baseURL} ${model}`;
  let answer = known.get(key);
  if (!answer) {
    const root = endpoint.baseURL.replace(/\/v\d+$/, '');
    answer = (async () => {
      for (const probe of PROBES) {
        const n = await probe(root, endpoint, model, signal);
        if (n !== undefined) return n;
      }
      return undefined;
    })();
    known.set(key, answer);
    // An aborted question tells nothing: ask again next time.
    answer.then(
      (n) => {
        if (n === undefined && signal?.aborted) known.delete(key);
      },
      () => known.delete(key),
    );
  }
  return answer;
}

/** The context length a server gave when it refused a prompt as too long. */
export function rememberContextLength(endpoint: Endpoint, model: string, contextLength: number): void {
  known.set(`${endpoint.baseURL} ${model}`, Promise.resolve(contextLength));
}
