/**
 * The context check on long runs of one character: the tokenizer is quadratic on such a run,
 * so 200,000 "=" once blocked the process for 21 s (and twice that, 400,000, for well over a
 * minute). Counting now stays linear; these tests would run into the test timeout before.
 * Some texts are slow to count even in short pieces (random CJK or punctuation without a
 * space: about 15 µs a character), so one count runs the tokenizer for 100 ms at most and
 * counts the rest at the rate it measured.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { Chat, estimateTokens } from '../src/index.js';

const require = createRequire(import.meta.url);
const { countTokens } = require('gpt-tokenizer/encoding/o200k_base') as { countTokens: (text: string) => number };

/** `length` characters drawn from `alphabet` by a fixed linear congruential sequence. */
function scrambled(length: number, alphabet: string, seed: number): string {
  const out: string[] = [];
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out.push(alphabet[x % alphabet.length] as string);
  }
  return out.join('');
}

describe('the context check on hostile text', () => {
  it('a message of 400,000 "=" goes through the context check and is answered', async () => {
    const chat = new Chat('sim/llama');
    const reply = await chat.send('='.repeat(400_000));
    expect(typeof reply).toBe('string');
    expect(chat.history).toHaveLength(2);
  });

  it.each([
    ['one character', '='.repeat(400_000)],
    ['no spaces at all', 'abcdefghij'.repeat(40_000)],
    ['emoji (surrogate pairs)', '🌍'.repeat(200_000)],
  ])('counts a long run of %s', (_name, text) => {
    const n = estimateTokens([{ role: 'user', content: text }]);
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(text.length + 10);
  });

  it('counts ordinary prose as the tokenizer does on the whole text, within 0.5%', () => {
    const words = 'The quick brown fox jumps over the lazy dog; naïve café owners serve 42 crêpes, 世界 🌍. '.repeat(700);
    const whole = countTokens(words);
    const framed = estimateTokens([{ role: 'user', content: words }]) - estimateTokens([{ role: 'user', content: '' }]);
    expect(Math.abs(framed - whole) / whole).toBeLessThan(0.005);
  });

  it('counts four million random CJK characters, in one message or in 4,000, from a measured rate past the first 100 ms', () => {
    const alphabet = '漢字かなカナ日本語中文';
    const one = scrambled(4_000_000, alphabet, 7);
    const many = Array.from({ length: 4000 }, (_, i) => ({ role: 'user' as const, content: scrambled(1000, alphabet, i + 1) }));
    for (const messages of [[{ role: 'user' as const, content: one }], many]) {
      const n = estimateTokens(messages);
      // About one token a character (these characters are single tokens, few pairs merge), and never past the UTF-8 bytes.
      expect(n).toBeGreaterThan(0.8 * 4_000_000);
      expect(n).toBeLessThan(Buffer.byteLength(one) + messages.length * 10);
    }
  });
});
