/**
 * The console's static files (built into `dist/console/` by `npm run build`), served at `/`.
 * Files are read once and kept in memory with their gzip form; the page is a single-page app,
 * so any other GET path that is not an API answers with index.html.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
}

/** Where the built console sits: beside this module in the package (dist/gateway -> dist/console); from the source tree, dist/console. */
export const CONSOLE_DIR = [new URL('../console/', import.meta.url), new URL('../../dist/console/', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((dir) => existsSync(join(dir, 'app.js'))) ?? fileURLToPath(new URL('../console/', import.meta.url));

export class ConsoleAssets {
  readonly #files = new Map<string, Asset>();

  constructor(dir = CONSOLE_DIR) {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const body = readFileSync(join(dir, name));
      this.#files.set(`/${name}`, { type: TYPES[extname(name)] ?? 'application/octet-stream', body, gzip: gzipSync(body) });
    }
  }

  get available(): boolean {
    return this.#files.has('/index.html');
  }

  /** Whether this GET path is the console's (`/`, `/app.js`, `/spend`...). */
  handles(path: string): boolean {
    return this.available && (this.#files.has(path) || path === '/' || /^\/(playground|spend|logs|routing|keys|login)\/?$/.test(path));
  }

  serve(req: IncomingMessage, res: ServerResponse, path: string): void {
    const asset = this.#files.get(path) ?? (this.#files.get('/index.html') as Asset);
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? asset.gzip : asset.body;
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': String(body.length),
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      vary: 'accept-encoding',
      // The HTML names the bundle; the bundle changes only with a new build of the package.
      'cache-control': asset.type.startsWith('text/html') ? 'no-cache' : 'public, max-age=3600',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'",
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}
