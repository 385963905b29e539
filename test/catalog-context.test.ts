import { describe, expect, it } from 'vitest';
import { ContextLengthError, estimateTokens, fitToContext, messageTokens } from '../src/catalog/context.js';
import type { Message } from '../src/types.js';

const system: Message = { role: 'system', content: 'You are terse.' };
const long = 'word '.repeat(400).trim();

function conversation(): Message[] {
  return [
    system,
    { role: 'user', content: `first question ${long}` },
    { role: 'assistant', content: `first answer ${long}` },
    { role: 'user', content: 'look it up' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'search', arguments: '{"q":"weather"}' } }] },
    { role: 'tool', tool_call_id: 'c1', content: `result ${long}` },
    { role: 'assistant', content: 'It is sunny.' },
    { role: 'user', content: 'thanks, and tomorrow?' },
  ];
}

describe('estimateTokens', () => {
  it('counts text with the o200k encoding plus per-message framing', () => {
    // "hello world" is 2 tokens in o200k_base; "user" 1; framing 3 per message; 3 to prime the reply.
    expect(messageTokens({ role: 'user', content: 'hello world' })).toBe(3 + 1 + 2);
    expect(estimateTokens([{ role: 'user', content: 'hello world' }])).toBe(3 + 6);
    // 400 repetitions of "word" separated by spaces: " word" is one token each.
    expect(messageTokens({ role: 'user', content: long })).toBe(3 + 1 + 400);
  });

  it('counts images by detail', () => {
    const low: Message = { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'low' } }] };
    const high: Message = { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] };
    expect(messageTokens(low)).toBe(3 + 1 + 85);
    expect(messageTokens(high)).toBe(3 + 1 + 765);
  });
});

describe('fitToContext', () => {
  it('returns the messages unchanged when they fit', () => {
    const messages = conversation();
    expect(fitToContext(messages, 100_000, 1000)).toEqual(messages);
  });

  it('throws ContextLengthError with both numbers when they do not fit', () => {
    const messages = conversation();
    const needed = estimateTokens(messages) + 500;
    try {
      fitToContext(messages, 1000, 500);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ContextLengthError);
      const e = err as ContextLengthError;
      expect(e.code).toBe('context_length');
      expect(e.requiredTokens).toBe(needed);
      expect(e.contextLength).toBe(1000);
      expect(e.message).toContain(String(needed));
      expect(e.message).toContain('1000');
    }
  });

  it('drops the oldest turns, keeping the system prompt and tool calls with their results', () => {
    const messages = conversation();
    // Room for everything but the first turn (~810 tokens): it goes, the rest stays.
    const withoutFirst = estimateTokens([messages[0] as Message, ...messages.slice(3)]);
    const kept = fitToContext(messages, withoutFirst + 100, 100, { dropOldest: true });
    expect(kept).toEqual([messages[0], ...messages.slice(3)]);

    // Less room: the tool-call turn goes as a whole, never the call without its result.
    const tight = estimateTokens([messages[0] as Message, messages[7] as Message]);
    const fewer = fitToContext(messages, tight + 10, 10, { dropOldest: true });
    expect(fewer).toEqual([messages[0], messages[7]]);
    expect(fewer.some((m) => m.role === 'tool')).toBe(false);
  });

  it('throws when even the latest turn does not fit', () => {
    expect(() => fitToContext(conversation(), 20, 10, { dropOldest: true })).toThrow(ContextLengthError);
  });
});
