/**
 * The client halves against streams shaped as the providers document them: each stream is
 * read whole and written one byte per network write, and both readings must agree.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ProtocolError } from '../src/errors.js';
import { Chat, tool } from '../src/index.js';
import { buildAnthropicBody } from '../src/protocols/anthropic.js';
import { readOpenAIUsage } from '../src/protocols/openai.js';
import type { ProtocolName } from '../src/protocols/protocol.js';
import { defaultRegistry } from '../src/providers/registry.js';
import type { Message, ProtocolEvent } from '../src/types.js';
import {
  ANTHROPIC_FULL_START, ANTHROPIC_REPEATED_START, ANTHROPIC_SERVER_TOOL_MESSAGE, ANTHROPIC_SERVER_TOOL_STREAM, ANTHROPIC_SPLICED,
  MISTRAL_THINKING_STREAM, SEARCH_RESULT_BLOCK, VERTEX_PARTIAL_ARGS_STREAM, XAI_REASONING_STREAM,
} from './helpers/provider-streams.js';
import {
  collect, endpoint, everyNBytes, failure, reasoningOf, request, sendJSON, sendSSE, sse, startStandIn, textOf, toolCallsOf, type StandIn,
} from './helpers/stand-in.js';

const STREAMS: Record<string, { protocol: ProtocolName; body: string; provider?: string }> = {
  'anthropic-server-tools': { protocol: 'anthropic', body: ANTHROPIC_SERVER_TOOL_STREAM },
  'anthropic-repeated-start': { protocol: 'anthropic', body: ANTHROPIC_REPEATED_START },
  'anthropic-full-start': { protocol: 'anthropic', body: ANTHROPIC_FULL_START },
  'mistral-thinking': { protocol: 'openai', body: MISTRAL_THINKING_STREAM, provider: 'mistral' },
  'xai-reasoning': { protocol: 'openai', body: XAI_REASONING_STREAM, provider: 'xai' },
  'vertex-partial-args': { protocol: 'gemini', body: VERTEX_PARTIAL_ARGS_STREAM },
};

let server: StandIn;
/** Replies of the tool-loop stand-in, one per request, in order. */
let loopReplies: string[] = [];
beforeAll(async () => {
  // URL: /<stream>/<whole|bytes>/... ; /spliced/... ; /message/... ; /loop/...
  server = await startStandIn(async (req, res) => {
    const [, name, mode] = req.url.split('/');
    if (name === 'spliced') return sendSSE(res, ANTHROPIC_SPLICED);
    if (name === 'message') return sendJSON(res, 200, ANTHROPIC_SERVER_TOOL_MESSAGE);
    if (name === 'loop') return sendSSE(res, loopReplies.shift() ?? '');
    const stream = STREAMS[name ?? ''];
    if (!stream) return sendJSON(res, 404, { error: { message: `no stream ${name}` } });
    const cuts = mode === 'bytes' ? everyNBytes(Buffer.byteLength(stream.body), 1) : [];
    await sendSSE(res, stream.body, cuts, 0);
  });
});
afterAll(() => server.close());

function at(name: string, mode: 'whole' | 'bytes') {
  const stream = STREAMS[name];
  if (!stream) throw new Error(name);
  const base = `${server.url}/${name}/${mode}`;
  const provider = stream.provider ?? stream.protocol;
  return { ...endpoint(stream.protocol, stream.protocol === 'openai' ? `${base}/v1` : base, undefined, provider), compat: defaultRegistry.get(provider === 'gemini' ? 'google' : provider).compat ?? {} };
}

/** Gemini sends no tool-call ids; the generated ones differ per reading. */
function withoutGeneratedIds(events: ProtocolEvent[]): ProtocolEvent[] {
  return events.map((e) => (e.type === 'tool-call-delta' && e.id?.startsWith('call_') ? { ...e, id: '<generated>' } : e));
}

/** The stream's events, checked to be the same when every byte arrives on its own. */
async function read(name: string): Promise<ProtocolEvent[]> {
  const whole = withoutGeneratedIds(await collect(at(name, 'whole')));
  expect(withoutGeneratedIds(await collect(at(name, 'bytes')))).toEqual(whole);
  return whole;
}

const usageOf = (events: ProtocolEvent[]) => events.find((e) => e.type === 'usage');
const providerBlocks = (events: ProtocolEvent[]) => events.flatMap((e) => (e.type === 'provider-block' ? [e.block] : []));

describe('Anthropic server tools', () => {
  it('keeps server_tool_use and its result apart from the client tool call', async () => {
    const events = await read('anthropic-server-tools');
    expect(toolCallsOf(events)).toEqual([{ id: 'toolu_01A09q90qw90lq917835lq9', name: 'save_note', arguments: '{"filename": "news.txt"}' }]);
    expect(providerBlocks(events)).toEqual([
      { type: 'server_tool_use', id: 'srvtoolu_014hJH82Qum7Td6UV8gDXThB', name: 'web_search', input: { query: 'latest news Zürich' } },
      SEARCH_RESULT_BLOCK,
    ]);
    expect(textOf(events)).toBe('Ich suche nach Neuigkeiten.Der Stadtrat tagt.');
    expect(events).toContainEqual({ type: 'finish', reason: 'tool-calls', rawReason: 'tool_use' });
    expect(usageOf(events)).toMatchObject({ usage: { promptTokens: 2679, completionTokens: 510 } });
  });

  it('reads web fetch and code execution blocks of a whole message', async () => {
    const events = await collect({ ...endpoint('anthropic', `${server.url}/message`) }, request({ stream: false }));
    expect(toolCallsOf(events)).toEqual([]);
    expect(providerBlocks(events)).toEqual(ANTHROPIC_SERVER_TOOL_MESSAGE.content.slice(0, 4));
    expect(textOf(events)).toBe('Die Summe ist 3.');
    expect(events).toContainEqual({ type: 'finish', reason: 'stop', rawReason: 'end_turn' });
  });

  it('replays the blocks within the tool loop to the same provider, with every tool_use named', async () => {
    loopReplies = [
      ANTHROPIC_SERVER_TOOL_STREAM,
      sse([
        { event: 'message_start', data: { type: 'message_start', message: { id: 'msg_2', model: 'claude-sonnet-4-5-20250929', content: [], usage: { input_tokens: 3000, output_tokens: 1 } } } },
        { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
        { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Gespeichert.' } } },
        { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
        { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 5 } } },
        { event: 'message_stop', data: { type: 'message_stop' } },
      ]),
    ];
    const saved: unknown[] = [];
    const saveNote = tool({ name: 'save_note', parameters: z.object({ filename: z.string() }), execute: (args) => (saved.push(args), 'ok') });
    const chat = new Chat('claude-sonnet-4-5@anthropic', { env: { ANTHROPIC_API_KEY: 'sk-ant-test-key', ANTHROPIC_BASE_URL: `${server.url}/loop` } });
    const before = server.requests.length;
    expect(await chat.send('Neuigkeiten aus Zürich?', { tools: [saveNote], webSearch: true })).toBe('Gespeichert.');
    expect(saved).toEqual([{ filename: 'news.txt' }]);
    const second = JSON.parse(server.requests[before + 1]?.body ?? '{}') as { messages: { role: string; content: Record<string, unknown>[] }[] };
    const assistant = second.messages[1];
    expect(assistant?.role).toBe('assistant');
    expect(assistant?.content.map((b) => b.type)).toEqual(['server_tool_use', 'web_search_tool_result', 'text', 'tool_use']);
    expect(assistant?.content[0]).toEqual({ type: 'server_tool_use', id: 'srvtoolu_014hJH82Qum7Td6UV8gDXThB', name: 'web_search', input: { query: 'latest news Zürich' } });
    expect(assistant?.content[3]).toEqual({ type: 'tool_use', id: 'toolu_01A09q90qw90lq917835lq9', name: 'save_note', input: { filename: 'news.txt' } });
    // The kept history is provider-neutral: one client call, no server blocks.
    const calls = chat.history.flatMap((m) => (m.role === 'assistant' ? m.tool_calls ?? [] : []));
    expect(calls.map((c) => c.function.name)).toEqual(['save_note']);
    expect(JSON.stringify(chat.history)).not.toContain('server_tool_use');
  });

  it('drops the blocks for any other provider', () => {
    const replay = {
      role: 'assistant',
      content: 'Ich suche.',
      provider_blocks: { provider: 'anthropic', blocks: [{ type: 'server_tool_use', id: 'srvtoolu_1', name: 'web_search', input: { query: 'x' } }] },
    } as unknown as Message;
    const body = (provider: string) => buildAnthropicBody(request({ messages: [{ role: 'user', content: 'Hi' }, replay] }), provider).messages as { content: { type: string }[] }[];
    expect(body('anthropic')[1]?.content.map((b) => b.type)).toEqual(['server_tool_use', 'text']);
    expect(body('vertex')[1]?.content.map((b) => b.type)).toEqual(['text']);
  });
});

describe('Anthropic message_start', () => {
  it('ignores a repeated message_start of the same message: its counts do not replace the first', async () => {
    const events = await read('anthropic-repeated-start');
    expect(events.filter((e) => e.type === 'start')).toHaveLength(1);
    expect(textOf(events)).toBe('Hallo Zoë');
    expect(usageOf(events)).toMatchObject({ usage: { promptTokens: 10, completionTokens: 4, totalTokens: 14 } });
  });

  it('refuses a message_start for another message in the middle of one', async () => {
    const err = await failure(endpoint('anthropic', `${server.url}/spliced`));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toContain('msg_two');
    expect(err.message).toContain('msg_one');
  });

  it('keeps content blocks and stop_reason sent in message_start; reads thinking tokens', async () => {
    const events = await read('anthropic-full-start');
    expect(textOf(events)).toBe('Ich schaue nach.');
    expect(toolCallsOf(events)).toEqual([{ id: 'toolu_full', name: 'get_weather', arguments: '{"city":"Kraków"}' }]);
    expect(events.filter((e) => e.type === 'finish')).toEqual([{ type: 'finish', reason: 'tool-calls', rawReason: 'tool_use' }]);
    expect(usageOf(events)).toMatchObject({ usage: { promptTokens: 40, completionTokens: 120, totalTokens: 160, reasoningTokens: 80 } });
  });
});

describe('OpenAI-compatible hosts', () => {
  it('reads Mistral content parts: thinking parts as reasoning, text parts as text', async () => {
    const events = await read('mistral-thinking');
    expect(reasoningOf(events)).toBe('Łukasz fragt nach der Hauptstadt.');
    expect(textOf(events)).toBe('Die Hauptstadt ist Warschau.');
    expect(textOf(events)).not.toContain('[object Object]');
    expect(usageOf(events)).toMatchObject({ usage: { promptTokens: 14, completionTokens: 60, totalTokens: 74 } });
  });

  it('counts xAI reasoning tokens as completion tokens', async () => {
    const events = await read('xai-reasoning');
    expect(textOf(events)).toBe('101 Dalmatiner.');
    expect(usageOf(events)).toMatchObject({ usage: { promptTokens: 32, completionTokens: 222, totalTokens: 254, reasoningTokens: 196, cachedTokens: 6 } });
  });

  /** One usage object per vendor, in the shape its API reference shows, and what it means canonically. */
  const VENDOR_USAGE: Record<string, { wire: Parameters<typeof readOpenAIUsage>[0]; canonical: Record<string, number> }> = {
    openai: {
      wire: { prompt_tokens: 1200, completion_tokens: 300, total_tokens: 1500, prompt_tokens_details: { cached_tokens: 1024 }, completion_tokens_details: { reasoning_tokens: 256 } },
      canonical: { promptTokens: 1200, completionTokens: 300, totalTokens: 1500, cachedTokens: 1024, reasoningTokens: 256 },
    },
    openrouter: {
      wire: { prompt_tokens: 194, completion_tokens: 2, total_tokens: 196, cost: 0.00095, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } },
      canonical: { promptTokens: 194, completionTokens: 2, totalTokens: 196, cachedTokens: 0, reasoningTokens: 0 },
    },
    deepseek: {
      wire: { prompt_tokens: 100, completion_tokens: 500, total_tokens: 600, prompt_cache_hit_tokens: 64, prompt_cache_miss_tokens: 36, completion_tokens_details: { reasoning_tokens: 400 } },
      canonical: { promptTokens: 100, completionTokens: 500, totalTokens: 600, cachedTokens: 64, reasoningTokens: 400 },
    },
    xai: {
      wire: { prompt_tokens: 32, completion_tokens: 26, total_tokens: 254, completion_tokens_details: { reasoning_tokens: 196 } },
      canonical: { promptTokens: 32, completionTokens: 222, totalTokens: 254, reasoningTokens: 196 },
    },
    mistral: { wire: { prompt_tokens: 14, completion_tokens: 60, total_tokens: 74 }, canonical: { promptTokens: 14, completionTokens: 60, totalTokens: 74 } },
    groq: {
      wire: { prompt_tokens: 18, completion_tokens: 556, total_tokens: 574, completion_tokens_details: { reasoning_tokens: 410 } },
      canonical: { promptTokens: 18, completionTokens: 556, totalTokens: 574, reasoningTokens: 410 },
    },
    together: { wire: { prompt_tokens: 35, completion_tokens: 120, total_tokens: 155 }, canonical: { promptTokens: 35, completionTokens: 120, totalTokens: 155 } },
    fireworks: {
      wire: { prompt_tokens: 40, completion_tokens: 90, total_tokens: 130, prompt_tokens_details: { cached_tokens: 32 } },
      canonical: { promptTokens: 40, completionTokens: 90, totalTokens: 130, cachedTokens: 32 },
    },
    cerebras: {
      wire: { prompt_tokens: 21, completion_tokens: 340, total_tokens: 361, completion_tokens_details: { reasoning_tokens: 300 } },
      canonical: { promptTokens: 21, completionTokens: 340, totalTokens: 361, reasoningTokens: 300 },
    },
    azure: {
      wire: { prompt_tokens: 1500, completion_tokens: 420, total_tokens: 1920, prompt_tokens_details: { cached_tokens: 1280 }, completion_tokens_details: { reasoning_tokens: 384 } },
      canonical: { promptTokens: 1500, completionTokens: 420, totalTokens: 1920, cachedTokens: 1280, reasoningTokens: 384 },
    },
    deepinfra: { wire: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 }, canonical: { promptTokens: 12, completionTokens: 8, totalTokens: 20 } },
  };

  it('has a usage case for every built-in OpenAI-protocol vendor', () => {
    const vendors = defaultRegistry.all().filter((p) => p.protocol === 'openai' && !p.local && !p.simulated).map((p) => p.name);
    expect(Object.keys(VENDOR_USAGE).sort()).toEqual(vendors.sort());
  });

  it.each(Object.keys(VENDOR_USAGE))('reads %s usage with its compat settings', (vendor) => {
    const { wire, canonical } = VENDOR_USAGE[vendor] as (typeof VENDOR_USAGE)[string];
    expect(readOpenAIUsage(wire, defaultRegistry.get(vendor).compat)).toEqual(canonical);
  });
});

describe('Gemini on Vertex', () => {
  it('puts function-call arguments streamed in pieces together: two whole calls', async () => {
    const events = await read('vertex-partial-args');
    const calls = toolCallsOf(events).map((c) => ({ name: c.name, args: JSON.parse(c.arguments) as unknown }));
    expect(calls).toEqual([
      { name: 'get_weather', args: { location: 'São Paulo' } },
      { name: 'get_forecast', args: { location: '東京', days: 3, options: { units: 'metric' }, hours: [9] } },
    ]);
    expect(textOf(events)).toBe('Ich prüfe beide Städte. ');
    expect(events).toContainEqual({ type: 'finish', reason: 'tool-calls', rawReason: 'STOP' });
  });
});
