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
