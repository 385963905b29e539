/**
 * Keys outside `apiKey` and the environment: in a custom header (in code or the config file)
 * and in a base URL (`user:secret@`, `?api_key=`). An echoing server sends every header and
 * the URL back in its error; none of it may reach a message, `--json` output, logs.db or
 * metrics.db.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APIError, Chat, ConfigError, SQLiteMetricsStore } from '../src/index.js';
import { runCLI } from './helpers/cli.js';
import { sendJSON, startStandIn, type StandIn } from './helpers/stand-in.js';

const HEADER_SECRET = 'hdr-secret-7f3a9c21';
const CONFIG_SECRET = 'cfg-secret-5d8e1b44';
const URL_PASSWORD = 'pw-secret-91c2e7';
const QUERY_SECRET = 'qry-secret-4b6d0a';

let echo: StandIn;

beforeAll(async () => {
  // Answers 400 with everything it received: the URL and each header, raw and decoded.
  echo = await startStandIn((req, res) => {
    const auth = String(req.headers.authorization ?? '');
    const decoded = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : '';
    sendJSON(res, 400, { error: { message: `bad request to ${req.url} with ${JSON.stringify(req.headers)} ${decoded}`, type: 'invalid_request_error' } });
  });
});
afterAll(() => echo.close());

function everywhere(err: Error): string {
  return [err.message, String((err as APIError).url), (err as APIError).providerMessage, JSON.stringify(err)].join('\n');
}

async function failure(chat: Chat<string>): Promise<Error> {
  return chat.send('Hi').then(
    () => new Error('expected a failure'),
    (e: unknown) => e as Error,
  );
}

describe('secrets outside apiKey are redacted by construction', () => {
  it('a custom header value the server echoes is not in the error', async () => {
    const chat = new Chat('echo-model', { baseURL: `${echo.url}/v1`, headers: { 'X-Api-Token': HEADER_SECRET }, routing: { retry: { maxRetries: 0 } } });
    const err = await failure(chat);
    expect(err).toBeInstanceOf(APIError);
    expect(echo.requests.at(-1)?.headers['x-api-token']).toBe(HEADER_SECRET);
    expect(everywhere(err)).not.toContain(HEADER_SECRET);
    expect(err.message).toContain('[redacted]');
  });

  it('credentials in the base URL go as Basic authorization, and neither the message, err.url nor metrics.db holds them', async () => {
    const home = mkdtempSync(join(tmpdir(), 'sb-secrets-'));
    const metricsPath = join(home, 'metrics.db');
    const metrics = new SQLiteMetricsStore({ path: metricsPath });
    const port = new URL(echo.url).port;
    const chat = new Chat('echo-model', { baseURL: `http://alice:${URL_PASSWORD}@127.0.0.1:${port}/v1`, routing: { metrics, retry: { maxRetries: 0 } } });
    const err = await failure(chat);
    expect(err).toBeInstanceOf(APIError);
    const sent = echo.requests.at(-1);
    expect(sent?.url).toBe('/v1/chat/completions');
    expect(sent?.headers.authorization).toBe(`Basic ${Buffer.from(`alice:${URL_PASSWORD}`).toString('base64')}`);
    expect((err as APIError).url).toBe(`http://127.0.0.1:${port}/v1/chat/completions`);
    expect(everywhere(err)).not.toContain(URL_PASSWORD);
    expect(everywhere(err)).not.toContain(Buffer.from(`alice:${URL_PASSWORD}`).toString('base64'));
    metrics.close();
    expect(readFileSync(metricsPath).toString('latin1')).not.toContain(URL_PASSWORD);
  });

  it('a base URL password with a malformed percent-escape is a ConfigError that shows neither the password nor the URL', async () => {
    const port = new URL(echo.url).port;
    const chat = new Chat('echo-model', { baseURL: `http://alice:${URL_PASSWORD}%zz@127.0.0.1:${port}/v1`, routing: { retry: { maxRetries: 0 } } });
    const before = echo.requests.length;
    const err = await failure(chat);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/malformed percent-escape .* write a literal % as %25/);
    expect(everywhere(err)).not.toContain(URL_PASSWORD);
    expect(echo.requests.length).toBe(before);
    expect(chat.history).toEqual([]);
  });

  it('a key in the base URL query reaches the server after the path, and is redacted everywhere else', async () => {
    const chat = new Chat('echo-model', { baseURL: `${echo.url}/v1?api_key=${QUERY_SECRET}`, routing: { retry: { maxRetries: 0 } } });
    const err = await failure(chat);
    expect(echo.requests.at(-1)?.url).toBe(`/v1/chat/completions?api_key=${QUERY_SECRET}`);
    expect(everywhere(err)).not.toContain(QUERY_SECRET);
    expect((err as APIError).url).toContain('api_key=[redacted]');
  });

  it("a config file provider's header is kept out of `ask --json`, stderr and logs.db", async () => {
    const home = mkdtempSync(join(tmpdir(), 'sb-secrets-cli-'));
    writeFileSync(
      join(home, 'config.json'),
      JSON.stringify({ providers: [{ name: 'echo', protocol: 'openai', baseURL: `${echo.url}/v1`, headers: { 'X-Team-Key': CONFIG_SECRET } }] }),
    );
    const env = { SWITCHBOARD_HOME: home };
    const ask = await runCLI(['ask', '--json', '-m', 'm1@echo', 'Hi'], { env });
    expect(echo.requests.at(-1)?.headers['x-team-key']).toBe(CONFIG_SECRET);
    expect(ask.stdout).toContain('"error"');
    expect(ask.stdout + ask.stderr).not.toContain(CONFIG_SECRET);
    const chat = await runCLI(['chat', '-m', 'm1@echo'], { env, input: 'Hi\n' });
    expect(chat.stdout + chat.stderr).toContain('[redacted]');
    expect(chat.stdout + chat.stderr).not.toContain(CONFIG_SECRET);
    for (const file of ['logs.db', 'logs.db-wal']) {
      try {
        expect(readFileSync(join(home, file)).toString('latin1')).not.toContain(CONFIG_SECRET);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  });
});
