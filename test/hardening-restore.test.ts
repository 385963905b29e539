/**
 * Restoring a chat restores data, never configuration, and checks everything it restores.
 * A saved file (or a tampered paused conversation in logs.db) must not be able to send the
 * caller's key to another server.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Chat, InvalidHistoryError } from '../src/index.js';
import { SQLiteConversationLog } from '../src/store/conversation-log.js';
import { runCLI } from './helpers/cli.js';
import { startStandIn as startOpenAI, type StandIn as OpenAIStandIn } from './helpers/openai-standin.js';
import { startStandIn, sendJSON, type StandIn } from './helpers/stand-in.js';

let good: OpenAIStandIn;
let evil: StandIn;
const GROQ_KEY = 'gsk_realkey0123456789abcdef';

beforeAll(async () => {
  good = await startOpenAI();
  evil = await startStandIn((_req, res) => sendJSON(res, 500, { error: { message: 'gotcha' } }));
});
afterAll(async () => {
  await good.close();
  await evil.close();
});

async function saved(): Promise<Record<string, unknown>> {
  const chat = new Chat('acme/one', { baseURL: `${good.url}/v1`, temperature: 0.2, maxTokens: 50, system: 'Be brief.' });
  await chat.send('Hello');
  return JSON.parse(JSON.stringify(chat)) as Record<string, unknown>;
}

describe('Chat.fromJSON restores data, never configuration', () => {
  it.each([
    ['baseURL', () => evil.url],
    ['headers', () => ({ 'x-forwarded-host': 'evil' })],
    ['apiKey', () => 'sk-attacker-0123456789'],
    ['routing', () => ({ deadlineMs: 1 })],
    ['limits', () => ({ maxReplyBytes: 1 })],
  ])('refuses a saved chat whose params set %s, and nothing is sent anywhere', (key, value) => {
    const json = { version: 1, models: ['llama-3.3-70b-versatile@groq'], keyed: false, system: null, params: { [key]: value() }, history: {}, usage: {}, turns: {} };
    expect(() => Chat.fromJSON(json, { env: { GROQ_API_KEY: GROQ_KEY } })).toThrow(InvalidHistoryError);
    expect(() => Chat.fromJSON(json, { env: { GROQ_API_KEY: GROQ_KEY } })).toThrow(new RegExp(`params\\.${key}: a saved chat holds only request parameters`));
    expect(evil.requests).toHaveLength(0);
  });

  it('chat --resume of a tampered paused conversation in logs.db is refused and sends nothing', async () => {
    const home = mkdtempSync(join(tmpdir(), 'sb-resume-'));
    const log = new SQLiteConversationLog({ path: join(home, 'logs.db') });
    const id = log.create(['llama-3.3-70b-versatile@groq'], undefined);
    const state = { version: 1, models: ['llama-3.3-70b-versatile@groq'], keyed: false, system: null, params: { baseURL: evil.url }, history: {}, usage: {}, turns: {} };
    log.setStatus(id, 'paused', state);
    log.close();
    const run = await runCLI(['chat', '--resume'], { input: 'Hello\n', env: { SWITCHBOARD_HOME: home, GROQ_API_KEY: GROQ_KEY } });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/params\.baseURL: a saved chat holds only request parameters/);
    expect(evil.requests).toHaveLength(0);
    expect(run.stdout + run.stderr).not.toContain(GROQ_KEY);
  });

  it('round-trips request parameters, histories, usage and turns', async () => {
    const json = await saved();
    const again = Chat.fromJSON(json, { baseURL: `${good.url}/v1` });
    expect(again.toJSON()).toEqual(json);
    expect(await again.send('Again')).toBe('acme/one heard: Again');
    expect(good.requests[good.requests.length - 1]?.body).toMatchObject({ temperature: 0.2, max_tokens: 50 });
  });

  it('checks parameter values', async () => {
    const json = await saved();
    json.params = { temperature: 'hot' };
    expect(() => Chat.fromJSON(json)).toThrow(/params\.temperature: "hot" is not a valid value/);
  });
});

describe('Chat.fromJSON validates everything it restores', () => {
  const model = 'acme/one';
  const broken: [string, (json: Record<string, unknown>) => void, RegExp][] = [
    ['a turn whose latency is a string', (j) => ((j.turns as Record<string, Record<string, unknown>[]>)[model]![0]!.latencyMs = 'fast'), /turns\["acme\/one"\]\[0\]: "latencyMs" must be a non-negative number/],
    ['a turn whose usage breakdown is a string', (j) => (((j.turns as Record<string, Record<string, unknown>[]>)[model]![0]!.usage as Record<string, unknown>).cachedTokens = '12'), /cachedTokens must be a non-negative integer/],
    ['a usage breakdown that is negative', (j) => ((j.usage as Record<string, Record<string, unknown>>)[model]!.reasoningTokens = -4), /usage\["acme\/one"\]: reasoningTokens must be a non-negative integer/],
    ['token counts that are strings', (j) => ((j.usage as Record<string, Record<string, unknown>>)[model]!.promptTokens = '5'), /promptTokens, completionTokens and totalTokens must be non-negative integers/],
    ['a turn with an unknown finish reason', (j) => ((j.turns as Record<string, Record<string, unknown>[]>)[model]![0]!.finishReason = 42), /"finishReason" must be one of/],
    ['a turn whose message is not an assistant message', (j) => ((j.turns as Record<string, Record<string, unknown>[]>)[model]![0]!.message = { role: 'user', content: 'x' }), /message: must be an assistant message/],
    ['turns that are not an array', (j) => ((j.turns as Record<string, unknown>)[model] = { 0: 'x' }), /turns\["acme\/one"\]: expected an array of turns/],
  ];
  it.each(broken)('refuses %s with an InvalidHistoryError', async (_name, spoil, message) => {
    const json = await saved();
    spoil(json);
    expect(() => Chat.fromJSON(json)).toThrow(InvalidHistoryError);
    expect(() => Chat.fromJSON(json)).toThrow(message);
  });

  it('refuses a very deep object with an InvalidHistoryError, not a stack overflow', async () => {
    const json = await saved();
    let deep: unknown = {};
    for (let i = 0; i < 200_000; i++) deep = [deep];
    (json.turns as Record<string, Record<string, unknown>[]>)[model]![0]!.annotations = [deep];
    expect(() => Chat.fromJSON(json)).toThrow(InvalidHistoryError);
    expect(() => Chat.fromJSON(json)).toThrow(/nested more than 64 levels deep/);
  });

  it('setting chat.history to a very deep object is an InvalidHistoryError too', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 200_000; i++) deep = { deeper: deep };
    const chat = new Chat('sim/llama');
    expect(() => (chat.history = [{ role: 'user', content: [{ type: 'text', text: 'hi', extra: deep } as never] }])).toThrow(InvalidHistoryError);
    expect(chat.history).toEqual([]);
  });
});
