/**
 * One model request through the gateway: the caller's wire request (already parsed by its
 * server half) goes to the router, and the router's events go back through the same server
 * half, streamed or as one body.
 *
 * The streaming rules:
 * - nothing is written until the first content event arrives (or the reply ends), so retries
 *   and fallbacks before it are invisible; the first content batch is written the moment it
 *   arrives, with no added wait;
 * - while waiting, a keep-alive comment goes out every `keepAliveMs` (that commits the 200);
 * - an upstream failure after bytes went out ends the stream with the protocol's error event,
 *   never its clean terminator;
 * - a client that goes away aborts the upstream request at once;
 * - a slow reader is not buffered without bound: the next upstream batch is read only once
 *   the socket has drained.
 */
import type { ServerResponse } from 'node:http';
import { estimateTokens } from '../catalog/context.js';
import { AbortError, MissingKeyError, ServerError, SwitchboardError, TimeoutError } from '../errors.js';
import { sendRequest } from '../protocols/transport.js';
import { getProtocol } from '../protocols/index.js';
import type { ProtocolServer, ResponseMeta, ServerRequest, StreamEnd, StreamWriter, WireRequestError } from '../protocols/protocol.js';
import type { Deployment } from '../providers/resolve.js';
import { route, type RouteItem, type RouteOptions } from '../routing/router.js';
import { femtoToDollars } from '../money.js';
import { catalogCostFemto, replyCostFemto } from '../turn.js';
import { providerCacheSavingFemto } from '../cache/savings.js';
import type { FinishReason, ProtocolEvent, TokenUsage } from '../types.js';
import type { ProviderRegistry } from '../providers/registry.js';
import type { CacheLookup } from './response-cache.js';

/** What the caller is told and what gets logged once a model request is over. */
export interface ProxyOutcome {
  status: number;
  /** The error that ended it (before or after the first byte). */
  error?: SwitchboardError | WireRequestError | undefined;
  /** The client went away first. */
  cancelled: boolean;
  deployment?: Deployment | undefined;
  provider?: string | undefined;
  resolvedModel?: string | undefined;
  usage?: TokenUsage | undefined;
  /** Dollars, for display (headers, metrics, the access log): `costFemto` as a number. */
  cost: number | null;
  /** The exact cost in integer femto-dollars (the provider's report, else the catalog's price); null when unknown. */
  costFemto: bigint | null;
  /**
   * What caching saved, femto-dollars: on a response-cache hit what the reply cost when it was
   * made, else the provider prompt cache's discount against the uncached price; null when none.
   */
  savedFemto: bigint | null;
  /** Milliseconds from receiving the request to the first content event. */
  ttftMs?: number | undefined;
  /** Mean milliseconds between output tokens after the first. */
  itlMs?: number | undefined;
  /** Milliseconds spent waiting on upstream (excluded from the overhead). */
  upstreamMs: number;
  /** The reply text, for the request log when content logging is on. */
  text: string;
}

export interface ProxyRequest {
  res: ServerResponse;
  server: ProtocolServer;
  parsed: ServerRequest;
  /** The model string the router runs (alias resolved, fallbacks appended). */
  routeModel: string;
  routeOptions: Omit<RouteOptions, 'signal' | 'collected'>;
  registry: ProviderRegistry;
  meta: ResponseMeta;
  /** Headers every answer carries (request id, admission headers). */
  headers: Record<string, string>;
  keepAliveMs: number;
  /** performance.now() when the request arrived. */
  receivedAt: number;
  /** Keep the reply text for the request log. */
  keepText: boolean;
  /** How upstream requests are sent (a pooled client). */
  fetch: typeof fetch;
  /** Milliseconds the whole request may take. */
  timeoutMs: number;
  /** The response cache's part in this request (response-cache.ts): a stored reply, or the live one recorded. */
  cache?: CacheLookup | undefined;
  /**
   * Awaited once a reply has succeeded, before its last bytes are written: the gateway records
   * the spend here, so a caller never holds a whole reply that the ledger could miss.
   */
  beforeEnd?: ((outcome: ProxyOutcome) => Promise<void>) | undefined;
}

const CONTENT = new Set<ProtocolEvent['type']>(['text-delta', 'reasoning-delta', 'tool-call-delta']);

function asSwitchboardError(err: unknown): SwitchboardError | WireRequestError {
  // The gateway lacks an upstream key: not the caller's key (a 401 would say so), a 503.
  if (err instanceof MissingKeyError) return new ServerError({ status: 503, provider: 'gateway', providerMessage: `This model is not available on this gateway: ${err.message}` });
  if (err instanceof SwitchboardError || (err instanceof Error && err.name === 'WireRequestError')) return err as SwitchboardError;
  return new SwitchboardError('server', `The gateway failed while serving the request: ${err instanceof Error ? err.message : String(err)}`);
}

/** Write frames; resolves once the socket can take more (at once when it still can). */
function write(res: ServerResponse, frames: string): Promise<void> | undefined {
  if (frames === '' || res.destroyed) return undefined;
  if (res.write(frames)) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * The outcome's cost: the provider's report (dollars, read by its decimal digits), else the
 * catalog's price, exact; and, for a live reply, what the provider's prompt cache saved.
 */
function priceOutcome(outcome: ProxyOutcome, p: ProxyRequest, deployment: Deployment, usage: TokenUsage, reportedCost: number | undefined): void {
  const registry = p.registry;
  outcome.costFemto = replyCostFemto({ registry }, deployment, usage, reportedCost);
  outcome.cost = outcome.costFemto === null ? null : femtoToDollars(outcome.costFemto);
  if (p.cache?.state !== 'hit') outcome.savedFemto = providerCacheSavingFemto(usage, outcome.costFemto, (uncached) => catalogCostFemto({ registry }, deployment, uncached)) ?? null;
}

/** Run one model request and answer it; never throws. */
export async function proxyModelRequest(p: ProxyRequest): Promise<ProxyOutcome> {
  const { res, parsed } = p;
  const controller = new AbortController();
  let cancelled = false;
  const onClose = (): void => {
    if (!res.writableFinished) {
      cancelled = true;
      controller.abort();
    }
  };
  res.on('close', onClose);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, p.timeoutMs);

  const hit = p.cache?.state === 'hit' ? p.cache : undefined;
  const outcome: ProxyOutcome = { status: 200, cancelled: false, cost: null, costFemto: null, savedFemto: hit ? hit.savedFemto : null, upstreamMs: 0, text: '' };
  const stream = parsed.stream;
  let deployment: Deployment | undefined;
  let events: ProtocolEvent[] = [];
  let usage: TokenUsage | undefined;
  let reportedCost: number | undefined;
  let finishReason: FinishReason | undefined;
  let rawFinish: string | undefined;
  let reportedModel: string | undefined;
  let reportedProvider: string | undefined;
  let firstAt: number | undefined;
  let lastAt: number | undefined;
  let contentEvents = 0;
  let text = '';
  let writer: StreamWriter | undefined;
  let started = false;
  let lastWrite = performance.now();
  let keepAlive: NodeJS.Timeout | undefined;

  /** `final`: the answering deployment is known (false when a keep-alive commits the 200 early; trailers say it then). */
  const commitHeaders = (final = true): void => {
    if (res.headersSent) return;
    const headers: Record<string, string> = {
      ...p.headers,
      'content-type': writer?.contentType ?? 'application/json',
      'cache-control': 'no-cache',
      'x-switchboard-overhead-ms': (performance.now() - p.receivedAt - outcome.upstreamMs).toFixed(2),
      trailer: 'x-switchboard-cost, x-switchboard-provider, x-switchboard-model',
    };
    if (deployment && final) {
      headers['x-switchboard-model'] = reportedModel ?? deployment.providerModel;
      headers['x-switchboard-provider'] = deployment.provider;
    }
    res.writeHead(200, headers);
  };

  const routed = (): AsyncIterable<RouteItem> =>
    route(p.routeModel, { ...p.routeOptions, signal: controller.signal, collected: !stream }, (dep, endpoint, signal) =>
      sendRequest(getProtocol(endpoint.protocol), endpoint, { ...parsed.request, model: dep.providerModel, stream }, { signal, fetch: p.fetch }),
    );
  const items = (p.cache ? p.cache.items(routed) : routed())[Symbol.asyncIterator]();

  if (stream) {
    writer = p.server.createStreamWriter(p.meta);
    if (p.keepAliveMs > 0) {
      keepAlive = setInterval(() => {
        if (performance.now() - lastWrite < p.keepAliveMs || res.destroyed) return;
        const frame = writer?.keepAlive() ?? '';
        if (frame === '') return;
        commitHeaders(false);
        res.write(frame);
        lastWrite = performance.now();
      }, Math.max(10, Math.floor(p.keepAliveMs / 2)));
      keepAlive.unref();
    }
  }

  try {
    for (;;) {
      const waitFrom = performance.now();
      let next: IteratorResult<RouteItem>;
      try {
        next = await items.next();
      } finally {
        outcome.upstreamMs += performance.now() - waitFrom;
      }
      if (next.done) break;
      const item = next.value;
      if (item.kind === 'attempt') {
        // A new attempt: whatever the previous one produced never reached the caller.
        deployment = item.deployment;
        events = [];
        usage = undefined;
        reportedCost = undefined;
        finishReason = undefined;
        reportedModel = undefined;
        reportedProvider = undefined;
        text = '';
        continue;
      }
      let content = false;
      const now = performance.now();
      for (const ev of item.events) {
        if (CONTENT.has(ev.type)) {
          content = true;
          firstAt ??= now;
          lastAt = now;
          contentEvents++;
          if (ev.type === 'text-delta' && p.keepText) text += ev.text;
        } else if (ev.type === 'usage') {
          usage = ev.usage;
          if (ev.cost !== undefined) reportedCost = ev.cost;
        } else if (ev.type === 'finish') {
          finishReason = ev.reason;
          rawFinish = ev.rawReason;
        } else if (ev.type === 'start') {
          if (ev.model) reportedModel = ev.model;
          if (ev.provider) reportedProvider = ev.provider;
        }
      }
      if (!writer) {
        for (const ev of item.events) events.push(ev);
        continue;
      }
      if (!started) {
        for (const ev of item.events) events.push(ev);
        if (!content) continue;
        commitHeaders();
        started = true;
        const pending = write(res, writer.start() + writer.write(events));
        events = [];
        lastWrite = performance.now();
        if (pending) await pending;
        continue;
      }
      const pending = write(res, writer.write(item.events));
      lastWrite = performance.now();
      if (pending) await pending;
    }

    outcome.deployment = deployment;
    outcome.usage = usage;
    if (usage && deployment) priceOutcome(outcome, p, deployment, usage, reportedCost);
    outcome.provider = deployment ? (reportedProvider && reportedProvider !== deployment.provider ? `${deployment.provider}/${reportedProvider}` : deployment.provider) : undefined;
    outcome.resolvedModel = reportedModel ?? deployment?.providerModel;
    const end: StreamEnd = { finishReason: finishReason ?? 'stop', cost: outcome.cost };
    if (usage) end.usage = usage;
    if (rawFinish !== undefined) end.rawFinishReason = rawFinish;
    if (p.beforeEnd) await p.beforeEnd(outcome);
    const trailers = {
      'x-switchboard-cost': outcome.cost === null ? 'unknown' : String(outcome.cost),
      'x-switchboard-provider': outcome.provider ?? '',
      'x-switchboard-model': outcome.resolvedModel ?? '',
    };
    if (writer) {
      commitHeaders();
      res.write(started ? '' : writer.start() + writer.write(events));
      res.addTrailers(trailers);
      res.end(writer.end(end));
    } else {
      const body = JSON.stringify(p.server.writeResponse(events, p.meta, end));
      res.writeHead(200, {
        ...p.headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'x-switchboard-model': outcome.resolvedModel ?? '',
        'x-switchboard-provider': outcome.provider ?? '',
        'x-switchboard-cost': trailers['x-switchboard-cost'],
        'x-switchboard-overhead-ms': (performance.now() - p.receivedAt - outcome.upstreamMs).toFixed(2),
      });
      res.end(body);
    }
  } catch (caught) {
    let err = asSwitchboardError(caught);
    if (cancelled) err = new AbortError('The client closed the connection; the upstream request was aborted.');
    else if (timedOut) err = new TimeoutError(`The request took longer than the gateway allows (${p.timeoutMs} ms).`);
    outcome.error = err;
    outcome.deployment = deployment;
    // Cut midway before the provider's usage report: the prompt and one token per content delta
    // received, so a budget is charged what was used rather than nothing.
    if (!usage && deployment && contentEvents > 0) {
      const promptTokens = estimateTokens(parsed.request.messages);
      usage = { promptTokens, completionTokens: contentEvents, totalTokens: promptTokens + contentEvents };
    }
    outcome.usage = usage;
    outcome.provider = deployment?.provider;
    outcome.resolvedModel = reportedModel ?? deployment?.providerModel;
    if (usage && deployment) priceOutcome(outcome, p, deployment, usage, reportedCost);
    if (!cancelled && !res.destroyed) {
      if (res.headersSent && writer) {
        // Bytes went out: the stream ends with the protocol's error event, never a clean end.
        res.end(writer.error(err));
      } else {
        const answer = p.server.writeError(err);
        outcome.status = answer.status;
        const body = JSON.stringify(answer.body);
        res.writeHead(answer.status, { ...p.headers, ...answer.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
        res.end(body);
      }
    }
  } finally {
    clearTimeout(timer);
    if (keepAlive) clearInterval(keepAlive);
    res.off('close', onClose);
    // Leaving early (client gone, write failed) closes the router and with it the upstream request.
    await items.return?.(undefined).catch(() => undefined);
  }
  outcome.cancelled = cancelled;
  if (firstAt !== undefined) outcome.ttftMs = firstAt - p.receivedAt;
  const tokens = usage?.completionTokens ?? contentEvents;
  if (firstAt !== undefined && lastAt !== undefined && tokens > 1) outcome.itlMs = (lastAt - firstAt) / (tokens - 1);
  outcome.text = text;
  return outcome;
}
