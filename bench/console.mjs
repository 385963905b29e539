// bench:console: the console's first page. Prints the gzipped size of the JavaScript and CSS
// the first page loads, and the time to interactive in headless chromium (navigation start to
// the playground's composer accepting input, logged in), median of 5 cold loads.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { parseGatewayConfig } from '../dist/gateway/config.js';
import { Gateway } from '../dist/gateway/gateway.js';

const dir = new URL('../dist/console/', import.meta.url);
const gz = (f) => gzipSync(readFileSync(new URL(f, dir))).length;
const js = gz('app.js');
const css = gz('app.css');

const key = 'sk-bench-console-master';
const gateway = new Gateway({ config: parseGatewayConfig(`master_key: ${key}\nlogging: { access_log: false, requests: false }\n`, 'bench.yaml', process.env), requestLog: false });
const url = await gateway.listen(0, '127.0.0.1');
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
const times = [];
for (let i = 0; i < 5; i++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}/#key=${key}`);
  await page.waitForSelector('#prompt:not([disabled])');
  times.push(await page.evaluate(() => performance.now()));
  await context.close();
}
await browser.close();
await gateway.shutdown(100);
times.sort((a, b) => a - b);
const median = times[2];
console.log(`first page: app.js ${(js / 1024).toFixed(1)} KB gzipped (limit 250 KB), app.css ${(css / 1024).toFixed(1)} KB gzipped`);
console.log(`time to interactive (logged in, playground ready): median ${median.toFixed(0)} ms of ${times.map((t) => t.toFixed(0)).join(', ')} (limit 1000 ms)`);
console.log(JSON.stringify({ js_gzip_bytes: js, css_gzip_bytes: css, tti_ms_median: Math.round(median), js_of_limit: +(js / (250 * 1024)).toFixed(3), tti_of_limit: +(median / 1000).toFixed(3) }));
