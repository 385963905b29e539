/**
 * Limits that keep a request from hanging or exhausting memory, with their defaults. Every
 * one can be changed per client or per request (`limits: { idleTimeout: 300_000 }`); `0` or
 * `Infinity` turns one off.
 */

export interface Limits {
  /** Milliseconds to wait for a server's response headers (default 60 000). */
  firstByteTimeout?: number;
  /**
   * Milliseconds a reply may go without progress: in a stream, without one complete event
   * (keep-alive comments and stray bytes do not count); in a JSON reply, without a byte
   * (default 60 000).
   */
  idleTimeout?: number;
  /** Bytes of one reply body (default 64 MiB). */
  maxReplyBytes?: number;
  /** Bytes of one piece of media (default 20 MB, what providers accept per item). */
  maxMediaBytes?: number;
  /** Bytes of all the media in one message together (default 50 MB). */
  maxRequestMediaBytes?: number;
  /** Milliseconds to load the media of one message from files and URLs (default 30 000). */
  mediaTimeout?: number;
}

export const DEFAULT_LIMITS: Readonly<Required<Limits>> = {
  firstByteTimeout: 60_000,
  idleTimeout: 60_000,
  maxReplyBytes: 64 * 1024 * 1024,
  maxMediaBytes: 20_000_000,
  maxRequestMediaBytes: 50_000_000,
  mediaTimeout: 30_000,
};

/** A limit's value: the given one, else the default; `undefined` when turned off (0 or Infinity). */
export function limitOf(limits: Limits | undefined, name: keyof Limits): number | undefined {
  const value = limits?.[name] ?? DEFAULT_LIMITS[name];
  return value > 0 && Number.isFinite(value) ? value : undefined;
}

/** The caller's limits over the client's. */
export function mergeLimits(client: Limits | undefined, request: Limits | undefined): Limits | undefined {
  if (!request) return client;
  if (!client) return request;
  return { ...client, ...request };
}
