/**
 * The tool loop against the simulator over real HTTP, in each protocol: sim-fast speaks
 * OpenAI Chat Completions, sim-anthropic Anthropic Messages, sim-gemini Gemini.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Chat, Call, startSimulator, tool, validateHistory, type RunningSimulator, type StreamEvent } from '../src/index.js';
import { prepareTools } from '../src/tools/tool.js';

const PROVIDERS = ['sim-fast', 'sim-anthropic', 'sim-gemini'] as const;

function weatherTool(calls: unknown[] = []) {
  return tool({
    name: 'get_weather',
    description: 'Current weather for a city',
    parameters: z.object({ city: z.string(), unit: z.enum(['celsius', 'fahrenheit']).optional() }),
    execute: (args) => {
      calls.push(args);
      return { city: args.city, temperature: 21 };
    },
  });
}

function timeTool(calls: unknown[] = []) {
  return tool({
    name: 'get_time',
    description: 'The local clock time in a timezone',
    parameters: z.object({ timezone: z.string() }),
    execute: (args) => {
      calls.push(args);
      return '14:05';
    },
  });
}

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe.each(PROVIDERS)('tool loop on %s', (provider) => {
  const model = `sim/llama@${provider}`;

  it('runs a two-step loop: call, result, answer quoting it; history is plain JSON', async () => {
    const calls: unknown[] = [];
    const chat = new Chat(model, { system: 'Be brief.' });
    const reply = await chat.send('What is the weather in Paris?', { tools: [weatherTool(calls)] });
    expect(reply).toBe('The get_weather tool returned {"city":"Paris","temperature":21}.');
    expect(calls).toEqual([{ city: 'Paris', unit: 'celsius' }]);
    const history = chat.history;
    expect(history.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant']);
    const call = history[2];
    expect(call).toMatchObject({ role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' } }] });
    const id = call?.role === 'assistant' ? call.tool_calls?.[0]?.id : undefined;
    expect(id).toMatch(/\S/);
    expect(history[3]).toEqual({ role: 'tool', tool_call_id: id, content: '{"city":"Paris","temperature":21}' });
    expect(history[4]).toEqual({ role: 'assistant', content: reply });
    // Plain JSON: survives a round trip and validates.
    expect(validateHistory(JSON.parse(JSON.stringify(history)))).toEqual(history);
    const turn = chat.lastTurn;
    expect(turn?.steps?.map((s) => s.kind)).toEqual(['initial', 'tool-results']);
    expect(turn?.steps?.[0]?.finishReason).toBe('tool-calls');
    expect(turn?.steps?.[0]?.toolResults).toEqual([history[3]]);
    expect(turn?.finishReason).toBe('stop');
    const steps = turn?.steps ?? [];
    expect(turn?.usage.totalTokens).toBe(steps.reduce((n, s) => n + s.usage.totalTokens, 0));
    expect(turn?.usage.completionTokens).toBeGreaterThan(steps[1]?.usage.completionTokens ?? 0);
    expect(chat.usage.totalTokens).toBe(turn?.usage.totalTokens);
    // The second request carried the call and its result: more prompt tokens than the first.
    expect(steps[1]?.usage.promptTokens).toBeGreaterThan(steps[0]?.usage.promptTokens ?? 0);
  });

  it('streams tool-call and tool-result events tagged with the model', async () => {
    const chat = new Chat(model);
    const events = await collect(chat.stream('Weather in Oslo please', { tools: [weatherTool()] }));
    const kinds = events.map((e) => e.type).filter((t) => t !== 'text-delta');
    expect(kinds).toEqual(['tool-call', 'tool-result', 'finish']);
    const call = events.find((e) => e.type === 'tool-call');
    expect(call).toMatchObject({ model, step: 1, name: 'get_weather', arguments: '{"city":"Oslo","unit":"celsius"}' });
    const result = events.find((e) => e.type === 'tool-result');
    expect(result).toMatchObject({ model, step: 1, name: 'get_weather', result: { city: 'Oslo', temperature: 21 }, isError: false });
    const text = events.filter((e) => e.type === 'text-delta').map((e) => (e.type === 'text-delta' ? e.text : '')).join('');
    expect(text).toBe('The get_weather tool returned {"city":"Oslo","temperature":21}.');
  });

  it('runs parallel calls concurrently and keeps both results in order', async () => {
    let started = 0;
    let release!: () => void;
    const barrier = new Promise<void>((r) => (release = r));
    const slow = <T>(value: T) => async () => {
      started++;
      if (started === 2) release();
      // Each waits for the other to start: sequential execution would never get here.
      await Promise.race([barrier, new Promise((_, reject) => setTimeout(() => reject(new Error('not concurrent')), 2000))]);
      return value;
    };
    const weather = tool({ name: 'get_weather', description: 'Current weather for a city', parameters: z.object({ city: z.string() }), execute: slow({ temperature: 19 }) });
    const time = tool({ name: 'get_time', description: 'The local clock time in a timezone', parameters: z.object({ timezone: z.string() }), execute: slow('09:30') });
    const chat = new Chat(model);
    const reply = await chat.send('Give me the weather and the time in Lisbon.', { tools: [weather, time] });
    expect(reply).toBe('The get_weather tool returned {"temperature":19}. The get_time tool returned 09:30.');
    const history = chat.history;
    expect(history.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'tool', 'assistant']);
    const assistant = history[1];
    const ids = assistant?.role === 'assistant' ? (assistant.tool_calls ?? []).map((c) => c.id) : [];
    expect(assistant?.role === 'assistant' && assistant.tool_calls?.map((c) => c.function.name)).toEqual(['get_weather', 'get_time']);
    expect(new Set(ids).size).toBe(2);
    expect(history.slice(2, 4).map((m) => (m.role === 'tool' ? m.tool_call_id : ''))).toEqual(ids);
  });

  it('sends a thrown error back as the tool result, and the model answers with it', async () => {
    const broken = tool({
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: z.object({ city: z.string() }),
      execute: () => {
        throw new Error('weather service unreachable');
      },
    });
    const chat = new Chat(model);
    const events = await collect(chat.stream('Weather in Rome?', { tools: [broken] }));
    const result = events.find((e) => e.type === 'tool-result');
    expect(result).toMatchObject({ isError: true, content: 'Error: the tool "get_weather" failed: weather service unreachable' });
    const history = chat.history;
    expect(history[2]).toMatchObject({ role: 'tool', content: 'Error: the tool "get_weather" failed: weather service unreachable' });
    expect(history[3]).toEqual({ role: 'assistant', content: 'The get_weather tool reported an error: Error: the tool "get_weather" failed: weather service unreachable' });
  });

  it('validates arguments: a wrong type goes back to the model, which calls again correctly', async () => {
    const calls: unknown[] = [];
    const chat = new Chat(model);
    const reply = await chat.send('Weather in Paris, but send bad arguments first.', { tools: [weatherTool(calls)] });
    // The function ran only with valid arguments.
    expect(calls).toEqual([{ city: 'Paris', unit: 'celsius' }]);
    const history = chat.history;
    expect(history.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant']);
    expect(history[1]).toMatchObject({ tool_calls: [{ function: { arguments: '{"city":12345,"unit":"celsius"}' } }] });
    const error = history[2]?.content as string;
    expect(error).toMatch(/^Error: invalid arguments for "get_weather": city: /);
    expect(history[4]?.content).toBe('{"city":"Paris","temperature":21}');
    expect(reply).toBe('The get_weather tool returned {"city":"Paris","temperature":21}.');
    expect(chat.lastTurn?.steps).toHaveLength(3);
  });

  it('parses arguments strictly as JSON: a Python literal is refused, not evaluated', async () => {
    if (provider === 'sim-gemini') return; // Gemini sends arguments as an object: never a literal.
    const calls: unknown[] = [];
    const chat = new Chat(model);
    await chat.send('Weather in Paris as a python literal', { tools: [weatherTool(calls)] });
    const history = chat.history;
    expect(history[1]).toMatchObject({ tool_calls: [{ function: { arguments: "{'city': 'Paris', 'unit': 'celsius'}" } }] });
    expect(history[2]?.content).toMatch(/^Error: invalid arguments for "get_weather": the arguments are not valid JSON/);
    // The function never saw the literal: it ran once, after the model corrected itself.
    expect(calls).toEqual([{ city: 'Paris', unit: 'celsius' }]);
    expect(history[3]).toMatchObject({ tool_calls: [{ function: { arguments: '{"city":"Paris","unit":"celsius"}' } }] });
  });

  it('stops at maxSteps and asks for a final answer without tools; no internal prompt anywhere', async () => {
    const calls: unknown[] = [];
    const chat = new Chat(model);
    const prompt = 'Weather in Paris, and keep calling the tool.';
    const reply = await chat.send(prompt, { tools: [weatherTool(calls)], maxSteps: 2 });
    expect(calls).toHaveLength(2);
    expect(reply).toBe('The get_weather tool returned {"city":"Paris","temperature":21}.');
    const history = chat.history;
    expect(history.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant']);
    // The only user message is the user's own.
    expect(history.filter((m) => m.role === 'user')).toEqual([{ role: 'user', content: prompt }]);
    expect(history[5]).toEqual({ role: 'assistant', content: reply });
    expect(chat.lastTurn?.steps?.map((s) => s.kind)).toEqual(['initial', 'tool-results', 'final-answer']);
    expect(chat.lastTurn?.steps?.[2]?.message.tool_calls).toBeUndefined();
  });

  it('ends the turn with the calls when a tool has no function (the caller answers them)', async () => {
    const chat = new Chat(model);
    const reply = await chat.send('Weather in Paris?', { tools: [{ name: 'get_weather', description: 'Current weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }] });
    expect(reply).toBe('');
    const last = chat.history[1];
    expect(last).toMatchObject({ role: 'assistant', content: null, tool_calls: [{ function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] });
    expect(chat.lastTurn?.finishReason).toBe('tool-calls');
  });

  it('takes a plain JSON Schema with nested objects and arrays (validated by ajv)', async () => {
    const seen: unknown[] = [];
    const booking = tool({
      name: 'book_trip',
      description: 'Book a trip itinerary',
      parameters: {
        type: 'object',
        properties: {
          traveller: { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 18 } }, required: ['name', 'age'] },
          stops: { type: 'array', minItems: 2, items: { type: 'object', properties: { city: { type: 'string' }, nights: { type: 'integer', minimum: 1 } }, required: ['city', 'nights'] } },
          class: { enum: ['economy', 'business'] },
        },
        required: ['traveller', 'stops', 'class'],
      },
      execute: (args) => {
        seen.push(args);
        return 'booked';
      },
    });
    const chat = new Chat(model);
    const reply = await chat.send('Please book a trip to Vienna', { tools: [booking] });
    expect(seen).toEqual([{ traveller: { name: 'Vienna', age: 18 }, stops: [{ city: 'Vienna', nights: 1 }, { city: 'Vienna', nights: 1 }], class: 'economy' }]);
    expect(reply).toBe('The book_trip tool returned booked.');
  });
});

describe('tool loop across models and protocols', () => {
  it('keeps nested zod types in the wire schema', () => {
    const [prepared] = prepareTools([
      tool({
        name: 'plan',
        parameters: z.object({ legs: z.array(z.object({ from: z.string(), to: z.string(), at: z.number().int() })), notes: z.string().optional() }),
        execute: () => 'ok',
      }),
    ]);
    expect(prepared?.definition.parameters).toEqual({
      type: 'object',
      properties: {
        legs: {
          type: 'array',
          items: {
            type: 'object',
            properties: { from: { type: 'string' }, to: { type: 'string' }, at: { type: 'integer', minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER } },
            required: ['from', 'to', 'at'],
            additionalProperties: false,
          },
        },
        notes: { type: 'string' },
      },
      required: ['legs'],
      additionalProperties: false,
    });
  });

  it('continues after a model switch: a loop on Anthropic replays to Gemini and OpenAI', async () => {
    const chat = new Chat('sim/llama@sim-anthropic');
    await chat.send('What is the weather in Paris?', { tools: [weatherTool()] });
    chat.model = 'sim/llama@sim-gemini';
    const again = await chat.send('And the weather in Berlin?', { tools: [weatherTool()] });
    expect(again).toBe('The get_weather tool returned {"city":"Berlin","temperature":21}.');
    chat.model = 'sim/llama@sim-fast';
    const plain = await chat.send('Thanks, what is my summary?');
    expect(plain.length).toBeGreaterThan(0);
    expect(chat.history.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'user', 'assistant', 'tool', 'assistant', 'user', 'assistant']);
    expect(chat.turns.map((t) => t.provider)).toEqual(['sim-anthropic', 'sim-gemini', 'sim-fast']);
  });

  it('runs its own loop per model in a multi-model chat', async () => {
    const models = PROVIDERS.map((p) => `sim/llama@${p}`);
    const chat = new Chat(models);
    const events = await collect(chat.stream('Weather in Madrid?', { tools: [weatherTool()] }));
    const replies = await chat.history;
    for (const m of models) {
      expect(replies[m]?.map((x) => x.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
      expect(replies[m]?.[3]).toEqual({ role: 'assistant', content: 'The get_weather tool returned {"city":"Madrid","temperature":21}.' });
      expect(events.filter((e) => e.type === 'tool-call' && e.model === m)).toHaveLength(1);
      expect(events.filter((e) => e.type === 'tool-result' && e.model === m)).toHaveLength(1);
      expect(chat.lastTurn[m]?.steps).toHaveLength(2);
    }
  });

  it('Call.run runs the loop too', async () => {
    const call = new Call('sim/llama@sim-gemini');
    expect(await call.run('Time in Tokyo?', { tools: [timeTool()] })).toBe('The get_time tool returned 14:05.');
    expect(call.lastResults['sim/llama@sim-gemini']?.messages).toHaveLength(3);
  });

  describe('atomic turns', () => {
    let sim: RunningSimulator;
    beforeAll(async () => {
      sim = await startSimulator({ timeScale: 0 });
    });
    afterAll(() => sim.close());

    it.each(PROVIDERS)('a failure mid-loop on %s leaves history and usage as they were', async (provider) => {
      sim.resetProfiles();
      const env = { SWITCHBOARD_SIM_URL: sim.url };
      const chat = new Chat(`sim/llama@${provider}`, { env, routing: { retry: { maxRetries: 0 } } });
      await chat.send('Hello there');
      const before = { history: chat.history, usage: chat.usage, turns: chat.turns.length };
      const failing = tool({
        name: 'get_weather',
        description: 'Current weather for a city',
        parameters: z.object({ city: z.string() }),
        execute: () => {
          // The next request (with the result) fails.
          sim.setProviderProfile(provider, { failRate: 1 });
          return 'sunny';
        },
      });
      await expect(chat.send('Weather in Paris?', { tools: [failing] })).rejects.toThrow();
      expect(chat.history).toEqual(before.history);
      expect(chat.usage).toEqual(before.usage);
      expect(chat.turns).toHaveLength(before.turns);
      sim.resetProfiles();
    });
  });
});
