/**
 * Local servers (llama.cpp, vLLM, LM Studio, Ollama) as they answer: each publishes its
 * context length in its own place, refuses an overlong prompt in its own shape, and cuts a
 * tool call short at the output limit. Stand-ins count a word as a token.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Chat, ContextLengthError, OutputLimitError, tool, type Message } from '../src/index.js';
import { openaiStreamChunk } from './helpers/fixtures.js';
import { sendJSON, sse, startStandIn, type RecordedRequest, type StandIn } from './helpers/stand-in.js';

type Server = 'llama.cpp' | 'vllm' | 'lmstudio' | 'ollama';
const MODEL = 'qwen3-8b';

/** What each server publishes about its context, at its own path. */
function metadata(server: Server, nCtx: number, req: RecordedRequest): unknown {
  if (server === 'llama.cpp' && req.method === 'GET' && req.url === '/props') {
    return { default_generation_settings: { n_ctx: nCtx, params: { n_predict: -1 } }, total_slots: 1, model_path: '/models/qwen3-8b.gguf' };
  }
  if (server === 'vllm' && req.method === 'GET' && req.url === '/v1/models') {
    return { object: 'list', data: [{ id: MODEL, object: 'model', owned_by: 'vllm', max_model_len: nCtx }] };
  }
  if (server === 'lmstudio' && req.method === 'GET' && req.url === `/api/v0/models/${MODEL}`) {
    return { id: MODEL, object: 'model', type: 'llm', state: 'loaded', max_context_length: 32768, loaded_context_length: nCtx };
  }
  if (server === 'ollama' && req.method === 'POST' && req.url === '/api/show') {
    return { parameters: `stop "<|im_end|>"\nnum_ctx ${nCtx}`, model_info: { 'general.architecture': 'qwen3', 'qwen3.context_length': 40960 } };
  }
  return undefined;
}

function words(messages: { content?: unknown }[]): number {
  return messages.reduce((n, m) => n + (typeof m.content === 'string' ? m.content.split(/\s+/).filter(Boolean).length : 0), 0);
}

let server: StandIn | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function startLocal(kind: Server, nCtx: number): Promise<StandIn> {
  server = await startStandIn((req, res: ServerResponse) => {
    const meta = metadata(kind, nCtx, req);
    if (meta !== undefined) return sendJSON(res, 200, meta);
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return sendJSON(res, 404, { error: { message: 'not found' } });
    const body = JSON.parse(req.body) as { messages: { content?: unknown }[]; tools?: unknown[] };
    const prompt = words(body.messages);
    if (prompt > nCtx) {
      return sendJSON(res, 400, { error: { code: 400, message: `request (${prompt} tokens) exceeds the available context size (${nCtx} tokens), try increasing it`, type: 'exceed_context_size_error', n_prompt_tokens: prompt, n_ctx: nCtx } });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (body.tools) {
      // The output limit falls in the middle of the tool call's arguments.
      res.end(
        sse([
          { data: openaiStreamChunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Pa' } }] }) },
          { data: openaiStreamChunk({}, 'length') },
          { data: { id: 'x', choices: [], usage: { prompt_tokens: prompt, completion_tokens: 8, total_tokens: prompt + 8 } } },
          { data: '[DONE]' },
        ]),
      );
      return;
    }
    res.end(sse([{ data: openaiStreamChunk({ content: `heard ${body.messages.length} messages` }, 'stop') }, { data: '[DONE]' }]));
  });
  return server;
}

function localChat(kind: Server, url: string, fitContext?: 'drop-oldest'): Chat<string> {
  const variable = `${kind.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_BASE_URL`;
  return new Chat(`${kind}/${MODEL}`, { env: { [variable]: `${url}/v1`, SWITCHBOARD_METRICS: 'memory' }, ...(fitContext ? { fitContext } : {}), routing: { retry: { maxRetries: 0 } } });
}

/** Three old exchanges of 1,000 words each, then the new question. */
const longAgo: Message[] = Array.from({ length: 3 }, (_, i): Message[] => [
  { role: 'user', content: `old question ${i} ${'word '.repeat(500)}` },
  { role: 'assistant', content: `old answer ${i} ${'word '.repeat(500)}` },
]).flat();

describe.each<Server>(['llama.cpp', 'vllm', 'lmstudio', 'ollama'])('%s', (kind) => {
  it("fitContext: 'drop-oldest' uses the context length the server publishes", async () => {
    const local = await startLocal(kind, 2500);
    const chat = localChat(kind, local.url, 'drop-oldest');
    chat.history = longAgo;
    expect(await chat.send('What now?')).toMatch(/^heard \d messages$/);
    const sent = local.requests.filter((r) => r.url === '/v1/chat/completions').at(-1);
    const messages = (JSON.parse(sent!.body) as { messages: unknown[] }).messages;
    expect(messages.length).toBeLessThan(longAgo.length + 1);
    expect(messages.at(-1)).toEqual({ role: 'user', content: 'What now?' });
    // The whole history stays in the chat.
    expect(chat.history).toHaveLength(longAgo.length + 2);
  });

  it('without fitContext, an overlong prompt is refused before sending, with both numbers', async () => {
    const local = await startLocal(kind, 2500);
    const chat = localChat(kind, local.url);
    chat.history = longAgo;
    const err = await chat.send('What now?').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContextLengthError);
    expect((err as ContextLengthError).contextLength).toBe(2500);
    expect(local.requests.filter((r) => r.url === '/v1/chat/completions')).toHaveLength(0);
  });
});

describe('llama.cpp', () => {
  it('its exceed_context_size_error is a ContextLengthError when no length was published for the model', async () => {
    const local = await startLocal('vllm', 100);
    // The models list does not name "other-model", so the prompt is sent and the server refuses it.
    const chat = new Chat('other-model', { baseURL: `${local.url}/v1`, routing: { retry: { maxRetries: 0 } } });
    chat.history = longAgo;
    const err = await chat.send('What now?').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContextLengthError);
    expect(err).toMatchObject({ code: 'context_length', provider: 'custom', contextLength: 100, requiredTokens: words([...longAgo, { content: 'What now?' }]) });
  });

  it("with drop-oldest, the n_ctx of its exceed_context_size_error fits the prompt and it is sent once more", async () => {
    const local = await startLocal('vllm', 2500);
    // "other-model" is not in the models list: nothing tells its length until the server refuses.
    const chat = new Chat('other-model', { baseURL: `${local.url}/v1`, fitContext: 'drop-oldest', routing: { retry: { maxRetries: 0 } } });
    chat.history = longAgo;
    expect(await chat.send('What now?')).toMatch(/^heard \d messages$/);
    const sent = local.requests.filter((r) => r.url === '/v1/chat/completions');
    expect(sent).toHaveLength(2);
    expect((JSON.parse(sent[1]!.body) as { messages: unknown[] }).messages.length).toBeLessThan(longAgo.length + 1);
    // The next turn is fitted before it is sent.
    await chat.send('And then?');
    expect(local.requests.filter((r) => r.url === '/v1/chat/completions')).toHaveLength(3);
  });

  it('a tool call cut off by finish_reason length is not run, not kept and not replayed', async () => {
    const local = await startLocal('llama.cpp', 8000);
    let runs = 0;
    const weather = tool({ name: 'get_weather', parameters: z.object({ city: z.string() }), execute: () => ++runs });
    const chat = localChat('llama.cpp', local.url);
    const err = await chat.send('Weather in Paris?', { tools: [weather], maxTokens: 8 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutputLimitError);
    expect(err).toMatchObject({ code: 'output_limit', tools: ['get_weather'] });
    expect((err as Error).message).toMatch(/Raise maxTokens/);
    expect(runs).toBe(0);
    expect(chat.history).toEqual([]);
    expect(local.requests.filter((r) => r.url === '/v1/chat/completions')).toHaveLength(1);
  });
});
