/** Streams written as each provider documents them, with hand-written numbers. */
import { sse } from './stand-in.js';

const openaiChunk = (delta: Record<string, unknown>, finish: string | null = null): Record<string, unknown> => ({
  id: 'gen-1',
  object: 'chat.completion.chunk',
  model: 'openai/gpt-4o-mini',
  provider: 'OpenAI',
  choices: [{ index: 0, delta, finish_reason: finish }],
});

/** As OpenRouter sends it: keep-alive comments, CRLF, tool-call fragments, usage last with empty choices. */
export const OPENAI_STREAM = sse(
  [
    ': OPENROUTER PROCESSING',
    { data: openaiChunk({ role: 'assistant', content: 'Grüß ' }) },
    ': OPENROUTER PROCESSING',
    { data: openaiChunk({ content: 'dich, 世界 🌍!' }) },
    { data: openaiChunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"ci' } }] }) },
    { data: openaiChunk({ tool_calls: [{ index: 0, function: { arguments: 'ty": "Zür' } }] }) },
    { data: openaiChunk({ tool_calls: [{ index: 0, function: { arguments: 'ich"}' } }] }) },
    { data: openaiChunk({}, 'tool_calls') },
    {
      data: {
        id: 'gen-1',
        model: 'openai/gpt-4o-mini',
        choices: [],
        usage: { prompt_tokens: 120, completion_tokens: 31, total_tokens: 151, cost: 0.000042, prompt_tokens_details: { cached_tokens: 100 }, completion_tokens_details: { reasoning_tokens: 8 } },
      },
    },
    { data: '[DONE]' },
  ],
  '\r\n',
);

export const openaiStreamChunk = openaiChunk;

/** Anthropic Messages stream: thinking with a signature, text, a tool call in JSON fragments, cache usage. */
export const ANTHROPIC_STREAM = sse([
  {
    event: 'message_start',
    data: {
      type: 'message_start',
      message: {
        id: 'msg_01',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5-20250929',
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 25, cache_creation_input_tokens: 1000, cache_read_input_tokens: 3000, output_tokens: 1 },
      },
    },
  },
  { event: 'ping', data: { type: 'ping' } },
  { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } } },
  { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Das Wetter… prüfen.' } } },
  { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA' } } },
  { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
  { event: 'content_block_start', data: { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } } },
  { event: 'content_block_delta', data: { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Grüße aus ' } } },
  { event: 'content_block_delta', data: { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: '東京 🗼' } } },
  { event: 'content_block_stop', data: { type: 'content_block_stop', index: 1 } },
  { event: 'content_block_start', data: { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: {} } } },
  { event: 'content_block_delta', data: { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '' } } },
  { event: 'content_block_delta', data: { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"city": "Zü' } } },
  { event: 'content_block_delta', data: { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: 'rich", "days": 3}' } } },
  { event: 'content_block_stop', data: { type: 'content_block_stop', index: 2 } },
  { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 89 } } },
  { event: 'message_stop', data: { type: 'message_stop' } },
]);

const geminiChunk = (parts: Record<string, unknown>[], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  candidates: [{ content: { parts, role: 'model' }, index: 0, ...extra }],
  usageMetadata: { promptTokenCount: 120, totalTokenCount: 120 },
  modelVersion: 'gemini-2.5-flash',
  responseId: 'resp-1',
});

/** Gemini SSE (alt=sse): thoughts, text, a function call; no end marker, finishReason in the last chunk. */
export const GEMINI_STREAM = sse(
  [
    { data: geminiChunk([{ text: 'Nachdenken über Zürich…', thought: true }]) },
    { data: geminiChunk([{ text: 'Ça va? ' }]) },
    { data: geminiChunk([{ text: 'Très bien 👍' }]) },
    {
      data: {
        ...geminiChunk([{ functionCall: { name: 'get_weather', args: { city: 'Zürich', days: 3 } } }], { finishReason: 'STOP' }),
        usageMetadata: { promptTokenCount: 120, candidatesTokenCount: 30, thoughtsTokenCount: 50, cachedContentTokenCount: 100, totalTokenCount: 200 },
      },
    },
  ],
  '\r\n',
);

export const geminiStreamChunk = geminiChunk;

/**
 * An OpenAI Responses API stream as the API reference documents its events: a reasoning
 * summary, text with a multi-byte character, a function call streamed in pieces, and
 * response.completed with usage.
 */
const RESPONSE_BASE = { id: 'resp_01', object: 'response', created_at: 1741290958, model: 'gpt-5-mini-2025-08-07', output: [], usage: null };
export const RESPONSES_STREAM = sse(
  [
    { event: 'response.created', data: { type: 'response.created', sequence_number: 0, response: { ...RESPONSE_BASE, status: 'in_progress' } } },
    { event: 'response.in_progress', data: { type: 'response.in_progress', sequence_number: 1, response: { ...RESPONSE_BASE, status: 'in_progress' } } },
    { event: 'response.output_item.added', data: { type: 'response.output_item.added', sequence_number: 2, output_index: 0, item: { type: 'reasoning', id: 'rs_01', summary: [] } } },
    { event: 'response.reasoning_summary_text.delta', data: { type: 'response.reasoning_summary_text.delta', sequence_number: 3, item_id: 'rs_01', output_index: 0, summary_index: 0, delta: 'Checking the weather…' } },
    { event: 'response.output_item.added', data: { type: 'response.output_item.added', sequence_number: 4, output_index: 1, item: { type: 'message', id: 'msg_01', status: 'in_progress', role: 'assistant', content: [] } } },
    { event: 'response.output_text.delta', data: { type: 'response.output_text.delta', sequence_number: 5, item_id: 'msg_01', output_index: 1, content_index: 0, delta: 'Let me look ', logprobs: [] } },
    { event: 'response.output_text.delta', data: { type: 'response.output_text.delta', sequence_number: 6, item_id: 'msg_01', output_index: 1, content_index: 0, delta: 'up Zürich.', logprobs: [] } },
    { event: 'response.output_item.added', data: { type: 'response.output_item.added', sequence_number: 7, output_index: 2, item: { type: 'function_call', id: 'fc_01', call_id: 'call_abc', name: 'get_weather', arguments: '', status: 'in_progress' } } },
    { event: 'response.function_call_arguments.delta', data: { type: 'response.function_call_arguments.delta', sequence_number: 8, item_id: 'fc_01', output_index: 2, delta: '{"city":' } },
    { event: 'response.function_call_arguments.delta', data: { type: 'response.function_call_arguments.delta', sequence_number: 9, item_id: 'fc_01', output_index: 2, delta: '"Zürich"}' } },
    {
      event: 'response.completed',
      data: {
        type: 'response.completed',
        sequence_number: 10,
        response: { ...RESPONSE_BASE, status: 'completed', usage: { input_tokens: 40, input_tokens_details: { cached_tokens: 0 }, output_tokens: 30, output_tokens_details: { reasoning_tokens: 12 }, total_tokens: 70 } },
      },
    },
  ],
  '\n',
);
