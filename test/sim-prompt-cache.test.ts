/** The simulated prompt caches' rules (src/sim/prompt-cache.ts), worked by hand. */
import { describe, expect, it } from 'vitest';
import { PromptCacheModel, TooManyBreakpointsError, type PromptSegment } from '../src/sim/prompt-cache.js';

const seg = (key: string, tokens: number, breakpoint?: '5m' | '1h'): PromptSegment => (breakpoint ? { key, tokens, breakpoint } : { key, tokens });

describe('explicit breakpoints (Anthropic)', () => {
  it('writes up to the last breakpoint, reads it next time, and nothing below the minimum', () => {
    const cache = new PromptCacheModel(() => 0);
    expect(cache.explicit('m', [seg('sys', 500, '5m'), seg('u1', 10, '5m')], 1024)).toEqual({ readTokens: 0, writeTokens: 0, write1hTokens: 0 });
    expect(cache.explicit('m', [seg('sys', 2000, '5m'), seg('u1', 10, '5m')], 1024)).toEqual({ readTokens: 0, writeTokens: 2010, write1hTokens: 0 });
    expect(cache.explicit('m', [seg('sys', 2000, '5m'), seg('u1', 10, '5m'), seg('a1', 5), seg('u2', 10, '5m')], 1024)).toEqual({ readTokens: 2010, writeTokens: 15, write1hTokens: 0 });
    // One changed byte in the system prompt misses everything.
    expect(cache.explicit('m', [seg('sys!', 2000, '5m'), seg('u1', 10, '5m')], 1024).readTokens).toBe(0);
    // Caches are per model.
    expect(cache.explicit('other', [seg('sys', 2000, '5m'), seg('u1', 10, '5m')], 1024).readTokens).toBe(0);
  });

  it('looks back 20 blocks from a breakpoint, no further', () => {
    const cache = new PromptCacheModel(() => 0);
    cache.explicit('m', [seg('sys', 2000, '5m')], 1024);
    const blocks = (n: number) => Array.from({ length: n }, (_, i) => seg(`b${i}`, 1));
    expect(cache.explicit('m', [seg('sys', 2000), ...blocks(19), seg('last', 1, '5m')], 1024).readTokens).toBe(2000);
    const far = new PromptCacheModel(() => 0);
    far.explicit('m', [seg('sys', 2000, '5m')], 1024);
    expect(far.explicit('m', [seg('sys', 2000), ...blocks(20), seg('last', 1, '5m')], 1024).readTokens).toBe(0);
  });

  it('entries live 5 minutes from their last use, or an hour; a fifth breakpoint is refused', () => {
    let now = 0;
    const cache = new PromptCacheModel(() => now);
    cache.explicit('m', [seg('a', 2000, '5m')], 1024);
    cache.explicit('m', [seg('b', 2000, '1h')], 1024);
    now = 4 * 60_000;
    expect(cache.explicit('m', [seg('a', 2000, '5m')], 1024).readTokens).toBe(2000); // refreshed
    now = 8 * 60_000;
    expect(cache.explicit('m', [seg('a', 2000, '5m')], 1024).readTokens).toBe(2000);
    now = 14 * 60_000;
    expect(cache.explicit('m', [seg('a', 2000, '5m')], 1024)).toEqual({ readTokens: 0, writeTokens: 2000, write1hTokens: 0 });
    expect(cache.explicit('m', [seg('b', 2000, '1h')], 1024).readTokens).toBe(2000);
    expect(() => cache.explicit('m', ['a', 'b', 'c', 'd', 'e'].map((k) => seg(k, 300, '5m')), 1024)).toThrow(TooManyBreakpointsError);
  });

  it('splits writes between 1-hour and 5-minute breakpoints', () => {
    const cache = new PromptCacheModel(() => 0);
    expect(cache.explicit('m', [seg('sys', 2000, '1h'), seg('u', 30, '5m')], 1024)).toEqual({ readTokens: 0, writeTokens: 2030, write1hTokens: 2000 });
  });
});

describe('automatic prefix caching (OpenAI, Gemini)', () => {
  it('reads the longest earlier prefix in 128-token steps past 1,024; short prompts never', () => {
    const cache = new PromptCacheModel(() => 0);
    expect(cache.automatic('m', [seg('sys', 1500), seg('u1', 20)]).readTokens).toBe(0);
    // 1,520 repeated: 1,024 + 3 x 128 = 1,408.
    expect(cache.automatic('m', [seg('sys', 1500), seg('u1', 20), seg('a1', 30), seg('u2', 20)]).readTokens).toBe(1408);
    expect(cache.automatic('m', [seg('short', 900), seg('u', 10)]).readTokens).toBe(0);
    expect(cache.automatic('m', [seg('short', 900), seg('u', 10)]).readTokens).toBe(0);
  });
});

describe('a simulated request as segments', () => {
  it('tools, system, messages, with the framing the usage counts and the breakpoints in place', async () => {
    const { promptSegments, simBreakpoints } = await import('../src/sim/prompt-cache.js');
    const canonical = [
      { role: 'system' as const, content: 'Be brief.' },
      { role: 'user' as const, content: 'Hello there' },
      { role: 'assistant' as const, content: 'Hi.' },
      { role: 'user' as const, content: 'And now?' },
    ];
    // Canonical indexes 0 (system) and 3 (the last user message) are, in simulator messages, 'system' and 2.
    const breakpoints = simBreakpoints(canonical, [{ after: 0, ttl: '5m' }, { after: 3, ttl: '1h' }]);
    expect(breakpoints).toEqual([{ after: 'system', ttl: '5m' }, { after: 2, ttl: '1h' }]);
    const segments = promptSegments({
      system: 'Be brief.',
      messages: [
        { role: 'user', text: 'Hello there', attachments: [] },
        { role: 'assistant', text: 'Hi.', attachments: [] },
        { role: 'user', text: 'And now?', attachments: [] },
      ],
      tools: [{ name: 'lookup', description: 'Find it', parameters: { type: 'object' } }],
      cacheBreakpoints: breakpoints,
    });
    // Tokens: tools = lookup (1) + Find it (2) + {"type":"object"} (9); each message 4 + its words and marks.
    expect(segments.map((s) => [s.tokens, s.breakpoint])).toEqual([
      [12, undefined],
      [4 + 3, '5m'],
      [4 + 2, undefined],
      [4 + 2, undefined],
      [4 + 3, '1h'],
    ]);
  });
});

describe('the simulator caches prompts as each provider does', () => {
  const LONG_SYSTEM = Array.from({ length: 1500 }, () => 'policy').join(' ');
  const question = (t: number) => `Question number ${t} about the policy?`;

  it('sim-anthropic: a ten-turn chat reads all but the newest exchange from the cache, priced at the cache rates', async () => {
    const { Chat } = await import('../src/index.js');
    const { countTokens } = await import('../src/sim/tokens.js');
    const chat = new Chat('sim/llama@sim-anthropic', { system: LONG_SYSTEM });
    for (let t = 1; t <= 10; t++) await chat.send(question(t));
    const turns = chat.turns;
    const history = chat.history;
    // Turn 1 writes the system prompt and the question (4 framing tokens each); only the reply priming (3) is plain input.
    expect(turns[0]?.usage).toMatchObject({ cachedTokens: 0, cacheWriteTokens: 4 + 1500 + 4 + countTokens(question(1)), promptTokens: 3 + 4 + 1500 + 4 + countTokens(question(1)) });
    for (let t = 2; t <= 10; t++) {
      const u = turns[t - 1]?.usage;
      const previousReply = history[2 * (t - 1)]?.content as string;
      // Written now: the last reply and the new question; read: everything before them.
      expect(u?.cacheWriteTokens).toBe(4 + countTokens(previousReply) + 4 + countTokens(question(t)));
      expect((u?.cachedTokens ?? 0) + (u?.cacheWriteTokens ?? 0) + 3).toBe(u?.promptTokens);
      expect((u?.cachedTokens ?? 0) / (u?.promptTokens ?? 1)).toBeGreaterThan(0.9);
      // sim-anthropic's prices per million: $1 input, $0.10 cache read, $1.25 cache write, $5 output.
      const femto = 3 * 1e9 + (u?.cachedTokens ?? 0) * 0.1e9 + (u?.cacheWriteTokens ?? 0) * 1.25e9 + (u?.completionTokens ?? 0) * 5e9;
      expect(u?.cost).toBe(femto / 1e15);
      expect(u?.savedCost).toBe(((u?.cachedTokens ?? 0) * 0.9e9 - (u?.cacheWriteTokens ?? 0) * 0.25e9) / 1e15);
    }
    expect(chat.usage.savedCost).toBeGreaterThan(0);
  });

  it('sim-anthropic: no breakpoints, no caching', async () => {
    const { Chat } = await import('../src/index.js');
    const chat = new Chat('sim/llama@sim-anthropic', { system: `${LONG_SYSTEM} unmarked`, promptCaching: false });
    await chat.send(question(1));
    await chat.send(question(2));
    expect(chat.turns.map((t) => [t.usage.cachedTokens ?? 0, t.usage.cacheWriteTokens ?? 0])).toEqual([[0, 0], [0, 0]]);
  });

  it('sim-fast (OpenAI protocol): the repeated prefix is read automatically, in 128-token steps past 1,024', async () => {
    const { Chat } = await import('../src/index.js');
    const { countTokens } = await import('../src/sim/tokens.js');
    const chat = new Chat('sim/llama@sim-fast', { system: `${LONG_SYSTEM} fast` });
    await chat.send(question(1));
    await chat.send(question(2));
    const [first, second] = chat.turns;
    expect(first?.usage.cachedTokens).toBe(0);
    // Turn 2 repeats turn 1's prompt (system and question, framing included, not the priming).
    const repeated = 4 + 1501 + 4 + countTokens(question(1));
    expect(second?.usage.cachedTokens).toBe(1024 + Math.floor((repeated - 1024) / 128) * 128);
    // sim-fast reports its own cost: $0.60 input, $0.30 cached, $2.40 output per million.
    const u = second?.usage;
    const femto = ((u?.promptTokens ?? 0) - (u?.cachedTokens ?? 0)) * 0.6e9 + (u?.cachedTokens ?? 0) * 0.3e9 + (u?.completionTokens ?? 0) * 2.4e9;
    expect(u?.cost).toBeCloseTo(femto / 1e15, 12);
    expect(u?.savedCost).toBeGreaterThan(0);
  });

  it('sim-gemini: the same automatic caching, reported as cachedContentTokenCount', async () => {
    const { Chat } = await import('../src/index.js');
    const chat = new Chat('sim/llama@sim-gemini', { system: `${LONG_SYSTEM} gemini` });
    await chat.send(question(1));
    await chat.send(question(2));
    expect(chat.turns[0]?.usage.cachedTokens ?? 0).toBe(0);
    expect(chat.turns[1]?.usage.cachedTokens).toBeGreaterThanOrEqual(1024);
  });
});
