/**
 * Cross-origin requests from browsers (CORS) to the model API, when the config has a `cors`
 * section (docs/gateway.md, "Browsers (CORS)"). Without one the gateway sends no CORS header
 * at all and answers OPTIONS as any other method it does not serve.
 *
 * - An allowed origin is one of `cors.origins`: an exact origin, a pattern with a port
 *   wildcard (`http://localhost:*`) or a subdomain wildcard (`https://*.example.com`), or `*`
 *   for any origin. The request's `Origin` is echoed only when it matches; an arbitrary one is
 *   never reflected. With a list (not `*`) every response says `Vary: Origin`, so a cache
 *   never hands one origin's answer to another.
 * - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here,
 *   before authentication: 204 with the allow headers for an allowed origin, 403 with none for
 *   another. It is neither a model request nor a line in the request log.
 * - An actual response to an allowed origin carries `Access-Control-Allow-Origin` and
 *   `Access-Control-Expose-Headers` (EXPOSED_HEADERS), so browser code can read the gateway's
 *   headers. Credentials are bearer headers, never cookies: no `Allow-Credentials`.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { GatewayCorsConfig } from './config.js';

/** Response headers of the gateway's own that browser code may read (on top of the CORS-safelisted ones). */
export const EXPOSED_HEADERS: readonly string[] = [
  'x-request-id',
  'x-switchboard-model',
  'x-switchboard-provider',
  'x-switchboard-cost',
  'x-switchboard-overhead-ms',
  'x-switchboard-cache',
  'x-switchboard-saved-cost',
  'x-switchboard-budget-remaining',
  'x-ratelimit-limit-requests',
  'x-ratelimit-remaining-requests',
  'x-ratelimit-reset-requests',
  'x-ratelimit-limit-tokens',
  'x-ratelimit-remaining-tokens',
  'x-ratelimit-reset-tokens',
  'retry-after',
  'retry-after-ms',
];

/**
 * Allowed request headers when a preflight names none or names them unreadably: what the
 * OpenAI, Anthropic and Google SDKs send besides the `x-stainless-*` family. (A preflight
 * that names its headers gets them echoed, x-stainless-* included.)
 */
const DEFAULT_ALLOW_HEADERS = [
  'authorization',
  'content-type',
  'x-api-key',
  'x-goog-api-key',
  'x-goog-api-client',
  'anthropic-version',
  'anthropic-beta',
  'anthropic-dangerous-direct-browser-access',
  'x-request-id',
  'cache-control',
].join(', ');

/** A comma-separated list of header names (RFC 9110 tokens), as `Access-Control-Request-Headers` carries it. */
const HEADER_LIST = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;
/** One header name. */
export const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** One entry of `cors.origins`, checked and lower-cased. */
interface OriginPattern {
  scheme: string;
  /** The host, or with `subdomains` the domain whose subdomains match (`example.com`). */
  host: string;
  /** `*.` before the host: any subdomain of it, at any depth, and not the domain itself. */
  subdomains: boolean;
  /** `''` for the scheme's default port (the browser then sends none), `'*'` for any port. */
  port: string;
}

const PATTERN = /^(https?):\/\/(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::(\d{1,5}|\*))?$/;
const DEFAULT_PORTS: Record<string, string> = { http: '80', https: '443' };

/**
 * Read one entry of `cors.origins` (`*` aside): an origin as a browser sends it,
 * `scheme://host[:port]`, where the port may be `*` and the host may start with `*.`. Returns
 * the pattern, or why the text is not one (for the config error).
 */
export function parseOriginPattern(text: string): OriginPattern | string {
  const lower = text.trim().toLowerCase();
  if (lower === '*') return "'*' stands for every origin and must stand alone: write origins: '*'";
  if (/^https?:\/\/[^/]+\/.*$/.test(lower)) return `"${text}" has a path; an origin is only scheme://host[:port] (no "/" at the end)`;
  const m = PATTERN.exec(lower);
  if (!m) return `"${text}" is not an origin; write scheme://host[:port], such as https://app.example.com or http://localhost:* (hosts in ASCII, punycode for others)`;
  const [, scheme = '', star, host = '', port = ''] = m;
  if (star && (host.startsWith('[') || /^[\d.]+$/.test(host) || !host.includes('.'))) {
    return `"${text}": "*." must stand before a domain of two labels or more (https://*.example.com), not an address or a top-level domain`;
  }
  // A port as the browser writes it: no leading zeros, none at all for the scheme's default.
  const number = port === '' || port === '*' ? port : String(Number(port));
  if (number !== '' && number !== '*' && !(Number(number) >= 1 && Number(number) <= 65535)) return `"${text}" has a port outside 1-65535`;
  return { scheme, host, subdomains: star !== undefined, port: number === DEFAULT_PORTS[scheme] ? '' : number };
}

/** A pattern written back as the origin text a browser would send (for an exact one) or as configured. */
export function originPatternText(p: OriginPattern): string {
  return `${p.scheme}://${p.subdomains ? '*.' : ''}${p.host}${p.port === '' ? '' : `:${p.port}`}`;
}

/** A request's Origin cut into its parts, to test it against the wildcard patterns. */
const REQUEST_ORIGIN = /^([a-z][a-z0-9+.-]*):\/\/([^/:?#[\]]+|\[[^\]/]+\])(?::(\d+))?$/;

function matches(p: OriginPattern, scheme: string, host: string, port: string): boolean {
  if (p.scheme !== scheme) return false;
  if (p.port !== '*' && p.port !== port) return false;
  // `.example.com` as the suffix: `evil-example.com` does not end with it, `a.example.com` does.
  return p.subdomains ? host.length > p.host.length + 1 && host.endsWith(`.${p.host}`) : host === p.host;
}

/** One configuration's CORS rules, built once per (re)load so a request does only lookups. */
export class CorsPolicy {
  readonly #anyOrigin: boolean;
  /** Origins without a wildcard, exactly as a browser sends them. */
  readonly #exact: Set<string>;
  readonly #wildcards: OriginPattern[];
  readonly #expose: string;
  readonly #maxAge: string;

  constructor(config: GatewayCorsConfig) {
    this.#anyOrigin = config.origins === '*';
    // The config has checked every entry already (config.ts), so none is dropped here.
    const patterns = config.origins === '*' ? [] : config.origins.map(parseOriginPattern).filter((p): p is OriginPattern => typeof p !== 'string');
    this.#exact = new Set(patterns.filter((p) => !p.subdomains && p.port !== '*').map(originPatternText));
    this.#wildcards = patterns.filter((p) => p.subdomains || p.port === '*');
    this.#expose = [...new Set([...EXPOSED_HEADERS, ...config.exposeHeaders])].join(', ');
    this.#maxAge = String(config.maxAgeSeconds);
  }

  /** Whether any origin may call (`origins: '*'`). */
  get anyOrigin(): boolean {
    return this.#anyOrigin;
  }

  /** The `Access-Control-Allow-Origin` value for a request's `Origin`; undefined when it is not allowed. */
  allowOrigin(origin: string | undefined): string | undefined {
    if (origin === undefined) return undefined;
    if (this.#anyOrigin) return '*';
    if (this.#exact.has(origin)) return origin;
    if (this.#wildcards.length === 0) return undefined;
    const m = REQUEST_ORIGIN.exec(origin);
    if (!m) return undefined;
    const [, scheme = '', host = '', port = ''] = m;
    return this.#wildcards.some((p) => matches(p, scheme, host, port)) ? origin : undefined;
  }

  /** Add the CORS headers of an actual (not preflight) response to `headers`. */
  addResponseHeaders(headers: Record<string, string>, origin: string | undefined): void {
    // The answer depends on Origin whenever the allowed value is not '*', matching or not.
    if (!this.#anyOrigin) headers.vary = 'Origin';
    const allowed = this.allowOrigin(origin);
    if (allowed === undefined) return;
    headers['access-control-allow-origin'] = allowed;
    headers['access-control-expose-headers'] = this.#expose;
  }

  /**
   * Answer a preflight for a path served with `methods` (`POST`, `GET`). An allowed origin
   * gets 204 with the allow headers, the requested headers echoed when they are a readable
   * list; another gets 403 and no CORS header, so the browser refuses the call. Returns
   * whether the origin was allowed.
   */
  answerPreflight(headers: IncomingHttpHeaders, res: ServerResponse, methods: string, base: Record<string, string>): boolean {
    const allowed = this.allowOrigin(headers.origin);
    if (allowed === undefined) {
      const body = `{"error":{"message":${JSON.stringify(`The origin ${String(headers.origin)} may not call this gateway from a browser (cors.origins).`)},"type":"cors_origin_not_allowed"}}`;
      const refused: Record<string, string> = { ...base, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
      if (!this.#anyOrigin) refused.vary = 'Origin';
      res.writeHead(403, refused);
      res.end(body);
      return false;
    }
    const requested = headers['access-control-request-headers'];
    const answer: Record<string, string> = {
      ...base,
      'access-control-allow-origin': allowed,
      'access-control-allow-methods': methods,
      'access-control-allow-headers': requested !== undefined && HEADER_LIST.test(requested) ? requested : DEFAULT_ALLOW_HEADERS,
      'access-control-max-age': this.#maxAge,
      vary: this.#anyOrigin ? 'Access-Control-Request-Headers' : 'Origin, Access-Control-Request-Headers',
    };
    // Chromium's Private Network Access: a public page calling a gateway on a private address
    // asks first; the origin is allowed by the config, so is the network hop.
    if (headers['access-control-request-private-network'] === 'true') answer['access-control-allow-private-network'] = 'true';
    res.writeHead(204, answer);
    res.end();
    return true;
  }
}

/** Whether a request is a CORS preflight (the caller checks the method is OPTIONS). */
export function isPreflight(headers: IncomingHttpHeaders): boolean {
  return headers.origin !== undefined && headers['access-control-request-method'] !== undefined;
}

/**
 * Whether a model request from a web page may be served. A browser names the page's origin in
 * `Origin` (on every POST, same-origin ones included); other clients send none and are not
 * concerned. Without this, a page the user happens to open could make the browser POST to a
 * gateway on the user's machine: a CORS refusal only hides the answer from the page, after
 * the model has run and been paid for. A page may call when:
 * - `cors.origins` allows its origin; or
 * - it is the gateway's own page (the console): its origin is the request's Host. On a gateway
 *   without a master key that Host must also be an address or `localhost`, never another name:
 *   a DNS-rebinding page (evil.example resolved to 127.0.0.1) is "same-origin" by every header
 *   it sends, and only its host name gives it away. With a master key such a page has no key
 *   to send.
 */
export function pageMayCall(cors: CorsPolicy | undefined, headers: IncomingHttpHeaders, openGateway: boolean): boolean {
  const origin = headers.origin;
  if (origin === undefined) return true;
  if (cors?.allowOrigin(origin) !== undefined) return true;
  const host = headers.host?.toLowerCase();
  if (host === undefined) return false;
  const own = origin.toLowerCase();
  if (own !== `http://${host}` && own !== `https://${host}`) return false;
  if (!openGateway) return true;
  const name = host.replace(/:\d+$/, '');
  return name === 'localhost' || name.endsWith('.localhost') || isIP(name.replace(/^\[(.*)\]$/, '$1')) !== 0;
}
