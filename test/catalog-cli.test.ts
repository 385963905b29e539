import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { setDefaultCatalog } from '../src/catalog/catalog.js';
import type { CliIO } from '../src/cli/io.js';
import { createProgram } from '../src/cli/program.js';

let home = '';
let server: Server;
let orURL = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url !== '/api/v1/models') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        data: [
          {
            id: 'openai/gpt-4o-mini',
            name: 'OpenAI: GPT-4o-mini',
            context_length: 128000,
            pricing: { prompt: '0.00000016', completion: '0.00000064' },
            architecture: { input_modalities: ['text'], output_modalities: ['text'] },
            supported_parameters: ['tools'],
            top_provider: { max_completion_tokens: 16384 },
          },
        ],
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  orURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'switchboard-cli-'));
});
afterEach(async () => {
  setDefaultCatalog(undefined);
  await rm(home, { recursive: true, force: true });
});

async function run(args: string[], extraEnv: Record<string, string> = {}): Promise<{ out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    stdin: Readable.from([]),
    env: { SWITCHBOARD_HOME: home, NO_COLOR: '1', ...extraEnv },
    cwd: home,
  };
  await createProgram(io).parseAsync(['node', 'switchboard', ...args]);
  return { out, err };
}

describe('switchboard models', () => {
  it('shows gpt-4o-mini at $0.15 in and $0.60 out per million, offline from the snapshot', async () => {
    const { out, err } = await run(['models', 'gpt-4o-mini']);
    const row = out.split('\n').find((l) => l.startsWith('openai/gpt-4o-mini '));
    expect(row).toBeDefined();
    expect(row?.split(/\s+/)).toEqual(['openai/gpt-4o-mini', 'openai,openrouter,azure', '0.15', '0.60', '128,000']);
    expect(out.split('\n')[0]).toMatch(/^MODEL\s+PROVIDERS\s+INPUT \$\/M\s+OUTPUT \$\/M\s+CONTEXT$/);
    expect(err).toMatch(/models? \(snapshot of \d{4}-\d{2}-\d{2}\)/);
  });

  it('lists several hundred models, the simulator among them', async () => {
    const { out } = await run(['models', '--json']);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { id: string; pricing: Record<string, unknown>; contextLength: number | null });
    expect(lines.length).toBeGreaterThan(500);
    const mini = lines.find((l) => l.id === 'openai/gpt-4o-mini');
    expect(mini?.pricing).toMatchObject({ input: 0.15, output: 0.6, cacheRead: 0.075, cacheWrite: null });
    expect(mini?.contextLength).toBe(128000);
    expect(lines.map((l) => l.id)).toEqual(expect.arrayContaining(['sim/llama', 'sim/mini', 'anthropic/claude-sonnet-4']));
  });

  it('--provider shows that provider\'s own prices; --sort price orders by them', async () => {
    const { out } = await run(['models', 'llama', '--provider', 'sim-cheap', '--json']);
    const rows = out.trim().split('\n').map((l) => JSON.parse(l) as { id: string; pricing: { input: number; output: number } });
    expect(rows.map((r) => r.id)).toEqual(['sim/llama']);
    expect(rows[0]?.pricing).toMatchObject({ input: 0.1, output: 0.3 });

    const sorted = await run(['models', '--provider', 'groq', '--sort', 'price', '--json']);
    const totals = sorted.out.trim().split('\n').map((l) => JSON.parse(l) as { pricing: { input: number | null; output: number | null } })
      .filter((r) => r.pricing.input !== null && r.pricing.output !== null)
      // The routing modes' blend: three input tokens to one output token.
      .map((r) => (3 * (r.pricing.input as number) + (r.pricing.output as number)) / 4);
    expect(totals.length).toBeGreaterThan(5);
    expect(totals).toEqual([...totals].sort((a, b) => a - b));
  });

  it('a query matches at the start of a word: "mini" finds gpt-4o-mini, not gemini', async () => {
    const { out } = await run(['models', 'mini', '--json']);
    const ids = out.trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids).toContain('openai/gpt-4o-mini');
    expect(ids.filter((id) => id.includes('gemini'))).toEqual([]);
  });

  it('the catalog drops a provider that does not serve a model, and hides retired models unless --all', async () => {
    const oss = JSON.parse((await run(['models', 'openai/gpt-oss-20b', '--json'])).out.trim().split('\n')[0] as string) as { id: string; providers: { provider: string }[] };
    expect(oss.id).toBe('openai/gpt-oss-20b');
    expect(oss.providers.map((p) => p.provider)).not.toContain('openai');
    expect(oss.providers.map((p) => p.provider)).toContain('groq');

    const shown = await run(['models', '--provider', 'groq']);
    expect(shown.out).not.toContain('llama2-70b-4096');
    expect(shown.out).not.toContain('mixtral-8x7b-32768');
    expect(shown.err).toMatch(/\d+ deprecated or retired hidden, --all shows them/);
    const all = await run(['models', '--provider', 'groq', '--all']);
    expect(all.out).toMatch(/^groq\/llama2-70b-4096 \(retired\)\s+groq \(retired\)/m);
    expect(all.out).toMatch(/^groq\/mixtral-8x7b-32768 \(retired\)/m);
    const json = (await run(['models', 'llama2-70b', '--all', '--json'])).out.trim().split('\n').map((l) => JSON.parse(l) as { id: string; status?: string });
    expect(json.find((m) => m.id === 'groq/llama2-70b-4096')?.status).toBe('retired');
  });

  it('--sort context puts the longest context first', async () => {
    const { out } = await run(['models', 'sim/', '--sort', 'context']);
    const ids = out.split('\n').slice(1).filter(Boolean).map((l) => l.split(/\s+/)[0]);
    expect(ids).toEqual(['sim/llama', 'sim/mini']);
  });

  it('rejects an unknown sort key as a user mistake', async () => {
    await expect(run(['models', '--sort', 'speed'])).rejects.toThrow(/--sort takes name, price, context/);
  });

  it('--refresh reads the live list at OPENROUTER_BASE_URL', async () => {
    const { out, err } = await run(['models', 'openai/gpt-4o-mini', '--refresh', '--json'], { OPENROUTER_BASE_URL: orURL });
    expect(err).toBe('');
    const row = out.trim().split('\n').map((l) => JSON.parse(l) as { id: string; providers: { provider: string; pricing?: { input: number } }[] })
      .find((r) => r.id === 'openai/gpt-4o-mini');
    expect(row?.providers.find((p) => p.provider === 'openrouter')?.pricing?.input).toBe(0.16);
  });

  it('a failed --refresh warns and still lists from the snapshot', async () => {
    const { out, err } = await run(['models', 'gpt-4o-mini', '--refresh'], { OPENROUTER_BASE_URL: `${orURL}/nowhere` });
    expect(err).toMatch(/warning: refreshing the model list failed .*404.*built-in snapshot/);
    expect(out).toContain('openai/gpt-4o-mini');
  });
});
