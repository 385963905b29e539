/// <reference lib="dom" />
/**
 * The console in a real browser: Debian's chromium driven headless by playwright-core,
 * against a gateway with virtual keys backed by the simulator (streaming at real speed, so
 * the columns can be watched and stopped). Screenshots go to test-artifacts/console/.
 */
import { mkdirSync, mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGatewayConfig } from '../src/gateway/config.js';
import { openVirtualKeyStack, type VirtualKeyStack } from '../src/gateway/virtual-key-stack.js';
import { formatFemto } from '../src/gateway/key-input.js';
import { MASTER_KEY, startGateway, type RunningGateway } from './helpers/gateway.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(process.cwd(), 'test-artifacts', 'console');
const WAIT = 15_000;

let browser: BrowserContext;
let gw: RunningGateway;
let stack: VirtualKeyStack;

beforeAll(async () => {
  // Replies stream at the simulator's real pace (sim-cheap: ~45 tokens/s), slow enough to watch and stop.
  process.env.SWITCHBOARD_SIM_TIME_SCALE = '1';
  const dir = mkdtempSync(join(tmpdir(), 'sb-console-'));
  const yaml = `master_key: ${MASTER_KEY}\nlogging: { content: true, access_log: false }\nvirtual_keys:\n  ledger: ${join(dir, 'ledger.db')}\n`;
  const env = { SWITCHBOARD_KEY_PEPPER: 'console-test-pepper', SWITCHBOARD_HOME: dir };
  stack = await openVirtualKeyStack(parseGatewayConfig(yaml, 'test.yaml', { ...process.env, ...env }), { log: () => {} });
  gw = await startGateway(yaml, { env, authenticator: stack.keys, admission: stack.admission, admin: stack.admin, readiness: stack.readiness, ledger: stack.ledger });
  mkdirSync(SHOTS, { recursive: true });
  // A fresh profile directory each run (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'sb-chromium-')), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 860 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gw?.close();
  await stack?.close();
  process.env.SWITCHBOARD_SIM_TIME_SCALE = '0';
});

async function login(key = MASTER_KEY): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(WAIT);
  await page.goto(gw.url);
  await page.fill('#login-key', key);
  await page.click('button[type=submit]');
  await page.waitForSelector('nav[aria-label=Pages]');
  return page;
}

async function setModel(page: Page, column: number, model: string): Promise<void> {
  const input = page.locator(`[data-column="${column}"] .picker input`);
  await input.fill(model);
  await input.press('Enter');
}

describe.skipIf(!existsSync(CHROMIUM))('the console in chromium', () => {
  it('logs in, streams two models side by side, keeps a column\'s history across a model switch, stops a reply', async () => {
    const page = await login();
    await setModel(page, 0, 'sim/llama@sim-cheap');
    await setModel(page, 1, 'sim/mini@sim-cheap');
    await page.fill('#prompt', 'Tell me about lighthouses and their keepers');
    await page.click('form.composer button[type=submit]');
    // Both columns are streaming at once: each has text while its reply is not done.
    await page.waitForFunction(() => [0, 1].every((i) => {
      const t = document.querySelector(`[data-column="${i}"] .turn[data-state="streaming"] .reply`);
      return t !== null && (t.textContent ?? '').length > 0;
    }));
    await page.waitForFunction(() => document.querySelectorAll('.turn[data-state="done"]').length === 2);
    for (const i of [0, 1]) {
      const stats = await page.locator(`[data-column="${i}"] .turn .stats`).first().textContent();
      expect(stats).toMatch(/sim-cheap · \d+ in \/ \d+ out · \$0\.\d{6} · TTFT \d/);
    }
    await page.screenshot({ path: join(SHOTS, 'playground.png') });

    // Switch column 2's model: its next request carries the earlier turn.
    await setModel(page, 1, 'sim/llama@sim-fast');
    const sent = page.waitForRequest((r) => r.url().endsWith('/v1/chat/completions') && (r.postDataJSON() as { model: string }).model === 'sim/llama@sim-fast');
    await page.fill('#prompt', 'And the most famous one?');
    await page.click('form.composer button[type=submit]');
    const body = (await sent).postDataJSON() as { messages: { role: string; content: string }[] };
    expect(body.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(body.messages[0]?.content).toBe('Tell me about lighthouses and their keepers');
    await page.waitForFunction(() => document.querySelectorAll('.turn[data-state="done"]').length === 4);
    expect(await page.locator('[data-column="1"] .answered-by').allTextContents()).toEqual(['sim/mini@sim-cheap', 'sim/llama@sim-fast']);
    expect(await page.locator('[data-column="1"] .history-size').getAttribute('data-history')).toBe('4');

    // Stop: the reply ends where it was.
    await page.fill('#prompt', 'Write a long story about the sea');
    await page.click('form.composer button[type=submit]');
    await page.waitForFunction(() => (document.querySelector('[data-column="0"] .turn[data-state="streaming"] .reply')?.textContent ?? '').length > 0);
    await page.locator('[data-column="0"] .column-head button', { hasText: 'Stop' }).click();
    await page.waitForSelector('[data-column="0"] .turn[data-state="stopped"]');
    await page.close();
  }, 60_000);

  it('a failed model shows its error in its column while the other answers', async () => {
    const page = await login();
    await setModel(page, 0, 'sim/nonexistent');
    await page.fill('#prompt', 'Hello there');
    await page.click('form.composer button[type=submit]');
    await page.waitForSelector('[data-column="0"] .turn[data-state="error"] .error');
    await page.waitForSelector('[data-column="1"] .turn[data-state="done"]');
    expect(await page.locator('[data-column="0"] p.error').textContent()).toMatch(/nonexistent/);
    expect(await page.locator('[data-column="0"] .history-size').getAttribute('data-history')).toBe('0');
    await page.close();
  }, 30_000);

  it('the spend page\'s totals equal the ledger\'s and its chart has points for each model', async () => {
    const page = await login();
    await page.click('nav a[href="/spend"]');
    await page.waitForSelector('table.totals tfoot [data-cost]');
    const rows = await stack.ledger.usage({ by: 'model' });
    const total = rows.reduce((n, r) => n + r.costFemto, 0n);
    expect(await page.locator('table.totals tfoot [data-cost]').getAttribute('data-cost')).toBe(formatFemto(total));
    const shown = await page.locator('table.totals tfoot [data-cost]').textContent();
    expect(shown?.replace(/[^\d.]/g, '')).toBe(formatFemto(total));
    for (const r of rows) expect(await page.locator(`table.totals tbody tr:has(th:text-is("${r.key}")) [data-cost]`).getAttribute('data-cost')).toBe(formatFemto(r.costFemto));
    const points = JSON.parse((await page.locator('.chart canvas').first().getAttribute('data-points')) ?? '{}') as Record<string, number>;
    expect(Object.keys(points).sort()).toEqual(rows.map((r) => r.key).sort());
    for (const n of Object.values(points)) expect(n).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, 'spend.png') });
    await page.close();
  }, 30_000);

  it('logs search finds a conversation and opens its turns', async () => {
    const page = await login();
    await page.click('nav a[href="/logs"]');
    await page.fill('input:near(:text("Search"))', 'lighthouses');
    await page.click('form.toolbar button[type=submit]');
    await page.waitForSelector('table.logs tr.entry');
    // The two columns' first turns asked it; later replies may mention it too.
    expect(await page.locator('table.logs tr.entry').count()).toBeGreaterThanOrEqual(2);
    await page.locator('table.logs tr.entry button').first().click();
    await page.waitForSelector('table.logs tr.detail .turn .user');
    // The entry's message or its reply holds the words searched for.
    expect(await page.locator('tr.detail .turn').first().textContent()).toMatch(/lighthouses/i);
    await page.screenshot({ path: join(SHOTS, 'logs.png') });
    await page.close();
  }, 30_000);

  it('creates and revokes a key; that key cannot open the keys page', async () => {
    const page = await login();
    await page.click('nav a[href="/keys"]');
    await page.fill('input:near(:text("Name"))', 'browser-app');
    await page.fill('input:near(:text("Budget ($)"))', '5');
    await page.click('form[aria-label="Create a key"] button[type=submit]');
    const secret = (await page.locator('.secret .new-key').textContent()) ?? '';
    expect(secret).toMatch(/^sk-sb-[0-9a-f]+_/);
    await page.waitForSelector('tr[data-key="browser-app"]');
    await page.screenshot({ path: join(SHOTS, 'keys.png') });

    const other = await login(secret);
    expect(await other.locator('nav a[href="/keys"]').count()).toBe(0);
    await other.goto(`${gw.url}/keys`);
    await other.waitForSelector('main .error');
    expect(await other.locator('main .error').textContent()).toMatch(/admin/);
    await other.close();

    await page.locator('tr[data-key="browser-app"] button', { hasText: 'Revoke' }).click();
    await page.waitForFunction(() => /revoked/.test(document.querySelector('tr[data-key="browser-app"] .state')?.textContent ?? ''));
    expect((await stack.ledger.getKey('browser-app'))?.revokedAt).toBeDefined();
    await page.close();
  }, 30_000);

  it('the routing page shows each deployment and each mode\'s pick', async () => {
    const page = await login();
    await page.click('nav a[href="/routing"]');
    await page.waitForSelector('article.route h2');
    expect(await page.locator('article.route h2').allTextContents()).toEqual(expect.arrayContaining(['sim/llama', 'sim/mini']));
    expect(await page.locator('article.route th:text-is("@lowest-cost")').count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, 'routing.png'), fullPage: true });
    await page.close();
  }, 30_000);
});
