import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelStringError } from '../src/errors.js';
import {
  MODES,
  parseModelString,
  printModelString,
  type Constraint,
  type EndpointNode,
  type ModelStringAST,
} from '../src/routing/grammar.js';

function errorOf(input: string): ModelStringError {
  try {
    parseModelString(input);
  } catch (err) {
    if (err instanceof ModelStringError) return err;
    throw err;
  }
  throw new Error(`"${input}" parsed`);
}

describe('model-string grammar', () => {
  it('parses a bare model, a pinned provider and an OpenRouter slug', () => {
    expect(parseModelString('sim/llama')).toEqual({ endpoints: [{ model: 'sim/llama', target: null, constraints: [] }] });
    expect(parseModelString('llama-3.3-70b@groq').endpoints[0]).toEqual({
      model: 'llama-3.3-70b',
      target: { kind: 'provider', name: 'groq' },
      constraints: [],
    });
    expect(parseModelString('moonshotai/kimi-k2:free@openrouter').endpoints[0]?.model).toBe('moonshotai/kimi-k2:free');
    expect(parseModelString('qwen2.5:7b@llama.cpp').endpoints[0]?.target).toEqual({ kind: 'provider', name: 'llama.cpp' });
  });

  it('reads every mode and its short forms', () => {
    const cases: [string, string][] = [
      ['lowest-cost', 'lowest-cost'], ['cost', 'lowest-cost'], ['c', 'lowest-cost'],
      ['ic', 'lowest-input-cost'], ['input-cost', 'lowest-input-cost'],
      ['oc', 'lowest-output-cost'], ['output-cost', 'lowest-output-cost'],
      ['highest-tks-per-sec', 'highest-tks-per-sec'], ['tks-per-sec', 'highest-tks-per-sec'], ['tps', 'highest-tks-per-sec'],
      ['ttft', 'lowest-ttft'], ['t', 'lowest-ttft'], ['itl', 'lowest-itl'], ['i', 'lowest-itl'],
      ['latency', 'lowest-latency'], ['l', 'lowest-latency'],
    ];
    for (const [word, mode] of cases) {
      expect(parseModelString(`sim/llama@${word}`).endpoints[0]?.target).toEqual({ kind: 'mode', mode });
    }
  });

  it('reads constraints with units', () => {
    const ast = parseModelString('sim/llama@lowest-cost|tps>=100|ttft<0.5s|itl<=20ms|ic<1.5|providers:sim-fast,sim-cheap|skip_providers:sim-flaky');
    expect(ast.endpoints[0]?.constraints).toEqual([
      { kind: 'threshold', metric: 'tps', op: '>=', value: 100 },
      { kind: 'threshold', metric: 'ttft', op: '<', value: 500 },
      { kind: 'threshold', metric: 'itl', op: '<=', value: 20 },
      { kind: 'threshold', metric: 'input-cost', op: '<', value: 1.5 },
      { kind: 'providers', providers: ['sim-fast', 'sim-cheap'] },
      { kind: 'skip-providers', providers: ['sim-flaky'] },
    ]);
  });

  it('reads fallbacks between providers, models and whole endpoints', () => {
    expect(parseModelString('claude-sonnet-4@anthropic->openrouter').endpoints).toEqual([
      { model: 'claude-sonnet-4', target: { kind: 'provider', name: 'anthropic' }, constraints: [] },
      { model: null, target: { kind: 'provider', name: 'openrouter' }, constraints: [] },
    ]);
    expect(parseModelString('a@x->@y')).toEqual(parseModelString('a@x->y'));
    expect(parseModelString('gpt-4o->claude-sonnet-4@anthropic').endpoints.map((e) => e.model)).toEqual(['gpt-4o', 'claude-sonnet-4']);
    const mixed = parseModelString('sim/llama@sim-flaky->sim-cheap->openai/gpt-4o-mini@tps|ttft<800->lowest-cost');
    expect(mixed.endpoints.map((e) => [e.model, e.target])).toEqual([
      ['sim/llama', { kind: 'provider', name: 'sim-flaky' }],
      [null, { kind: 'provider', name: 'sim-cheap' }],
      ['openai/gpt-4o-mini', { kind: 'mode', mode: 'highest-tks-per-sec' }],
      [null, { kind: 'mode', mode: 'lowest-cost' }],
    ]);
    // A slug on the right of a pinned side is a model, not a provider.
    expect(parseModelString('a@x->openai/gpt-4o').endpoints[1]).toEqual({ model: 'openai/gpt-4o', target: null, constraints: [] });
  });

  it('points at the offending character', () => {
    const cases: [string, number, RegExp][] = [
      ['', 0, /empty/],
      ['sim/llama @x', 9, /no spaces/],
      ['sim/llama@', 10, /missing at the end/],
      ['@sim-fast', 0, /model name/],
      ['sim/llama|tps>3', 9, /constraints follow a mode or provider/],
      ['sim/llama@tps|speed>3', 14, /unknown metric "speed"/],
      ['sim/llama@tps|tps=3', 17, /expected "<"/],
      ['sim/llama@tps|tps>=fast', 19, /expected a number/],
      ['sim/llama@tps|ttft<3kb', 20, /unknown unit "kb"/],
      ['sim/llama@tps|tps>3ms', 19, /unknown unit/],
      ['sim/llama@tps|only:a', 14, /unknown list "only"/],
      ['sim/llama@tps|providers:', 24, /provider name is missing/],
      ['a@x->', 5, /expected a model or provider after "->"/],
      ['a@x|tps>1,b', 9, /unexpected ","/],
      ['a@@x', 2, /expected a provider or mode, found "@"/],
    ];
    for (const [input, position, message] of cases) {
      const err = errorOf(input);
      expect(err.code).toBe('model_string');
      expect(err.position, input).toBe(position);
      expect(err.message).toMatch(message);
      if (input !== '') expect(err.message).toContain(`\n  ${input}\n  ${' '.repeat(position)}^`);
    }
  });

  it('prints what it parses', () => {
    expect(printModelString(parseModelString('sim/llama@c|tps>=100|ttft<0.5s'))).toBe('sim/llama@lowest-cost|tps>=100|ttft<500');
    // `b` after a pinned side is a provider too.
    expect(printModelString(parseModelString('a@x->@y->b->@z'))).toBe('a@x->y->b->z');
    expect(printModelString(parseModelString('a->@y'))).toBe('a->@y');
  });

  const name = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,8}$/).filter((s) => !s.includes('->'));
  const model = fc.oneof(name, fc.tuple(name, name).map(([a, b]) => `${a}/${b}`), fc.tuple(name, name, name).map(([a, b, c]) => `${a}/${b}:${c}`));
  const constraint: fc.Arbitrary<Constraint> = fc.oneof(
    fc.record({
      kind: fc.constant('threshold' as const),
      metric: fc.constantFrom('tps', 'ttft', 'itl', 'latency', 'cost', 'input-cost', 'output-cost' as const),
      op: fc.constantFrom('<', '<=', '>', '>=' as const),
      value: fc.oneof(fc.nat({ max: 100000 }), fc.double({ min: 0, max: 1e6, noNaN: true, noDefaultInfinity: true })),
    }),
    fc.record({ kind: fc.constant('providers' as const), providers: fc.array(name, { minLength: 1, maxLength: 3 }) }),
    fc.record({ kind: fc.constant('skip-providers' as const), providers: fc.array(name, { minLength: 1, maxLength: 3 }) }),
  );
  const endpoint: fc.Arbitrary<EndpointNode> = fc
    .record({
      model: fc.option(model, { nil: null }),
      target: fc.option(fc.oneof(name.map((n) => ({ kind: 'provider' as const, name: n })), fc.constantFrom(...MODES).map((m) => ({ kind: 'mode' as const, mode: m }))), { nil: null }),
      constraints: fc.array(constraint, { maxLength: 3 }),
    })
    .map((e) => (e.target === null ? { ...e, constraints: [] } : e))
    .filter((e) => e.model !== null || e.target !== null);
  const ast: fc.Arbitrary<ModelStringAST> = fc
    .tuple(model, fc.array(endpoint, { minLength: 1, maxLength: 4 }))
    .map(([first, rest]) => ({ endpoints: [{ ...rest[0]!, model: rest[0]!.model ?? first }, ...rest.slice(1)] }));

  it('round-trips: parse(print(parse(s))) equals parse(s)', () => {
    fc.assert(
      fc.property(ast, (generated) => {
        const s = printModelString(generated);
        const once = parseModelString(s);
        expect(parseModelString(printModelString(once))).toEqual(once);
      }),
      { numRuns: 500 },
    );
  });
});
