/** Model strings that name what every JavaScript object inherits, and thresholds too large to print. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Call, Chat, ModelStringError } from '../src/index.js';
import { parseModelString, printModelString } from '../src/routing/grammar.js';

describe('model strings naming inherited properties', () => {
  it.each(['sim/__proto__', 'sim/constructor', 'sim/toString', 'sim/hasOwnProperty', 'sim/__proto__@sim-fast', 'sim/valueOf:online'])(
    '%s is refused when the chat is made, as a ModelStringError listing the simulated models',
    (model) => {
      expect(() => new Chat(model)).toThrow(ModelStringError);
      expect(() => new Call(model)).toThrow(/the simulator has no model ".*"; it serves sim\/llama, sim\/mini/);
    },
  );

  it.each(['constructor/gpt-4o', '__proto__/x', 'toString/y'])('%s is an ordinary OpenRouter model id, not a vendor', (model) => {
    const chat = new Chat(model, { env: { OPENROUTER_API_KEY: 'sk-or-test-0123456789' } });
    expect(chat.model).toBe(model);
  });
});

describe('thresholds', () => {
  it('refuses a number too large to be finite, pointing at it', () => {
    expect(() => parseModelString('sim/llama@tps|tps>1e400')).toThrow(ModelStringError);
    expect(() => parseModelString('sim/llama@tps|ttft<1e306s')).toThrow(/1e306s is too large a number/);
  });

  it('prints every finite threshold in a form it parses back', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: Number.MAX_VALUE, noNaN: true, noDefaultInfinity: true }), (value) => {
        const ast = parseModelString('sim/llama@tps|tps>1');
        const first = ast.endpoints[0]!;
        first.constraints = [{ kind: 'threshold', metric: 'tps', op: '>', value }];
        const printed = printModelString(ast);
        expect(parseModelString(printed)).toEqual(ast);
      }),
    );
  });

  it('refuses to print a non-finite threshold', () => {
    const ast = parseModelString('sim/llama@tps|tps>1');
    ast.endpoints[0]!.constraints = [{ kind: 'threshold', metric: 'tps', op: '>', value: Infinity }];
    expect(() => printModelString(ast)).toThrow(ModelStringError);
  });
});
