/**
 * Provider prompt caching: where the breakpoints go, that prefixes stay byte-stable across
 * turns, and a ten-turn Anthropic chat against a stand-in that caches by Anthropic's rules,
 * with every turn's cost computed by hand from the catalog's prices.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Chat } from '../src/index.js';
import { buildAnthropicBody } from '../src/protocols/anthropic.js';
import { buildOpenAIBody } from '../src/protocols/openai.js';
import { minimumCacheableTokens } from '../src/protocols/prompt-cache.js';
import { getProtocolServer } from '../src/protocols/index.js';
import type { CanonicalRequest, Message } from '../src/types.js';
import { startAnthropicCacheStandIn, type CacheStandIn } from './helpers/anthropic-cache-standin.js';
import { sendJSON, sendSSE, sse, startStandIn, type StandIn } from './helpers/stand-in.js';

const LONG_SYSTEM = Array.from({ length: 1500 }, () => 'policy').join(' '); // 1,500 tokens, ~2,600 by the client's estimate
const tool = { name: 'lookup', description: 'Look a clause up', parameters: { type: 'object', properties: { clause: { type: 'string' } } } };

function history(turns: number, system = LONG_SYSTEM): Message[] {
  const out: Message[] = [{ role: 'system', content: system }];
  for (let t = 1; t <= turns; t++) {
    out.push({ role: 'user', content: `Question number ${t} about the policy?` });
    if (t < turns) out.push({ role: 'assistant', content: `Answer ${t}.` });
  }
  return out;
}

function anthropicBody(messages: Message[], params: CanonicalRequest['params'] = {}, model = 'claude-sonnet-4-5') {
  return buildAnthropicBody({ model, messages, params, stream: true }) as {
    system?: unknown;
    tools?: Record<string, unknown>[];
    messages: { role: string; content: Record<string, unknown>[] }[];
  };
}

const markers = (body: unknown) => JSON.stringify(body).match(/"cache_control"/g)?.length ?? 0;

describe('Anthropic breakpoints', () => {
  it('marks the tools, the system prompt, the previous and the last user turn: four at most', () => {
    const body = anthropicBody(history(3), { tools: [{ ...tool, description: LONG_SYSTEM }] });
    expect(body.tools?.[0]?.cache_control).toEqual({ type: 'ephemeral' });
    expect(body.system).toEqual([{ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral' } }]);
    const users = body.messages.filter((m) => m.role === 'user');
    expect(users[0]?.content[0]?.cache_control).toBeUndefined();
    expect(users[1]?.content[0]?.cache_control).toEqual({ type: 'ephemeral' });
    expect(users[2]?.content[0]?.cache_control).toEqual({ type: 'ephemeral' });
    expect(markers(body)).toBe(4);
  });

  it('skips a point whose prefix is too short: tools alone, here', () => {
    const body = anthropicBody(history(3), { tools: [tool] });
    expect(body.tools?.[0]?.cache_control).toBeUndefined();
    expect(markers(body)).toBe(3);
  });

  it('places none on a prompt shorter than the model family caches', () => {
    expect(markers(anthropicBody(history(3, 'Be brief.')))).toBe(0);
    // ~2,600 estimated tokens: enough for Sonnet 4.5 (1,024), not for Haiku 4.5 (4,096).
    expect(minimumCacheableTokens('claude-haiku-4-5')).toBe(4096);
    expect(markers(anthropicBody(history(2), {}, 'claude-haiku-4-5'))).toBe(0);
    expect(markers(anthropicBody(history(2), {}, 'claude-sonnet-4-5'))).toBe(3);
  });

  it('a short system prompt with a long conversation: only the conversation points that are long enough', () => {
    const messages: Message[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: LONG_SYSTEM }, { role: 'assistant', content: 'Ok.' }, { role: 'user', content: 'And?' }];
    const body = anthropicBody(messages);
    expect(typeof body.system).toBe('string');
    expect(markers(body)).toBe(2);
  });

  it('is off with promptCaching: false, and asks for an hour with ttl 1h', () => {
    expect(markers(anthropicBody(history(2), { promptCaching: false }))).toBe(0);
    const hour = anthropicBody(history(2), { promptCaching: { ttl: '1h' } });
    expect(JSON.stringify(hour)).toContain('"cache_control":{"type":"ephemeral","ttl":"1h"}');
  });

  it('leaves markers the caller placed through extraBody alone', () => {
    const system = [{ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral' } }];
    const body = anthropicBody(history(2), { extraBody: { system } });
    expect(markers(body)).toBe(1);
  });
});

describe('the Anthropic server half reads breakpoints', () => {
  it('in canonical positions: what the client half wrote comes back', () => {
    const body = anthropicBody(history(3), { tools: [{ ...tool, description: LONG_SYSTEM }], promptCaching: { ttl: '1h' } });
    const parsed = getProtocolServer('anthropic').parseRequest(JSON.parse(JSON.stringify({ ...body, max_tokens: 100 })), { headers: {} });
    // Canonical messages: system, u1, a1, u2, a2, u3.
    expect(parsed.request.params.cacheBreakpoints).toEqual([
      { after: 'tools', ttl: '1h' },
      { after: 'system', ttl: '1h' },
      { after: 3, ttl: '1h' },
      { after: 5, ttl: '1h' },
    ]);
    const plain = getProtocolServer('anthropic').parseRequest({ ...anthropicBody(history(1, 'Hi')), max_tokens: 100 }, { headers: {} });
    expect(plain.request.params.cacheBreakpoints).toBeUndefined();
  });
});

describe('OpenRouter breakpoints', () => {
  const openrouter = { provider: 'openrouter', protocol: 'openai' as const, baseURL: 'http://127.0.0.1:9', headers: {}, compat: { cacheMarkers: true } };

  it("marks text parts for Anthropic and Gemini models, without changing the caller's messages", () => {
    const messages = history(2);
    const before = structuredClone(messages);
    const body = buildOpenAIBody({ model: 'anthropic/claude-sonnet-4.5', messages, params: {}, stream: true }, openrouter) as { messages: { content: unknown }[] };
    expect(messages).toEqual(before);
    expect(body.messages[0]?.content).toEqual([{ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral' } }]);
    expect(markers(body)).toBe(3);
    const gemini = buildOpenAIBody({ model: 'google/gemini-2.5-flash', messages, params: {}, stream: true }, openrouter);
    expect(markers(gemini)).toBe(3);
  });

  it('sends OpenAI models and other providers their messages untouched (they cache by themselves)', () => {
    const messages = history(2);
    const body = buildOpenAIBody({ model: 'openai/gpt-4o-mini', messages, params: {}, stream: true }, openrouter) as { messages: unknown };
    expect(body.messages).toBe(messages);
    const direct = buildOpenAIBody({ model: 'anthropic/claude-sonnet-4.5', messages, params: {}, stream: true }, { ...openrouter, provider: 'other', compat: {} });
    expect(markers(direct)).toBe(0);
  });
});

describe('byte-stable prefixes', () => {
  let up: StandIn;
  beforeAll(async () => {
    // An OpenAI-compatible server that answers every chat completion with "Noted." (and nothing else: 404).
    up = await startStandIn(async (req, res) => {
      if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) return sendJSON(res, 404, { error: { message: 'not here' } });
      const chunk = (o: unknown) => ({ data: o });
      await sendSSE(res, sse([chunk({ choices: [{ index: 0, delta: { content: 'Noted.' }, finish_reason: 'stop' }] }), chunk({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }), chunk('[DONE]')]));
    });
  });
  afterAll(() => up.close());

  it("each turn's request repeats the previous request's messages byte for byte (automatic caches hit)", async () => {
    const chat = new Chat('acme/stable', { baseURL: `${up.url}/v1`, apiKey: 'sk-test-stable', system: LONG_SYSTEM, temperature: 0 });
    for (let t = 1; t <= 4; t++) await chat.send(`Question number ${t} about the policy?`);
    const bodies = up.requests.filter((r) => r.method === 'POST' && r.url.endsWith('/chat/completions')).map((r) => JSON.stringify((JSON.parse(r.body) as { messages: unknown }).messages));
    expect(bodies.length).toBe(4);
    for (let i = 1; i < bodies.length; i++) {
      const previous = bodies[i - 1] as string;
      expect((bodies[i] as string).startsWith(previous.slice(0, -1))).toBe(true);
    }
  });

  it('Anthropic requests differ between turns only in where the markers sit', () => {
    const strip = (body: unknown) => JSON.stringify(body, (key, value: unknown) => (key === 'cache_control' ? undefined : value)).replace(/"system":\[\{"type":"text","text":("(?:[^"\\]|\\.)*")\}\]/, '"system":$1');
    for (let t = 2; t <= 5; t++) {
      const before = strip(anthropicBody(history(t - 1)).messages);
      const after = strip(anthropicBody(history(t)).messages);
      expect(after.startsWith(before.slice(0, -1))).toBe(true);
    }
  });
});

describe('a ten-turn Anthropic chat', () => {
  let up: CacheStandIn;
  beforeAll(async () => {
    up = await startAnthropicCacheStandIn((n) => `Answer ${n + 1}.`);
  });
  afterAll(() => up.close());

  it('reads all but the newest turn from the cache after turn 1, at the costs worked out by hand', async () => {
    const env = { ANTHROPIC_API_KEY: 'sk-ant-test-000', ANTHROPIC_BASE_URL: up.url };
    const chat = new Chat('anthropic/claude-sonnet-4.5', { env, system: LONG_SYSTEM });
    for (let t = 1; t <= 10; t++) expect(await chat.send(`Question number ${t} about the policy?`)).toBe(`Answer ${t}.`);

    // Tokens (the stand-in's: words and punctuation): system 1,500; each question 7; each answer 3.
    // Turn t's prompt: 1,500 + 7t + 3(t - 1) = 1,497 + 10t.
    // Turn 1 writes all of it (breakpoints on the system prompt and the question): 1,507.
    // Turn t >= 2 reads up to the previous question (1,487 + 10t) and writes the last answer and question (10).
    const turns = chat.turns;
    expect(turns[0]?.usage).toMatchObject({ promptTokens: 1507, cachedTokens: 0, cacheWriteTokens: 1507, completionTokens: 3 });
    for (let t = 2; t <= 10; t++) {
      expect(turns[t - 1]?.usage).toMatchObject({ promptTokens: 1497 + 10 * t, cachedTokens: 1487 + 10 * t, cacheWriteTokens: 10, completionTokens: 3 });
      // Most of the prompt came from the cache.
      expect((turns[t - 1]?.usage.cachedTokens ?? 0) / (turns[t - 1]?.usage.promptTokens ?? 1)).toBeGreaterThan(0.99);
    }
    expect(up.usages.every((u) => u.input_tokens === 0)).toBe(true);

    // Claude Sonnet 4.5: $3 input, $3.75 cache write, $0.30 cache read, $15 output per million tokens.
    // Turn 1: 1,507 x 3.75 + 3 x 15 = 5,696.25 -> $0.00569625.
    expect(turns[0]?.usage.cost).toBe(0.00569625);
    // Turn 2: 1,507 x 0.30 + 10 x 3.75 + 3 x 15 = 452.1 + 37.5 + 45 = 534.6 -> $0.0005346; each later turn reads 10 more tokens (+$0.000003).
    expect(turns[1]?.usage.cost).toBe(0.0005346);
    expect(turns[9]?.usage.cost).toBe(0.0005586);
    // Without caching, turn t costs (1,497 + 10t) x 3 + 45: turn 1 $0.004566, turn 2 $0.004596.
    // Turn 1 paid 0.00569625 - 0.004566 = $0.00113025 extra for the write; turn 2 saved $0.0040614.
    expect(turns[0]?.usage.savedCost).toBe(-0.00113025);
    expect(turns[1]?.usage.savedCost).toBe(0.0040614);
    // Ten turns: $0.01061565 with caching, $0.04701 without; saved $0.03639435 (77%).
    expect(chat.usage.cost).toBe(0.01061565);
    expect(chat.usage.savedCost).toBe(0.03639435);
  });

  it('1-hour entries: writes billed at twice the input price', async () => {
    const env = { ANTHROPIC_API_KEY: 'sk-ant-test-000', ANTHROPIC_BASE_URL: up.url };
    const chat = new Chat('anthropic/claude-sonnet-4.5', { env, system: `${LONG_SYSTEM} hour`, promptCaching: { ttl: '1h' } });
    await chat.send('Question number 1 about the policy?');
    await chat.send('Question number 2 about the policy?');
    const [first, second] = chat.turns;
    // Turn 1 writes system (1,501 tokens with "hour") + question (7) for an hour: 1,508 x $6 + 3 x $15 per million.
    expect(first?.usage).toMatchObject({ promptTokens: 1508, cacheWriteTokens: 1508, cacheWrite1hTokens: 1508 });
    expect(first?.usage.cost).toBe(0.009093);
    // Turn 2 reads 1,508 and writes 10 for an hour: 1,508 x 0.30 + 10 x 6 + 45 = 557.4.
    expect(second?.usage).toMatchObject({ cachedTokens: 1508, cacheWriteTokens: 10, cacheWrite1hTokens: 10 });
    expect(second?.usage.cost).toBe(0.0005574);
  });

  it('with prompt caching off, nothing is cached and nothing is saved', async () => {
    const env = { ANTHROPIC_API_KEY: 'sk-ant-test-000', ANTHROPIC_BASE_URL: up.url };
    const chat = new Chat('anthropic/claude-sonnet-4.5', { env, system: `${LONG_SYSTEM} off`, promptCaching: false });
    for (let t = 1; t <= 3; t++) await chat.send(`Question number ${t} about the policy?`);
    expect(chat.turns.every((turn) => (turn.usage.cachedTokens ?? 0) === 0 && (turn.usage.cacheWriteTokens ?? 0) === 0)).toBe(true);
    expect(chat.usage.savedCost).toBeUndefined();
  });
});
