/**
 * Redis round trips per request, counted where the commands leave: every Redis client that
 * switchboard opens (createRedisClient) reports each command it sends, so no store can send one
 * that the count misses.
 *
 * A request is followed through every await by an AsyncLocalStorage (`traceRedis` wraps the
 * gateway's handling of one request). A command sent while serving it is one step deeper than
 * the deepest of the request's commands already answered: commands in flight together (the
 * settle script beside a ledger write) are one round trip, a command sent after another's reply
 * (seed, then reserve) the next. The request's round trips are its deepest step: the sequential
 * round trips it waited for. Counting answers, not socket writes, cannot under-count: a command
 * that needed a reply to be built was necessarily sent after that reply arrived. (A command sent
 * after some unrelated reply counts a step too: the count errs high, never low.) Commands sent
 * outside any request (the ledger's consumer, routing measurements, the clock) count as background,
 * and so do writes a request starts but does not wait for (`untracedRedis`: the reservation row a
 * long request writes after 200 ms).
 *
 * Without any Redis client in the process, `traceRedis` runs its function as it is (the embedded
 * stores pay nothing for this).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** A counter's cell (GatewayMetrics hands in its own, so /metrics shows them). */
export interface TraceCell {
  value: number;
}

export interface RedisTraffic {
  /** Commands sent while serving a request. */
  requestCommands: TraceCell;
  /** Sequential round trips of requests: each request adds its deepest step. */
  requestRoundTrips: TraceCell;
  /** Commands sent outside any request. */
  backgroundCommands: TraceCell;
}

interface Trace {
  /** The deepest step of this request's commands answered so far. */
  answered: number;
  /** The deepest step sent so far (already added to requestRoundTrips). */
  deepest: number;
}

const requests = new AsyncLocalStorage<Trace>();
let traffic: RedisTraffic = { requestCommands: { value: 0 }, requestRoundTrips: { value: 0 }, backgroundCommands: { value: 0 } };
let instrumented = false;

/** Count into these cells from now on (the gateway's metrics). */
export function countRedisInto(cells: RedisTraffic): void {
  traffic = cells;
}

/** The cells being counted into. */
export function redisTraffic(): RedisTraffic {
  return traffic;
}

/** Run one request's handling, its Redis commands counted as its own. */
export function traceRedis<T>(handle: () => T): T {
  return instrumented ? requests.run({ answered: 0, deepest: 0 }, handle) : handle();
}

/** Run `work` outside the request being served: its commands are background (the request does not wait for them). */
export function untracedRedis<T>(work: () => T): T {
  return instrumented ? requests.exit(work) : work();
}

type Send = (args: readonly string[], options?: unknown) => Promise<unknown>;

/**
 * Report every command `client` sends. node-redis hands out an object whose prototype is the
 * client itself (`_self`), and its typed helpers (`get`, `set`) call `_self.sendCommand`: the
 * method is replaced there, so every path to the socket goes through the count.
 */
export function instrumentRedisClient<C extends { sendCommand: unknown }>(client: C): C {
  instrumented = true;
  const self = ((client as { _self?: unknown })._self ?? client) as { sendCommand: Send };
  const send = self.sendCommand.bind(self);
  const counted: Send = (args, options) => {
    const trace = requests.getStore();
    if (!trace) {
      traffic.backgroundCommands.value++;
      return send(args, options);
    }
    traffic.requestCommands.value++;
    const step = trace.answered + 1;
    if (step > trace.deepest) {
      traffic.requestRoundTrips.value += step - trace.deepest;
      trace.deepest = step;
    }
    const reply = send(args, options);
    // Registered before the caller's own continuation, so a command sent from there sees this answer.
    const answered = (): void => {
      if (step > trace.answered) trace.answered = step;
    };
    reply.then(answered, answered);
    return reply;
  };
  self.sendCommand = counted;
  return client;
}
