import { afterEach, describe, expect, it } from 'vitest';
import { SIM_PROVIDERS } from '../src/sim/profiles.js';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '../src/sim/server.js';
import { parseSSE, postJson } from './sim-helpers.js';

let running: RunningSimulator[] = [];
async function start(options: SimulatorOptions): Promise<RunningSimulator> {
  const sim = await startSimulator(options);
  running.push(sim);
  return sim;
}
afterEach(async () => {
  await Promise.all(running.map((s) => s.close()));
  running = [];
});

const body = (stream: boolean) => ({ model: 'llama', stream, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Explain retries with exponential backoff.' }] });

/** Read a response body to the end or to the point where the connection broke. */
async function readUntilBroken(res: Response): Promise<{ text: string; broken: boolean }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, broken: false };
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    return { text, broken: true };
  }
}

function streamedText(sse: string): string {
  return parseSSE(sse)
    .filter((e) => e.data !== '[DONE]')
    .map((e) => (JSON.parse(e.data) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content ?? '')
    .join('');
}

describe('simulator failures', () => {
  it('fails with HTTP 500 in the protocol shape', async () => {
    const sim = await start({ timeScale: 0, failRate: 1, failureKinds: ['server-error'] });
    const res = await postJson(`${sim.url}/sim-flaky/v1/chat/completions`, body(false));
    expect(res.status).toBe(500);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe('server_error');
  });

  it('fails with HTTP 429 and a Retry-After header', async () => {
    const sim = await start({ timeScale: 1, failRate: 1, failureKinds: ['rate-limit'] });
    const res = await postJson(`${sim.url}/sim-flaky/v1/chat/completions`, body(true));
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.headers.get('retry-after-ms')).toBe('1000');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('rate_limit_exceeded');
  });

  it('cuts a stream midway with no terminator; the text is a prefix of the full reply', async () => {
    const sim = await start({ timeScale: 0, failRate: 1, failureKinds: ['cut-stream'] });
    const cut = await readUntilBroken(await postJson(`${sim.url}/sim-flaky/v1/chat/completions`, body(true)));
    expect(cut.broken).toBe(true);
    expect(cut.text).not.toContain('[DONE]');
    expect(cut.text).not.toContain('finish_reason":"stop');
    sim.setProviderProfile('sim-flaky', { failRate: 0 });
    const full = await postJson(`${sim.url}/sim-flaky/v1/chat/completions`, body(true));
    const fullText = streamedText(await full.text());
    const partial = streamedText(cut.text);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(fullText.length);
    expect(fullText.startsWith(partial)).toBe(true);
  });

  it('cuts a non-streaming body midway too', async () => {
    const sim = await start({ timeScale: 0, failRate: 1, failureKinds: ['cut-stream'] });
    const res = await postJson(`${sim.url}/sim-flaky/v1/chat/completions`, body(false));
    await expect(res.json()).rejects.toThrow();
  });

  it('is reproducible: the same seed gives the same sequence of outcomes, spread over all kinds', async () => {
    const outcomes = async (seed: number): Promise<string[]> => {
      const sim = await start({ timeScale: 0, failRate: 0.75, seed });
      const out: string[] = [];
      for (let i = 0; i < 24; i++) {
        const res = await postJson(`${sim.url}/sim-flaky/v1/chat/completions`, body(true));
        const read = await readUntilBroken(res);
        out.push(read.broken ? 'cut' : String(res.status));
      }
      return out;
    };
    const a = await outcomes(7);
    expect(await outcomes(7)).toEqual(a);
    expect(new Set(a)).toEqual(new Set(['200', '500', '429', 'cut']));
    // Providers without a failure rate never fail.
    const sim = await start({ timeScale: 0, failRate: 1 });
    expect((await postJson(`${sim.url}/sim-fast/v1/chat/completions`, body(false))).status).toBe(200);
  });
});

describe('simulator timing', () => {
  it('waits the scaled TTFT before the first token', async () => {
    const sim = await start({ timeScale: 0.1 });
    const started = performance.now();
    const res = await postJson(`${sim.url}/sim-cheap/v1/chat/completions`, { ...body(true), max_tokens: 5 });
    await res.text();
    // sim-cheap: 600 ms TTFT ±20 %, times 0.1; then 5 tokens at 45 tokens/s times 0.1.
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(0.8 * 60 + 4 * 0.8 * (1000 / 45) * 0.1 - 2);
    expect(elapsed).toBeLessThan(1000);
  });

  it('answers at once with timeScale 0, even for a 2,000-token stream', async () => {
    const sim = await start({ timeScale: 0 });
    const started = performance.now();
    const res = await postJson(`${sim.url}/sim-cheap/v1/chat/completions`, { model: 'llama', stream: true, messages: [{ role: 'user', content: 'Write 2000 tokens.' }] });
    const events = parseSSE(await res.text());
    expect(events.length).toBe(1 + 2000 + 1 + 1);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('close() ends promptly with a stream in flight and keep-alive sockets open', async () => {
    const sim = await startSimulator({ timeScale: 1 });
    await (await fetch(`${sim.url}/`)).json();
    const res = await postJson(`${sim.url}/sim-cheap/v1/chat/completions`, { model: 'llama', stream: true, messages: [{ role: 'user', content: 'Write 5000 tokens.' }] });
    const reader = res.body!.getReader();
    await reader.read();
    const started = performance.now();
    await sim.close();
    expect(performance.now() - started).toBeLessThan(500);
    await expect(reader.read()).rejects.toThrow();
  });

  it('stops a stream when the client disconnects', async () => {
    const sim = await start({ timeScale: 1 });
    const res = await postJson(`${sim.url}/sim-fast/v1/chat/completions`, { model: 'llama', stream: true, messages: [{ role: 'user', content: 'Write 5000 tokens.' }] });
    expect(res.status).toBe(200);
    await res.body!.cancel();
    // The server keeps answering other requests normally afterwards.
    const next = await postJson(`${sim.url}/sim-fast/v1/chat/completions`, { ...body(false), max_tokens: 2 });
    expect(next.status).toBe(200);
  });
});

describe('simulator control', () => {
  it('changes a profile in-process: prices feed into the reported cost', async () => {
    const sim = await start({ timeScale: 0 });
    const changed = sim.setProviderProfile('sim-fast', { inputPrice: 10, outputPrice: 100 });
    expect(changed).toEqual({ ...SIM_PROVIDERS['sim-fast'], inputPrice: 10, outputPrice: 100 });
    const res = (await (await postJson(`${sim.url}/sim-fast/v1/chat/completions`, body(false))).json()) as { usage: { prompt_tokens: number; completion_tokens: number; cost: number } };
    expect(res.usage.cost).toBeCloseTo((res.usage.prompt_tokens * 10 + res.usage.completion_tokens * 100) / 1e6, 12);
    sim.resetProfiles();
    const after = (await (await fetch(`${sim.url}/_sim/profiles`)).json()) as { providers: Record<string, unknown> };
    expect(after.providers['sim-fast']).toEqual(SIM_PROVIDERS['sim-fast']);
    expect(() => sim.setProviderProfile('nope', { ttftMs: 1 })).toThrow(/unknown simulated provider "nope"/);
  });

  it('changes a profile over HTTP and describes itself at GET /', async () => {
    const sim = await start({ timeScale: 0 });
    let res = await postJson(`${sim.url}/_sim/profiles/sim-cheap`, { ttftMs: 5, failRate: 1 });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { profile: { ttftMs: number } }).profile.ttftMs).toBe(5);
    const listed = (await (await fetch(`${sim.url}/_sim/profiles`)).json()) as { providers: Record<string, { ttftMs: number; failRate?: number }> };
    expect(listed.providers['sim-cheap']).toMatchObject({ ttftMs: 5, failRate: 1 });
    // A failure rate set through the control endpoint takes effect at once.
    for (let i = 0; i < 5; i++) {
      const failing = await postJson(`${sim.url}/sim-cheap/v1/chat/completions`, body(false));
      const read = await readUntilBroken(failing);
      expect(failing.status !== 200 || read.broken).toBe(true);
    }

    res = await postJson(`${sim.url}/_sim/profiles/sim-cheap`, { ttftMs: -1 });
    expect(res.status).toBe(400);
    res = await postJson(`${sim.url}/_sim/profiles/sim-cheap`, { speed: 3 });
    expect(res.status).toBe(400);
    res = await postJson(`${sim.url}/_sim/profiles/sim-nowhere`, { ttftMs: 1 });
    expect(res.status).toBe(404);

    res = await fetch(`${sim.url}/_sim/profiles`, { method: 'DELETE' });
    expect(((await res.json()) as { providers: Record<string, unknown> }).providers['sim-cheap']).toEqual(SIM_PROVIDERS['sim-cheap']);

    const description = (await (await fetch(`${sim.url}/`)).json()) as { providers: Record<string, { baseURL: string }>; models: Record<string, { providers: string[] }> };
    expect(description.providers['sim-fast']!.baseURL).toBe(`${sim.url}/sim-fast/v1`);
    expect(description.providers['sim-anthropic']!.baseURL).toBe(`${sim.url}/sim-anthropic`);
    expect(description.models.llama!.providers).toContain('sim-gemini');
  });
});

describe('simulator input it cannot read', () => {
  it('answers a path whose percent-escapes do not decode with a 404, never a 500', async () => {
    const sim = await start({ timeScale: 0 });
    for (const path of ['/%zz/v1/chat/completions', '/sim-gemini/v1beta/models/%E2%82:generateContent', '/_sim/profiles/%zz', '/api/v1/models/sim/%zz/endpoints']) {
      const res = await fetch(`${sim.url}${path}`, { method: path.startsWith('/api') ? 'GET' : 'POST', headers: { 'content-type': 'application/json' }, body: path.startsWith('/api') ? null : '{}' });
      expect(res.status, path).toBe(404);
      expect(await res.text(), path).toMatch(/percent-escapes do not decode/);
    }
  });

  it('counts a percent-encoded data: URI with a malformed escape rather than failing the request', async () => {
    const sim = await start({ timeScale: 0 });
    const res = await postJson(`${sim.url}/sim-fast/v1/chat/completions`, {
      model: 'llama',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is attached?' }, { type: 'file', file: { file_data: 'data:text/plain,100%zz%20sure', filename: 'a.txt' } }] }],
    });
    expect(res.status).toBe(200);
  });
});
