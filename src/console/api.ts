/**
 * The console's only way to the gateway: its public model API and its /admin/ API, with the
 * key the user logged in with. Nothing here is private to the page; scripts can call the same.
 */

const KEY_STORE = 'switchboard-console-key';

export function storedKey(): string | null {
  return sessionStorage.getItem(KEY_STORE);
}
export function storeKey(key: string | null): void {
  if (key === null) sessionStorage.removeItem(KEY_STORE);
  else sessionStorage.setItem(KEY_STORE, key);
}

/** An error answer from the gateway, with its message as the gateway wrote it. */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function errorOf(res: Response): Promise<GatewayError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
    const message = typeof body.error === 'string' ? body.error : (body.error?.message ?? body.message ?? text);
    return new GatewayError(res.status, message);
  } catch {
    return new GatewayError(res.status, text || `HTTP ${res.status}`);
  }
}

export async function api<T>(path: string, init: { method?: string; body?: unknown; key?: string } = {}): Promise<T> {
  const key = init.key ?? storedKey() ?? '';
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${key}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

export interface WhoAmI {
  kind: 'master' | 'virtual-key';
  key_id: string | null;
  team: string | null;
  admin: boolean;
  models: string[] | null;
  spend: boolean;
  logs: boolean;
}

export interface ModelInfo {
  id: string;
  source: 'gateway' | 'catalog';
  name: string;
  input_price: number | null;
  output_price: number | null;
  context_length: number | null;
  input_modalities: string[];
  providers: string[];
}

export interface UsageRow {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost: string;
  cost_femto: string;
  unpriced: number;
  [group: string]: string | number;
}

export interface SpendAnswer {
  by: string;
  bucket: 'day' | 'hour';
  time_zone: string;
  data: UsageRow[];
  total: UsageRow;
  series: (UsageRow & { bucket: string })[];
  budgets: { scope: 'key' | 'team'; id: string; name: string; limit: string; period: string; period_start: string; points: { bucket: string; remaining: string }[] }[];
}

/** Chat Completions message content: text, or parts with images and files as data: URIs. */
export type Content = string | ({ type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } } | { type: 'file'; file: { filename?: string; file_data: string } })[];
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: Content;
}

export interface StreamResult {
  text: string;
  provider: string | null;
  resolvedModel: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  cost: number | null;
  ttftMs: number | null;
  latencyMs: number;
  tokensPerSecond: number | null;
  finishReason: string | null;
}

/**
 * One streamed Chat Completions request. `onText` gets the reply so far; usage and cost come
 * from the final usage chunk, the provider from the response headers; TTFT and tokens/s are
 * timed here, from sending to the first and the last content chunk.
 */
export async function streamChat(body: Record<string, unknown>, onText: (text: string) => void, signal: AbortSignal): Promise<StreamResult> {
  const started = performance.now();
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${storedKey() ?? ''}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!res.ok || !res.body) throw await errorOf(res);
  const out: StreamResult = {
    text: '',
    provider: res.headers.get('x-switchboard-provider'),
    resolvedModel: res.headers.get('x-switchboard-model'),
    promptTokens: null,
    completionTokens: null,
    cost: null,
    ttftMs: null,
    latencyMs: 0,
    tokensPerSecond: null,
    finishReason: null,
  };
  let lastContent = started;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = frame
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (data === '' || data === '[DONE]') continue;
      const chunk = JSON.parse(data) as {
        error?: { message?: string };
        provider?: string;
        model?: string;
        choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[];
        usage?: { prompt_tokens?: number; completion_tokens?: number; cost?: number } | null;
      };
      if (chunk.error) throw new GatewayError(500, chunk.error.message ?? 'the stream failed');
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) {
        const now = performance.now();
        out.ttftMs ??= now - started;
        lastContent = now;
        out.text += delta;
        onText(out.text);
      }
      const finish = chunk.choices?.[0]?.finish_reason;
      if (finish) out.finishReason = finish;
      if (chunk.provider) out.provider ??= chunk.provider;
      if (chunk.usage) {
        out.promptTokens = chunk.usage.prompt_tokens ?? null;
        out.completionTokens = chunk.usage.completion_tokens ?? null;
        out.cost = chunk.usage.cost ?? null;
      }
    }
  }
  out.latencyMs = performance.now() - started;
  if (out.ttftMs !== null && out.completionTokens && lastContent > started + out.ttftMs) {
    out.tokensPerSecond = (out.completionTokens - 1) / ((lastContent - started - out.ttftMs) / 1000);
  }
  return out;
}
