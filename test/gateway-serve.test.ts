/**
 * `switchboard serve` as a separate process: the embedded default, reload on change and on
 * SIGHUP under load with no failed request, an invalid config refused while the old one
 * serves, and SIGTERM draining the requests in flight.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN } from './helpers/cli.js';
import { waitFor } from './helpers/gateway.js';
import { startStandIn } from './helpers/openai-standin.js';

interface Served {
  child: ChildProcessWithoutNullStreams;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const running: Served[] = [];
afterEach(() => {
  for (const s of running.splice(0)) s.child.kill('SIGKILL');
});

async function serve(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', SWITCHBOARD_HOME: mkdtempSync(join(tmpdir(), 'sb-serve-')), SWITCHBOARD_METRICS: 'memory', SWITCHBOARD_SIM_TIME_SCALE: '0', ...env },
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor(() => /listening on (http:\S+)/.test(stderr) || child.exitCode !== null, 10_000);
  const url = /listening on (http:\S+)/.exec(stderr)?.[1];
  if (!url) throw new Error(`serve did not start: ${stderr}`);
  const served = { child, url, stderr: () => stderr, exited };
  running.push(served);
  return served;
}

describe('switchboard serve', () => {
  it('serves the simulator with no config and says so', async () => {
    const s = await serve([]);
    expect(s.stderr()).toMatch(/serving the simulator's models/);
    expect(s.stderr()).toMatch(/no master key/);
    const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'anything', maxRetries: 0 });
    const reply = await openai.chat.completions.create({ model: 'sim/llama', messages: [{ role: 'user', content: 'Hi' }] });
    expect(reply.choices[0]?.message.content?.length).toBeGreaterThan(0);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });

  it('runs several worker processes on one port with --workers', async () => {
    const s = await serve(['--workers', '2']);
    const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'anything', maxRetries: 0 });
    const replies = await Promise.all([1, 2, 3, 4].map(() => openai.chat.completions.create({ model: 'sim/mini', messages: [{ role: 'user', content: 'Hi' }] })));
    expect(replies.every((r) => (r.choices[0]?.message.content ?? '').length > 0)).toBe(true);
    // An open gateway (no master key) needs no credential at all.
    const bare = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'sim/mini', messages: [{ role: 'user', content: 'Hi' }] }) });
    expect(bare.status).toBe(200);
    expect(s.stderr()).not.toMatch(/cannot use the conversation log/);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });

  it('reports the whole server in /metrics with --workers 2: every worker\'s requests, summed', async () => {
    const s = await serve(['--workers', '2']);
    // A new connection per request, so the primary hands them to both workers in turn.
    const send = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ model: 'sim/mini', messages: [{ role: 'user', content: 'Hi' }] });
        const req = request(`${s.url}/v1/chat/completions`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', connection: 'close' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(body);
      });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push(await send());
    expect(statuses).toEqual(Array(8).fill(200));
    // Whichever worker answers the scrape, it reports both workers' series.
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${s.url}/metrics`, { headers: { connection: 'close' } });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toMatch(/^switchboard_workers 2$/m);
      expect(text).toMatch(/^switchboard_requests_total\{protocol="openai",status="200"\} 8$/m);
      // The histogram's series (one per provider the router chose) sum to every request too.
      const total = (pattern: RegExp): number => [...text.matchAll(pattern)].reduce((sum, m) => sum + Number(m[1]), 0);
      expect(total(/^gen_ai_server_request_duration_seconds_count\{gen_ai_operation_name="chat",gen_ai_request_model="sim\/mini"[^}]*\} (\d+)$/gm)).toBe(8);
      expect(total(/^gen_ai_server_request_duration_seconds_bucket\{[^}]*le="\+Inf"\} (\d+)$/gm)).toBe(8);
      expect(text).toMatch(/^switchboard_in_flight_requests 0$/m);
    }
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });

  it('reloads on change and on SIGHUP under load, refuses a bad config, and drops no request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-serve-cfg-'));
    const file = join(dir, 'gateway.yaml');
    const write = (text: string): void => {
      // As editors do: write a new file, then rename it over the old one.
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    };
    write('master_key: master-key-for-reload\naliases:\n  house: sim/llama@sim-fast\n');
    const s = await serve(['--config', file], { SWITCHBOARD_SIM_TIME_SCALE: '0.02' });
    const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'master-key-for-reload', maxRetries: 0 });
    const providers: string[] = [];
    let failures = 0;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        try {
          const raw = await openai.chat.completions.create({ model: 'house', stream: true, messages: [{ role: 'user', content: 'Write 10 tokens' }] }).withResponse();
          for await (const _ of raw.data) void _;
          providers.push(raw.response.headers.get('x-switchboard-provider') ?? '');
        } catch {
          failures++;
        }
      }
    };
    const load = Promise.all([worker(), worker(), worker(), worker()]);
    await waitFor(() => providers.length > 20, 10_000);

    write('master_key: master-key-for-reload\naliases:\n  house: sim/llama@sim-cheap\n');
    await waitFor(() => /reloaded \(file changed\)/.test(s.stderr()), 5000);
    const afterChange = providers.length;
    await waitFor(() => providers.length > afterChange + 20 && providers.slice(afterChange + 10).every((p) => p === 'sim-cheap'), 10_000);

    write('master_key: master-key-for-reload\naliases:\n  house: sim/llama@sim-anthropic\nlimits:\n  max_in_flight: lots\n');
    await waitFor(() => /refused, the old one stays: .*gateway\.yaml:5: limits\.max_in_flight/.test(s.stderr()), 5000);
    const afterBad = providers.length;
    await waitFor(() => providers.length > afterBad + 20, 10_000);
    expect(providers.slice(afterBad).every((p) => p === 'sim-cheap')).toBe(true);

    writeFileSync(file, 'master_key: master-key-for-reload\naliases:\n  house: sim/llama@sim-gemini\n');
    s.child.kill('SIGHUP');
    await waitFor(() => /reloaded \(SIGHUP\)/.test(s.stderr()), 5000);
    const afterHup = providers.length;
    await waitFor(() => providers.length > afterHup + 20 && providers.slice(afterHup + 10).every((p) => p === 'sim-gemini'), 10_000);

    stop = true;
    await load;
    expect(failures).toBe(0);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });

  it('applies new cors rules on a file change and on SIGHUP, and refuses an invalid origin naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-serve-cors-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, 'cors:\n  origins: [https://one.example.com]\n');
    const s = await serve(['--config', file]);
    const allowOrigin = async (origin: string): Promise<[number, string | null]> => {
      const res = await fetch(`${s.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST' } });
      return [res.status, res.headers.get('access-control-allow-origin')];
    };
    expect(await allowOrigin('https://one.example.com')).toEqual([204, 'https://one.example.com']);
    expect(await allowOrigin('https://two.example.com')).toEqual([403, null]);

    const write = (text: string): void => {
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
    };
    write('cors:\n  origins: [https://two.example.com]\n');
    await waitFor(() => /reloaded \(file changed\)/.test(s.stderr()), 5000);
    expect(await allowOrigin('https://one.example.com')).toEqual([403, null]);
    expect(await allowOrigin('https://two.example.com')).toEqual([204, 'https://two.example.com']);

    write('cors:\n  origins:\n    - https://two.example.com\n    - https://three.example.com/app\n');
    await waitFor(() => /refused, the old one stays: .*gateway\.yaml:4: cors\.origins\[1\]: "https:\/\/three\.example\.com\/app" has a path/.test(s.stderr()), 5000);
    expect(await allowOrigin('https://two.example.com')).toEqual([204, 'https://two.example.com']);

    // No cors section: OPTIONS is refused as any other method the gateway does not serve.
    writeFileSync(file, '{}\n');
    s.child.kill('SIGHUP');
    await waitFor(() => /reloaded \(SIGHUP\)/.test(s.stderr()), 5000);
    expect(await allowOrigin('https://two.example.com')).toEqual([405, null]);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  });

  it('drains requests in flight on SIGTERM, then exits', async () => {
    const upstream = await startStandIn();
    try {
      const dir = mkdtempSync(join(tmpdir(), 'sb-serve-drain-'));
      const file = join(dir, 'gateway.yaml');
      writeFileSync(file, `providers:\n  - { name: local, protocol: openai, base_url: "${upstream.url}/v1" }\n`);
      const s = await serve(['--config', file]);
      const openai = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'open', maxRetries: 0 });
      // The stand-in waits 2 s before answering a "slow" model.
      const inFlight = openai.chat.completions.create({ model: 'slow-model@local', messages: [{ role: 'user', content: 'Take your time' }] });
      await waitFor(() => upstream.requests.length === 1, 5000);
      s.child.kill('SIGTERM');
      await waitFor(() => /SIGTERM: draining 1 request/.test(s.stderr()), 5000);
      const reply = await inFlight;
      expect(reply.choices[0]?.message.content).toMatch(/^slow-model heard: Take your time/);
      expect(await s.exited).toBe(0);
      expect(s.stderr()).toMatch(/drained; stopped/);
    } finally {
      await upstream.close();
    }
  });
});
