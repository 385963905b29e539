/**
 * fast-check arbitraries for the protocol round-trip tests (protocol-servers.test.ts and
 * protocol-bedrock-server.test.ts): texts, tool names and arguments, conversations every
 * protocol can carry, and canonical requests over them.
 */
import fc from 'fast-check';
import type { CanonicalRequest, Message } from '../../src/types.js';

// Text without lone surrogates and not empty (empty texts are dropped by protocols that cannot carry them).
export const text = fc.string({ minLength: 1, maxLength: 20, unit: 'grapheme' });
/** Words (Gemini wraps a tool result in `{ result }` after trying it as JSON: plain words read back unchanged). */
export const words = fc.stringMatching(/^[A-Za-zéøł][A-Za-zéøł ]{0,14}[A-Za-zéøł]$/);
export const name = fc.stringMatching(/^[a-z][a-z0-9_]{0,11}$/);
export const args = fc.dictionary(name, fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.boolean()), { maxKeys: 3 }).map((o) => JSON.stringify(o));

/**
 * A conversation every protocol can carry: optional system prompt, then user turns, each maybe
 * answered with tool calls (ids `${callPrefix}0`, ...) and their results.
 */
export function conversationOf(options: { callPrefix: string; result: fc.Arbitrary<string> }): fc.Arbitrary<Message[]> {
  return fc
    .tuple(
      fc.option(text, { nil: undefined }),
      fc.array(fc.record({ user: text, calls: fc.array(fc.record({ name, arguments: args, result: options.result }), { maxLength: 2 }), answer: text }), { minLength: 1, maxLength: 3 }),
    )
    .map(([system, turns]) => {
      const messages: Message[] = system === undefined ? [] : [{ role: 'system', content: system }];
      let id = 0;
      turns.forEach((turn, t) => {
        messages.push({ role: 'user', content: turn.user });
        if (turn.calls.length > 0) {
          const calls = turn.calls.map((c) => ({ id: `${options.callPrefix}${id++}`, type: 'function' as const, function: { name: c.name, arguments: c.arguments } }));
          messages.push({ role: 'assistant', content: null, tool_calls: calls });
          calls.forEach((c, i) => messages.push({ role: 'tool', tool_call_id: c.id, content: turn.calls[i]?.result ?? '' }));
        }
        if (t < turns.length - 1 || turn.calls.length === 0) messages.push({ role: 'assistant', content: turn.answer });
      });
      // End on a user or tool message, as a request does.
      if (messages[messages.length - 1]?.role === 'assistant') messages.push({ role: 'user', content: 'and?' });
      return messages;
    });
}

/** Canonical requests over `conversation`, with any of the sampling, stop and tool settings a protocol carries. */
export function canonicalRequestOf(options: {
  model: fc.Arbitrary<string>;
  conversation: fc.Arbitrary<Message[]>;
  stops: string[];
  toolChoices: ('auto' | 'required' | 'none')[];
  parameters: Record<string, unknown>;
}): fc.Arbitrary<CanonicalRequest> {
  return fc.record({
    model: options.model,
    messages: options.conversation,
    stream: fc.boolean(),
    params: fc.record(
      {
        temperature: fc.constantFrom(0, 0.5, 1),
        topP: fc.constantFrom(0.5, 1),
        maxTokens: fc.integer({ min: 1, max: 8192 }),
        stop: fc.array(fc.constantFrom(...options.stops), { minLength: 1, maxLength: 2 }),
        tools: fc.array(fc.record({ name, description: text, parameters: fc.constant(options.parameters) }), { minLength: 1, maxLength: 2 }),
        toolChoice: fc.constantFrom(...options.toolChoices),
      },
      { requiredKeys: [] },
    ),
  });
}
