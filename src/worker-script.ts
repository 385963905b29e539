/**
 * Where a worker thread's script is: built beside the module that starts it. From dist/ that is
 * next to the module; from the TypeScript source (the tests run it) it is the same file under
 * dist/, which `npm run build` makes (`npm test` builds first).
 */
import { existsSync } from 'node:fs';

/** `name` (e.g. `./ledger-worker.js`) beside `moduleURL` (the caller's `import.meta.url`), or its built copy. */
export function workerScriptURL(name: string, moduleURL: string): URL {
  const here = new URL(name, moduleURL);
  if (existsSync(here)) return here;
  // The last /src/ of the path is the source tree: the built file is at the same place under dist/.
  return new URL(here.href.replace(/\/src\/(?!.*\/src\/)/, '/dist/'));
}
