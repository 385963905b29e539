/// <reference lib="dom" />
/**
 * CORS in a real browser: Debian's chromium, headless, driven by playwright-core. A page
 * served from one loopback origin calls the gateway (backed by the simulator) at another
 * with fetch and an Authorization header, which makes chromium send a preflight first. From
 * the allowed origin the page streams a reply and reads its text and the exposed headers;
 * from an origin not in `cors.origins` the browser's fetch fails and no model is asked.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MASTER_KEY, startGateway, type RunningGateway } from './helpers/gateway.js';

const CHROMIUM = '/usr/bin/chromium';

let site: Server;
let sitePort: number;
let gw: RunningGateway;
/** A gateway without a master key and without cors: what `switchboard serve` is on a laptop. */
let openGw: RunningGateway;
let browser: BrowserContext;

/** What the page's script saw of one call. */
interface Seen {
  status?: number;
  text?: string;
  streamedCost?: number;
  headers?: Record<string, string | null>;
  failed?: string;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  // The web app's origin: a page with nothing on it, from which the test runs its scripts.
  site = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>an app</title><p>an app that calls the gateway</p>');
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  sitePort = (site.address() as AddressInfo).port;
  // Only the page's 127.0.0.1 origin is allowed; the same page reached as localhost is another origin.
  gw = await startGateway(`cors:\n  origins: [http://127.0.0.1:${sitePort}]\n`);
  openGw = await startGateway('', { open: true });
  browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'sb-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.close();
  await openGw?.close();
  await new Promise((resolve) => (site ? site.close(resolve) : resolve(undefined)));
});

async function pageAt(origin: string): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(`${origin}/`);
  return page;
}

/** Run in the page: POST /v1/chat/completions with a bearer key, streamed or not; read what a browser lets the script read. */
function callGateway(page: Page, stream: boolean): Promise<Seen> {
  return page.evaluate(
    async ({ gateway, key, stream }) => {
      const seen: Seen = {};
      try {
        const res = await fetch(`${gateway}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'sim/llama@sim-fast', stream, stream_options: stream ? { include_usage: true } : undefined, messages: [{ role: 'user', content: 'Say hello to the browser' }] }),
        });
        seen.status = res.status;
        seen.headers = Object.fromEntries(['x-request-id', 'x-switchboard-model', 'x-switchboard-provider', 'x-switchboard-cost', 'x-switchboard-overhead-ms'].map((h) => [h, res.headers.get(h)]));
        if (!stream) {
          const body = (await res.json()) as { choices: { message: { content: string } }[] };
          seen.text = body.choices[0]?.message.content ?? '';
          return seen;
        }
        // The SSE stream as it arrives: text deltas, then the usage chunk with the cost.
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        const decoder = new TextDecoder();
        let buffered = '';
        seen.text = '';
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          buffered += decoder.decode(r.value, { stream: true });
          const events = buffered.split('\n\n');
          buffered = events.pop() ?? '';
          for (const event of events) {
            const data = event.replace(/^data: /, '');
            if (data === '[DONE]' || !data.startsWith('{')) continue;
            const chunk = JSON.parse(data) as { choices: { delta?: { content?: string } }[]; usage?: { cost?: number } };
            seen.text += chunk.choices[0]?.delta?.content ?? '';
            if (chunk.usage?.cost !== undefined) seen.streamedCost = chunk.usage.cost;
          }
        }
      } catch (err) {
        seen.failed = String(err);
      }
      return seen;
    },
    { gateway: gw.url, key: MASTER_KEY, stream },
  );
}

/** A counter's value in the gateway's /metrics (0 when the series is absent). */
async function metric(series: string, of = gw): Promise<number> {
  const text = await (await fetch(`${of.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

describe.skipIf(!existsSync(CHROMIUM))('CORS in chromium', () => {
  it('a page on an allowed origin streams a reply and reads the gateway\'s headers', async () => {
    const page = await pageAt(`http://127.0.0.1:${sitePort}`);
    const streamed = await callGateway(page, true);
    expect(streamed.failed).toBeUndefined();
    expect(streamed.status).toBe(200);
    expect(streamed.text?.length).toBeGreaterThan(0);
    expect(streamed.streamedCost).toBeGreaterThan(0);
    // A stream's cost is an HTTP trailer, which browsers do not hand to scripts; its first headers are readable.
    expect(streamed.headers?.['x-request-id']).toMatch(/^req_/);
    expect(streamed.headers?.['x-switchboard-provider']).toBe('sim-fast');
    expect(streamed.headers?.['x-switchboard-model']).toBeTruthy();
    expect(Number(streamed.headers?.['x-switchboard-overhead-ms'])).toBeGreaterThanOrEqual(0);

    const whole = await callGateway(page, false);
    expect(whole.status).toBe(200);
    expect(whole.text?.length).toBeGreaterThan(0);
    expect(Number(whole.headers?.['x-switchboard-cost'])).toBeGreaterThan(0);
    // The Authorization header made chromium ask first.
    expect(await metric('switchboard_cors_preflights_total{result="allowed"}')).toBeGreaterThanOrEqual(1);
    await page.close();
  }, 30_000);

  it('from an origin not in cors.origins the browser\'s fetch fails and no model is asked', async () => {
    const before = await metric('switchboard_requests_total{protocol="openai",status="200"}');
    const page = await pageAt(`http://localhost:${sitePort}`);
    const seen = await callGateway(page, true);
    expect(seen.failed).toMatch(/TypeError: Failed to fetch/);
    expect(seen.status).toBeUndefined();
    expect(await metric('switchboard_cors_preflights_total{result="refused"}')).toBe(1);
    expect(await metric('switchboard_requests_total{protocol="openai",status="200"}')).toBe(before);
    await page.close();
  }, 30_000);

  it('a page cannot make the browser spend on an open gateway with a blind no-cors POST: refused before any model runs', async () => {
    const page = await pageAt(`http://localhost:${sitePort}`);
    // A Blob body sends no Content-Type, so the browser needs no preflight: the request itself goes out.
    const sent = await page.evaluate(async (gateway) => {
      const body = new Blob([JSON.stringify({ model: 'sim/llama@sim-fast', messages: [{ role: 'user', content: 'spend the owner\'s money' }] })]);
      const res = await fetch(`${gateway}/v1/chat/completions`, { method: 'POST', mode: 'no-cors', body });
      return res.type;
    }, openGw.url);
    expect(sent).toBe('opaque');
    await expect.poll(() => metric('switchboard_rejected_total{reason="cors_origin_not_allowed"}', openGw)).toBe(1);
    expect(await metric('switchboard_requests_total{protocol="openai",status="200"}', openGw)).toBe(0);
    // The access log is written in batches (every 100 ms).
    await expect.poll(() => openGw.accessLog.find((l) => l.error_type === 'cors_origin_not_allowed')?.origin).toBe(`http://localhost:${sitePort}`);
    await page.close();
  }, 30_000);
});
