/**
 * The gateway carries a request's exact cost in femto-dollars to the request log: a cost the
 * provider reports is read by its decimal digits (money.ts), not multiplied out of a double.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MASTER_KEY, startGateway } from './helpers/gateway.js';

/** More than $9, where a double no longer holds every femto-dollar: 12.345678901234567 * 1e15 rounds to ...568. */
const REPORTED_COST = 12.345678901234567;

let upstream: Server;
let upstreamURL: string;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'c1',
          object: 'chat.completion',
          model: 'priced-model',
          choices: [{ index: 0, message: { role: 'assistant', content: 'An expensive answer.' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14, cost: REPORTED_COST },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamURL = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => upstream.close(() => resolve())));

describe('exact cost', () => {
  it('logs the reported cost as its exact femto-dollars, in the request row and the turn', async () => {
    const gw = await startGateway(`providers:\n  - { name: local, protocol: openai, base_url: "${upstreamURL}/v1" }\n`);
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${MASTER_KEY}` },
      body: JSON.stringify({ model: 'priced-model@local', messages: [{ role: 'user', content: 'How much?' }] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-switchboard-cost')).toBe(String(REPORTED_COST));
    await res.text();
    await gw.close(); // flushes the request log

    const db = new Database(join(gw.home, 'logs.db'), { readonly: true });
    try {
      const request = db.prepare('SELECT cost_femto FROM requests').get() as { cost_femto: string };
      expect(request.cost_femto).toBe('12345678901234567');
      const turn = db.prepare('SELECT cost_femto FROM turns').safeIntegers().get() as { cost_femto: bigint };
      expect(turn.cost_femto).toBe(12345678901234567n);
    } finally {
      db.close();
    }
  });
});
