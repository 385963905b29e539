/**
 * The router: a model string to the deployment(s) that answer it, one attempt after another.
 *
 * It yields an `attempt` item each time it starts talking to a deployment, then that
 * attempt's event batches. A consumer that sees a new `attempt` item discards whatever the
 * previous attempt had produced (the router only moves on before anything reached the caller).
 */
import type { Endpoint } from '../protocols/protocol.js';
import { endpointFor, resolveModel, type Deployment, type ResolveContext } from '../providers/resolve.js';
import type { ProtocolEvent } from '../types.js';

export type RouteItem =
  | { kind: 'attempt'; deployment: Deployment; endpoint: Endpoint }
  | { kind: 'events'; events: ProtocolEvent[] };

/** Sends one request to one deployment and yields its event batches. */
export type AttemptFn = (
  deployment: Deployment,
  endpoint: Endpoint,
  signal: AbortSignal | undefined,
) => AsyncIterable<ProtocolEvent[]>;

export interface RouteOptions extends ResolveContext {
  signal?: AbortSignal | undefined;
}

export async function* route(modelString: string, options: RouteOptions, attempt: AttemptFn): AsyncGenerator<RouteItem> {
  const deployment = resolveModel(modelString, options);
  const endpoint = await endpointFor(deployment, options);
  yield { kind: 'attempt', deployment, endpoint };
  for await (const events of attempt(deployment, endpoint, options.signal)) {
    yield { kind: 'events', events };
  }
}

/** Check a model string without sending anything; throws a typed error that says what is wrong. */
export function checkModelString(modelString: string, options: ResolveContext): void {
  resolveModel(modelString, options);
}
