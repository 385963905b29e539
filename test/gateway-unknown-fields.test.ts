/**
 * Fields the real providers refuse are refused by the gateway too, in the caller's own error
 * shape and before anything goes upstream: OpenAI's `Unrecognized request argument supplied`
 * (Chat Completions) and `Unknown parameter` (Responses), Anthropic's `Extra inputs are not
 * permitted`, Google's `Unknown name "foo": Cannot find field.`, at the top level and inside
 * messages, content parts and tools. State the gateway does not keep (`previous_response_id`,
 * `conversation`, a continued Anthropic message thread) is refused with what to send instead.
 * The simulator serves through the same server halves and refuses the same way.
 */
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { MASTER_KEY, startGateway, type RunningGateway } from './helpers/gateway.js';
import { startStandIn, type StandIn } from './helpers/openai-standin.js';

let upstream: StandIn;
let gw: RunningGateway;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  upstream = await startStandIn();
  gw = await startGateway(
    ['providers:', '  - name: local', '    protocol: openai', '    base_url: ${UPSTREAM_URL}/v1', '    api_key: sk-upstream-1', 'aliases:', '  house: echo-model@local'].join('\n'),
    { env: { UPSTREAM_URL: upstream.url } },
  );
  openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: MASTER_KEY, maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: gw.url, apiKey: MASTER_KEY, maxRetries: 0 });
});
afterAll(async () => {
  await gw.close();
  await upstream.close();
});

/** The error an SDK call throws (fails the test when the call succeeds). */
async function refusal(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (err) {
    return err;
  }
  throw new Error('the request was accepted');
}

// The SDKs send fields their types do not list as they are; the casts only quiet the types.
type Loose = Record<string, unknown>;

describe('OpenAI Chat Completions', () => {
  it('refuses an unknown top-level field as OpenAI does, through the openai SDK, without calling upstream', async () => {
    const before = upstream.requests.length;
    const err = await refusal(openai.chat.completions.create({ model: 'house', messages: [{ role: 'user', content: 'hi' }], foo: 1 } as Loose as never));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const e = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.status).toBe(400);
    expect(e.type).toBe('invalid_request_error');
    expect(e.message).toMatch(/Unrecognized request argument supplied: foo/);
    expect(upstream.requests.length).toBe(before);
  });

  it('refuses unknown properties inside a message, a content part and a tool, naming where', async () => {
    const cases: [Loose, string][] = [
      [{ messages: [{ role: 'user', content: 'hi', id: 'm1' }] }, "Additional properties are not allowed ('id' was unexpected) - 'messages.0'"],
      [{ messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', lang: 'en' }] }] }, "('lang' was unexpected) - 'messages.0.content.0'"],
      [{ messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function', function: { name: 'f', parameters: {}, examples: [] } }] }, "('examples' was unexpected) - 'tools.0.function'"],
    ];
    for (const [body, message] of cases) {
      const err = await refusal(openai.chat.completions.create({ model: 'house', ...body } as never));
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as Error).message).toContain(message);
    }
  });

  it('accepts known fields it only ignores, and refuses known ones it cannot honour', async () => {
    const ok = await openai.chat.completions.create({ model: 'house', messages: [{ role: 'user', content: 'hi' }], user: 'u1', frequency_penalty: 0.5, metadata: { a: 'b' }, store: false, parallel_tool_calls: true });
    expect(ok.choices[0]?.message.content).toMatch(/heard: hi/);
    const err = await refusal(openai.chat.completions.create({ model: 'house', messages: [{ role: 'user', content: 'hi' }], logprobs: true }));
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('logprobs');
  });
});

describe('OpenAI Responses', () => {
  it('refuses unknown parameters at the top and inside input items, with code unknown_parameter', async () => {
    const top = (await refusal(openai.responses.create({ model: 'house', input: 'hi', foo: 1 } as Loose as never))) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(top).toBeInstanceOf(OpenAI.BadRequestError);
    expect([top.message, top.code, top.param]).toEqual(["400 Unknown parameter: 'foo'.", 'unknown_parameter', 'foo']);
    const nested = (await refusal(openai.responses.create({ model: 'house', input: [{ type: 'message', role: 'user', content: 'hi', metadata: {} }] } as Loose as never))) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(nested.param).toBe('input[0].metadata');
  });

  it('refuses previous_response_id and conversation, saying to send the whole input', async () => {
    const before = upstream.requests.length;
    for (const extra of [{ previous_response_id: 'resp_abc' }, { conversation: 'conv_abc' }]) {
      const err = (await refusal(openai.responses.create({ model: 'house', input: 'hi', ...extra }))) as InstanceType<typeof OpenAI.BadRequestError>;
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err.param).toBe(Object.keys(extra)[0]);
      expect(err.message).toMatch(/send the whole conversation in input/);
    }
    expect(upstream.requests.length).toBe(before);
  });

  it('refuses an item_reference in input rather than drop the turn it names', async () => {
    const before = upstream.requests.length;
    const input = [{ type: 'message', role: 'user', content: 'hi' }, { type: 'item_reference', id: 'msg_abc' }];
    const err = (await refusal(openai.responses.create({ model: 'house', input } as Loose as never))) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.param).toBe('input[1]');
    expect(err.message).toMatch(/input\[1\] \(an item_reference\) needs responses stored on the server/);
    expect(upstream.requests.length).toBe(before);
  });
});

describe('Anthropic Messages', () => {
  it('refuses extra inputs at the top, in a message, in a content block and in a tool, in Anthropic\'s words', async () => {
    const base = { model: 'house', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] };
    const cases: [Loose, string][] = [
      [{ ...base, foo: 1 }, 'foo: Extra inputs are not permitted'],
      [{ ...base, messages: [{ role: 'user', content: 'hi', name: 'x' }] }, 'messages.0.name: Extra inputs are not permitted'],
      [{ ...base, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', foo: 1 }] }] }, 'messages.0.content.0.text.foo: Extra inputs are not permitted'],
      [{ ...base, tools: [{ name: 't', input_schema: { type: 'object' }, examples: [] }] }, 'tools.0.custom.examples: Extra inputs are not permitted'],
    ];
    for (const [body, message] of cases) {
      const err = await refusal(anthropic.messages.create(body as never));
      expect(err).toBeInstanceOf(Anthropic.BadRequestError);
      const e = err as InstanceType<typeof Anthropic.BadRequestError>;
      expect(e.error).toEqual({ type: 'error', error: { type: 'invalid_request_error', message } });
    }
  });

  it('count_tokens refuses generation settings, as Anthropic\'s does', async () => {
    const err = await refusal(anthropic.messages.countTokens({ model: 'house', messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 } as never));
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect((err as Error).message).toMatch(/max_tokens: Extra inputs are not permitted/);
    const ok = await anthropic.messages.countTokens({ model: 'house', messages: [{ role: 'user', content: 'hi' }] });
    expect(ok.input_tokens).toBeGreaterThan(0);
  });

  it('answers a continued message thread thread_not_found, so the SDK replays the whole history', async () => {
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': MASTER_KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'house', max_tokens: 50, messages: [{ role: 'user', content: 'and then?' }], thread: { type: 'continue', previous_message_id: 'msg_1' } }),
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error', details: { error_code: 'thread_not_found' } } });
    const before = upstream.requests.length;
    const created = await anthropic.messages.create({ model: 'house', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }], thread: { type: 'create' } } as Loose as never);
    expect(JSON.stringify(created)).toMatch(/heard: hi/);
    expect(upstream.requests.length).toBe(before + 1);
  });
});

describe('Gemini generateContent', () => {
  it('refuses unknown names through @google/genai (extraBody) and raw requests, with the field violation', async () => {
    const genai = new GoogleGenAI({ apiKey: MASTER_KEY, httpOptions: { baseUrl: gw.url } });
    const err = await refusal(genai.models.generateContent({ model: 'house', contents: 'hi', config: { httpOptions: { extraBody: { foo: 1 } } } }));
    expect((err as { status?: number }).status).toBe(400);
    expect((err as Error).message).toContain('Invalid JSON payload received. Unknown name \\"foo\\": Cannot find field.');
    const nested = await fetch(`${gw.url}/v1beta/models/house:streamGenerateContent?alt=sse`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-goog-api-key': MASTER_KEY },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi', lang: 'en' }] }] }),
    });
    expect(nested.status).toBe(400);
    const message = `Invalid JSON payload received. Unknown name "lang" at 'contents[0].parts[0]': Cannot find field.`;
    expect(await nested.json()).toEqual({
      error: { code: 400, message, status: 'INVALID_ARGUMENT', details: [{ '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field: 'contents[0].parts[0]', description: message }] }] },
    });
  });

  it('takes fields in camelCase and snake_case alike, and refuses an unknown generation_config name', async () => {
    const send = (body: unknown, action = 'generateContent'): Promise<Response> =>
      fetch(`${gw.url}/v1beta/models/house:${action}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': MASTER_KEY }, body: JSON.stringify(body) });
    expect((await send({ contents: [{ parts: [{ text: 'hi' }] }], generation_config: { max_output_tokens: 20 }, safetySettings: [] })).status).toBe(200);
    const bad = await send({ contents: [{ parts: [{ text: 'hi' }] }], generationConfig: { maxTokens: 20 } });
    expect(((await bad.json()) as { error: { message: string } }).error.message).toBe(`Invalid JSON payload received. Unknown name "maxTokens" at 'generation_config': Cannot find field.`);
    expect((await send({ contents: [{ parts: [{ text: 'hi' }] }], tools: [] }, 'countTokens')).status).toBe(400);
  });
});

describe('fields of the wrong JSON type', () => {
  /** POST a raw body (the SDKs' types would not let these through) and read the error message. */
  async function refusedWith(path: string, headers: Record<string, string>, body: unknown, read: (json: never) => string): Promise<string> {
    const before = upstream.requests.length;
    const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const json = (await res.json()) as never;
    expect(res.status, JSON.stringify(json)).toBe(400);
    expect(upstream.requests.length).toBe(before);
    return read(json);
  }
  const openaiMessage = (json: { error: { message: string } }): string => json.error.message;
  const anthropicMessage = (json: { error: { message: string } }): string => json.error.message;
  const user = [{ role: 'user', content: 'hi' }];

  it('Chat Completions refuses them with OpenAI\'s "Invalid type" message, null still reading as absent', async () => {
    const send = (extra: Loose): Promise<string> => refusedWith('/v1/chat/completions', { authorization: `Bearer ${MASTER_KEY}` }, { model: 'house', messages: user, ...extra }, openaiMessage);
    expect(await send({ user: 42 })).toBe("Invalid type for 'user': expected a string, but got a number instead.");
    expect(await send({ tool_choice: 7 })).toBe("Invalid type for 'tool_choice': expected a string or an object, but got a number instead.");
    expect(await send({ parallel_tool_calls: 'yes' })).toBe("Invalid type for 'parallel_tool_calls': expected a boolean, but got a string instead.");
    expect(await send({ tools: { type: 'function' } })).toBe("Invalid type for 'tools': expected an array, but got an object instead.");
    const ok = await openai.chat.completions.create({ model: 'house', messages: [{ role: 'user', content: 'hi' }], user: null, tool_choice: null } as Loose as never);
    expect(JSON.stringify(ok)).toMatch(/heard: hi/);
  });

  it('Responses refuses a non-string instructions, a non-object text.format and a tool_choice it does not know', async () => {
    const send = (extra: Loose): Promise<string> => refusedWith('/v1/responses', { authorization: `Bearer ${MASTER_KEY}` }, { model: 'house', input: 'hi', ...extra }, openaiMessage);
    expect(await send({ instructions: 5 })).toBe("Invalid type for 'instructions': expected a string, but got a number instead.");
    expect(await send({ text: { format: 'json' } })).toBe("Invalid type for 'text.format': expected an object, but got a string instead.");
    expect(await send({ text: { format: { type: 'xml' } } })).toMatch(/^Invalid value: "xml"\. Supported values are: 'text', 'json_schema' and 'json_object'\.$/);
    expect(await send({ tool_choice: 'any' })).toBe("Invalid value: 'any'. Supported values are: 'none', 'auto', and 'required'.");
    expect(await send({ tool_choice: { type: 'allowed_tools', mode: 'auto', tools: [] } })).toMatch(/tool_choice of type "allowed_tools" is not supported by this server/);
    const ok = await openai.responses.create({ model: 'house', input: 'hi', instructions: 'Be brief.', text: { format: { type: 'text' } } });
    expect(ok.output_text).toMatch(/heard: hi/);
  });

  it('Anthropic refuses a string tool_choice, a non-object metadata and an unknown thinking type, in its validator\'s words', async () => {
    const headers = { 'x-api-key': MASTER_KEY, 'anthropic-version': '2023-06-01' };
    const send = (extra: Loose): Promise<string> => refusedWith('/v1/messages', headers, { model: 'house', max_tokens: 50, messages: user, ...extra }, anthropicMessage);
    expect(await send({ tool_choice: 'any' })).toBe('tool_choice: Input should be a valid dictionary or object to extract fields from');
    expect(await send({ metadata: 'team-a' })).toBe('metadata: Input should be a valid dictionary or object to extract fields from');
    expect(await send({ top_k: '5' })).toBe('top_k: Input should be a valid number');
    expect(await send({ system: 5 })).toBe('system: Input should be a valid string');
    expect(await send({ thinking: { type: 'enbled', budget_tokens: 2048 } })).toMatch(/^thinking: Input tag "enbled" found using 'type' does not match any of the expected tags/);
    const ok = await anthropic.messages.create({ model: 'house', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }], metadata: { user_id: 'u1' }, thinking: { type: 'disabled' } });
    expect(JSON.stringify(ok.content)).toMatch(/heard: hi/);
  });

  it('Gemini refuses a string systemInstruction, junk safetySettings and an unknown calling mode, as Google\'s parser does', async () => {
    const send = (body: Loose): Promise<string> =>
      refusedWith('/v1beta/models/house:generateContent', { 'x-goog-api-key': MASTER_KEY }, { contents: [{ role: 'user', parts: [{ text: 'hi' }] }], ...body }, (json: { error: { message: string } }) => json.error.message);
    expect(await send({ systemInstruction: 'Be brief.' })).toBe(
      `Invalid JSON payload received. Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), "Be brief."`,
    );
    expect(await send({ system_instruction: { parts: 'Be brief.' } })).toBe(`Invalid JSON payload received. Invalid value at 'system_instruction.parts' (a list), "Be brief."`);
    expect(await send({ generationConfig: [] })).toBe('Invalid JSON payload received. Unknown name "generationConfig": Proto field is not repeating, cannot start list.');
    expect(await send({ safetySettings: 'off' })).toBe(`Invalid JSON payload received. Invalid value at 'safety_settings' (a list), "off"`);
    expect(await send({ safetySettings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_NONE', level: 1 }] })).toBe(
      `Invalid JSON payload received. Unknown name "level" at 'safety_settings[0]': Cannot find field.`,
    );
    expect(await send({ safetySettings: [{ category: 3 }] })).toBe(`Invalid JSON payload received. Invalid value at 'safety_settings[0].category' (TYPE_STRING), 3`);
    expect(await send({ toolConfig: { functionCallingConfig: { mode: 'SOMETIMES' } } })).toMatch(/Invalid value at 'tool_config\.function_calling_config\.mode'/);
    const genai = new GoogleGenAI({ apiKey: MASTER_KEY, httpOptions: { baseUrl: gw.url } });
    const ok = await genai.models.generateContent({
      model: 'house',
      contents: 'hi',
      config: { systemInstruction: 'Be brief.', safetySettings: [{ category: 'HARM_CATEGORY_HARASSMENT' as never, threshold: 'BLOCK_NONE' as never }] },
    });
    expect(ok.text).toMatch(/heard: hi/);
  });
});

describe('the simulator', () => {
  let sim: RunningSimulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });

  it('refuses unknown fields like the providers it plays, and still resolves previous_response_id', async () => {
    const client = new OpenAI({ baseURL: `${sim.url}/sim-fast/v1`, apiKey: 'sk-sim', maxRetries: 0 });
    const err = await refusal(client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'hi' }], foo: 1 } as Loose as never));
    expect((err as Error).message).toMatch(/Unrecognized request argument supplied: foo/);
    const first = await client.responses.create({ model: 'llama', input: 'hi' });
    const second = await client.responses.create({ model: 'llama', input: 'again', previous_response_id: first.id });
    expect(second.status).toBe('completed');
    const a = new Anthropic({ baseURL: `${sim.url}/sim-anthropic`, apiKey: 'sk-sim', maxRetries: 0 });
    expect(await refusal(a.messages.create({ model: 'llama', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }], foo: 1 } as never))).toBeInstanceOf(Anthropic.BadRequestError);
  });
});
