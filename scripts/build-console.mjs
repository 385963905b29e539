// Bundles the console (src/console) into dist/console: index.html, app.js (minified, one
// file) and app.css. Run by `npm run build`; the gateway serves the result at `/`.
import { copyFileSync, mkdirSync } from 'node:fs';
import { build } from 'esbuild';

const out = new URL('../dist/console/', import.meta.url);
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [new URL('../src/console/main.tsx', import.meta.url).pathname],
  outfile: new URL('app.js', out).pathname,
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(new URL('../src/console/index.html', import.meta.url), new URL('index.html', out));
copyFileSync(new URL('../src/console/styles.css', import.meta.url), new URL('app.css', out));
