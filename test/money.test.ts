/**
 * Money is integers until it is shown: every total equals the exact decimal sum of the turn
 * costs (the Chat, usage arithmetic, the /usage attribution and the conversation log's SQL sums).
 * The oracle below adds decimal strings as scaled BigInts, independently of src/money.ts.
 */
import fc from 'fast-check';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Chat } from '../src/index.js';
import { attributeUsage } from '../src/cli/chat/format.js';
import { dollarsToFemto, femtoToDecimal, formatDollars, sumCosts } from '../src/money.js';
import { SQLiteConversationLog } from '../src/store/conversation-log.js';
import type { TurnResult, Usage } from '../src/types.js';
import { addUsage, zeroUsage } from '../src/usage.js';

const SCALE = 40;
/** A decimal string ('0.0008214', '3.3e-7') as an integer count of 10^-40. */
function scaled(text: string): bigint {
  const [mantissa = '0', exp = '0'] = text.toLowerCase().split('e');
  const [whole = '0', frac = ''] = mantissa.split('.');
  const shift = Number(exp) - frac.length + SCALE;
  return BigInt(whole + frac) * 10n ** BigInt(shift);
}
/** The double nearest to the exact decimal sum of the given numbers' decimals. */
function exactSum(costs: number[]): number {
  const total = costs.reduce((n, c) => n + scaled(String(c)), 0n);
  return Number(`${total}e-${SCALE}`);
}

/** A turn cost as the catalog makes one: a whole number of femto-dollars with at most 15 significant digits. */
const turnCost = fc
  .tuple(fc.bigInt({ min: 0n, max: 10n ** 15n - 1n }), fc.integer({ min: 0, max: 3 }))
  .map(([digits, zeros]) => Number(`${digits * 10n ** BigInt(zeros)}e-15`));

function turn(model: string, provider: string, cost: number | null, tokens = 10): TurnResult {
  return {
    model,
    provider,
    resolvedModel: model,
    text: 'ok',
    message: { role: 'assistant', content: 'ok' },
    usage: { promptTokens: tokens, completionTokens: 1, totalTokens: tokens + 1, cost },
    finishReason: 'stop',
    ttftMs: 1,
    latencyMs: 2,
    tokensPerSecond: 100,
    startedAt: new Date().toISOString(),
  } as TurnResult;
}

describe('exact sums', () => {
  it('a float sum drifts; ours does not', () => {
    expect(0.0001 + 0.0002).not.toBe(0.0003);
    expect(sumCosts([0.0001, 0.0002])).toBe(0.0003);
    expect(addUsage({ ...zeroUsage(), totalTokens: 1, cost: 0.0004107 }, { ...zeroUsage(), totalTokens: 1, cost: 0.0004107 }).cost).toBe(0.0008214);
  });

  it('for any sequence of turns, usage sums, sumCosts and the /usage attribution equal the exact decimal sum', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(turnCost, fc.constantFrom('sim/llama', 'sim/mini'), fc.constantFrom('sim-fast', 'sim-cheap')), { minLength: 1, maxLength: 30 }), (turns) => {
        const costs = turns.map(([c]) => c);
        const expected = exactSum(costs);
        expect(sumCosts(costs)).toBe(expected);
        // Two turn costs (whole femto-dollars of at most 15 digits each) add exactly.
        if (costs.length >= 2) expect(addUsage({ ...zeroUsage(), cost: costs[0]! }, { ...zeroUsage(), cost: costs[1]! }).cost).toBe(exactSum(costs.slice(0, 2)));
        const results = turns.map(([c, model, provider]) => turn(model, provider, c));
        const attributed = attributeUsage({
          version: 1, models: ['sim/mini'], keyed: false, system: null, params: {}, history: {},
          usage: { 'sim/mini': { ...zeroUsage(), totalTokens: results.length * 11, promptTokens: results.length * 10, completionTokens: results.length, cost: expected } },
          turns: { 'sim/mini': results },
        });
        expect(Number(femtoToDecimal(attributed.reduce((n, a) => n + (a.costFemto ?? 0n), 0n)))).toBe(expected);
        expect(attributed.every((a) => a.provider !== '-')).toBe(true);
        for (const a of attributed) {
          expect(a.cost).toBe(exactSum(turns.filter(([, m, p]) => m === a.model && p === a.provider).map(([c]) => c)));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('the conversation log sums in integers: logs, logs show and usage equal the exact decimal sum', () => {
    fc.assert(
      fc.property(fc.array(turnCost, { minLength: 1, maxLength: 12 }), (costs) => {
        const log = new SQLiteConversationLog({ path: join(mkdtempSync(join(tmpdir(), 'sb-money-')), 'logs.db') });
        try {
          const id = log.create(['sim/llama'], undefined);
          costs.forEach((c, i) => log.recordTurn(id, { user: `q${i}`, results: [turn(i % 2 ? 'sim/mini' : 'sim/llama', 'sim-fast', c)], errors: [], state: {}, models: ['sim/mini'] }));
          const expected = exactSum(costs);
          const [summary] = log.list();
          expect(summary?.cost).toBe(expected);
          const byModel = log.usage({ by: 'model' });
          expect(Number(femtoToDecimal(byModel.reduce((n, r) => n + (r.costFemto ?? 0n), 0n)))).toBe(expected);
          for (const r of byModel) expect(r.cost).toBe(exactSum(costs.filter((_, i) => (i % 2 ? 'sim/mini' : 'sim/llama') === r.key)));
          expect(log.usage({ by: 'provider' })[0]?.cost).toBe(expected);
          const shown = log.show(id);
          expect(shown?.turns.map((t) => t.cost)).toEqual(costs);
          for (const m of shown?.summary.byModel ?? []) expect(m.cost).toBe(exactSum(costs.filter((_, i) => (i % 2 ? 'sim/mini' : 'sim/llama') === m.model)));
          // Models in order of first answer, then the one the chat holds now.
          expect(shown?.summary.models).toEqual(['sim/llama', 'sim/mini']);
        } finally {
          log.close();
        }
      }),
      { numRuns: 25 },
    );
  });

  it('a Chat against the simulator: usage.cost is the exact decimal sum of its turns, whatever the sequence', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('Hi', 'Tell me a story', 'What is 2+2?', 'Explain Raft briefly'), { minLength: 1, maxLength: 4 }), async (messages) => {
        const chat = new Chat('sim/llama@sim-cheap');
        for (const m of messages) await chat.send(m);
        const costs = chat.turns.map((t) => t.usage.cost as number);
        expect(costs.every((c) => c > 0)).toBe(true);
        expect(chat.usage.cost).toBe(exactSum(costs));
        const back = Chat.fromJSON(JSON.parse(JSON.stringify(chat)));
        expect((back.usage as Usage).cost).toBe(chat.usage.cost);
      }),
      { numRuns: 8 },
    );
  });
});

describe('one rounding rule', () => {
  it('reads a number by its decimal digits and rounds half up at the femto-dollar', () => {
    expect(dollarsToFemto(0.0008214)).toBe(821_400_000_000n);
    expect(dollarsToFemto(1e-7)).toBe(100_000_000n);
    expect(dollarsToFemto(2.5e-15)).toBe(3n);
    expect(dollarsToFemto(2.4e-15)).toBe(2n);
    expect(dollarsToFemto(12.5)).toBe(12_500_000_000_000_000n);
    expect(femtoToDecimal(821_400_000_000n)).toBe('0.0008214');
    expect(femtoToDecimal(12_000_000_000_000_001n)).toBe('12.000000000000001');
  });

  it('prints half up to the digits shown: 6 below a cent, 4 from a cent', () => {
    expect(formatDollars(0n)).toBe('$0');
    expect(formatDollars(dollarsToFemto(0.0000125))).toBe('$0.000013');
    expect(formatDollars(dollarsToFemto(0.0000124999))).toBe('$0.000012');
    expect(formatDollars(dollarsToFemto(0.01235))).toBe('$0.0124');
    expect(formatDollars(dollarsToFemto(1234.5))).toBe('$1234.5000');
  });
});
