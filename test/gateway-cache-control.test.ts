/**
 * An Anthropic client's own `cache_control` markers go through the gateway to an Anthropic
 * upstream where the client put them (system prompt, tools, a message's last block, with
 * their lifetime), instead of the markers the gateway would place by itself. Upstream is a
 * stand-in that caches by Anthropic's rules and records each body.
 */
import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAnthropicCacheStandIn, type CacheStandIn } from './helpers/anthropic-cache-standin.js';
import { MASTER_KEY, startGateway, type RunningGateway } from './helpers/gateway.js';

let upstream: CacheStandIn;
let gw: RunningGateway;
let client: Anthropic;

beforeAll(async () => {
  upstream = await startAnthropicCacheStandIn(() => 'Noted.', 20);
  gw = await startGateway(`providers:\n  - { name: anth, protocol: anthropic, base_url: "\${UPSTREAM_URL}", api_key: sk-ant-upstream-0000 }\n`, { env: { UPSTREAM_URL: upstream.url }, requestLog: false });
  client = new Anthropic({ baseURL: gw.url, apiKey: MASTER_KEY, maxRetries: 0 });
});
afterAll(async () => {
  await gw.close();
  await upstream.close();
});

type Block = { type: string; text?: string; cache_control?: unknown };
const markers = (value: unknown): unknown[] => JSON.stringify(value).match(/"cache_control":\{[^}]*\}/g) ?? [];

describe('caller-supplied cache_control', () => {
  it('is forwarded where the client put it, with its ttl, and no marker of ours is added', async () => {
    const system = 'You answer questions about the water cycle, briefly and exactly.';
    const params = {
      model: 'claude-sonnet-4-5@anth',
      max_tokens: 100,
      system: [{ type: 'text' as const, text: system, cache_control: { type: 'ephemeral' as const, ttl: '1h' as const } }],
      tools: [{ name: 'lookup', description: 'Look a term up', input_schema: { type: 'object' as const, properties: { term: { type: 'string' } } }, cache_control: { type: 'ephemeral' as const } }],
      messages: [
        { role: 'user' as const, content: [{ type: 'text' as const, text: 'What is evaporation?', cache_control: { type: 'ephemeral' as const } }] },
        { role: 'assistant' as const, content: 'Water turning to vapour.' },
        { role: 'user' as const, content: 'And condensation?' },
      ],
    };
    const first = await client.messages.stream(params).finalMessage();
    const sent = JSON.parse(upstream.requests.at(-1)?.body ?? '{}') as { system: Block[]; tools: Block[]; messages: { role: string; content: Block[] }[] };
    expect(sent.system).toEqual([{ type: 'text', text: system, cache_control: { type: 'ephemeral', ttl: '1h' } }]);
    expect(sent.tools.at(-1)?.cache_control).toEqual({ type: 'ephemeral' });
    expect(sent.messages[0]?.content.at(-1)?.cache_control).toEqual({ type: 'ephemeral' });
    expect(markers(sent)).toHaveLength(3);
    // Anthropic's cache takes them: the first request writes up to the last marker, the second reads it.
    expect(first.usage.cache_creation_input_tokens).toBeGreaterThan(0);
    const second = await client.messages.stream(params).finalMessage();
    expect(second.usage.cache_read_input_tokens).toBe(first.usage.cache_creation_input_tokens);
  });
});
