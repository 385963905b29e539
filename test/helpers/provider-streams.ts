/**
 * Streams in shapes the providers' API references document and the client halves once
 * misread: Anthropic server tools and unusual message_start events, Mistral's content
 * parts, xAI's usage, Vertex's function arguments streamed in pieces. Numbers are made up.
 */
import { sse } from './stand-in.js';

const anthropicEvent = (type: string, fields: Record<string, unknown>) => ({ event: type, data: { type, ...fields } });
const block = (index: number, contentBlock: Record<string, unknown>) => anthropicEvent('content_block_start', { index, content_block: contentBlock });
const delta = (index: number, d: Record<string, unknown>) => anthropicEvent('content_block_delta', { index, delta: d });
const stop = (index: number) => anthropicEvent('content_block_stop', { index });
const messageStart = (id: string, usage: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  anthropicEvent('message_start', {
    message: { id, type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content: [], stop_reason: null, stop_sequence: null, usage, ...extra },
  });

export const SEARCH_RESULT_BLOCK = {
  type: 'web_search_tool_result',
  tool_use_id: 'srvtoolu_014hJH82Qum7Td6UV8gDXThB',
  content: [
    {
      type: 'web_search_result',
      title: 'Nachrichten aus Zürich – heute',
      url: 'https://example.com/zuerich-news',
      encrypted_content: 'EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5LTQ1NGUtODgxNC1kNjNjNTk1ZWI3Y2c',
      page_age: 'December 1, 2026',
    },
  ],
};

/**
 * Web search as Anthropic streams it: text, a `server_tool_use` whose input arrives in
 * `input_json_delta` fragments, the `web_search_tool_result`, cited text, then a client
 * tool call with fragments of its own.
 */
export const ANTHROPIC_SERVER_TOOL_STREAM = sse([
  messageStart('msg_srv', { input_tokens: 2679, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 3 }),
  block(0, { type: 'text', text: '' }),
  delta(0, { type: 'text_delta', text: 'Ich suche nach Neuigkeiten.' }),
  stop(0),
  block(1, { type: 'server_tool_use', id: 'srvtoolu_014hJH82Qum7Td6UV8gDXThB', name: 'web_search', input: {} }),
  delta(1, { type: 'input_json_delta', partial_json: '' }),
  delta(1, { type: 'input_json_delta', partial_json: '{"query": "latest' }),
  delta(1, { type: 'input_json_delta', partial_json: ' news Zürich"}' }),
  stop(1),
  block(2, SEARCH_RESULT_BLOCK),
  stop(2),
  block(3, { type: 'text', text: '' }),
  delta(3, {
    type: 'citations_delta',
    citation: { type: 'web_search_result_location', cited_text: 'Der Stadtrat…', url: 'https://example.com/zuerich-news', title: 'Nachrichten aus Zürich – heute', encrypted_index: 'Eo8BCioIAhgBIiQyYjQ0' },
  }),
  delta(3, { type: 'text_delta', text: 'Der Stadtrat tagt.' }),
  stop(3),
  block(4, { type: 'tool_use', id: 'toolu_01A09q90qw90lq917835lq9', name: 'save_note', input: {} }),
  delta(4, { type: 'input_json_delta', partial_json: '{"filename": ' }),
  delta(4, { type: 'input_json_delta', partial_json: '"news.txt"}' }),
  stop(4),
  anthropicEvent('message_delta', { delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 510, server_tool_use: { web_search_requests: 1 } } }),
  anthropicEvent('message_stop', {}),
]);

/** A proxy that repeats message_start for the same message, the second time with other counts. */
export const ANTHROPIC_REPEATED_START = sse([
  messageStart('msg_rep', { input_tokens: 10, output_tokens: 1 }),
  { event: 'ping', data: { type: 'ping' } },
  messageStart('msg_rep', { input_tokens: 99, output_tokens: 1 }),
  block(0, { type: 'text', text: '' }),
  delta(0, { type: 'text_delta', text: 'Hallo ' }),
  delta(0, { type: 'text_delta', text: 'Zoë' }),
  stop(0),
  anthropicEvent('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 4 } }),
  anthropicEvent('message_stop', {}),
]);

/** A second message begun in the middle of the first: two replies spliced together. */
export const ANTHROPIC_SPLICED = sse([
  messageStart('msg_one', { input_tokens: 10, output_tokens: 1 }),
  block(0, { type: 'text', text: '' }),
  delta(0, { type: 'text_delta', text: 'Erste ' }),
  messageStart('msg_two', { input_tokens: 12, output_tokens: 1 }),
  delta(0, { type: 'text_delta', text: 'zweite' }),
  stop(0),
  anthropicEvent('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 4 } }),
  anthropicEvent('message_stop', {}),
]);

/**
 * message_start carrying the reply already (content and stop_reason), as some proxies and
 * replayed recordings send it; thinking tokens in output_tokens_details.
 */
export const ANTHROPIC_FULL_START = sse([
  messageStart(
    'msg_full',
    { input_tokens: 40, output_tokens: 1 },
    {
      content: [
        { type: 'text', text: 'Ich schaue nach.' },
        { type: 'tool_use', id: 'toolu_full', name: 'get_weather', input: { city: 'Kraków' } },
      ],
      stop_reason: 'tool_use',
    },
  ),
  anthropicEvent('message_delta', { delta: {}, usage: { output_tokens: 120, output_tokens_details: { thinking_tokens: 80 } } }),
  anthropicEvent('message_stop', {}),
]);

/** A whole (non-streamed) message using web fetch and code execution. */
export const ANTHROPIC_SERVER_TOOL_MESSAGE = {
  id: 'msg_fetch',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4-5-20250929',
  content: [
    { type: 'server_tool_use', id: 'srvtoolu_fetch1', name: 'web_fetch', input: { url: 'https://example.com/data.csv' } },
    {
      type: 'web_fetch_tool_result',
      tool_use_id: 'srvtoolu_fetch1',
      content: { type: 'web_fetch_result', url: 'https://example.com/data.csv', content: { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'a,b\n1,2' } } },
    },
    { type: 'server_tool_use', id: 'srvtoolu_bash1', name: 'bash_code_execution', input: { command: 'python -c "print(1+2)"' } },
    { type: 'bash_code_execution_tool_result', tool_use_id: 'srvtoolu_bash1', content: { type: 'bash_code_execution_result', stdout: '3\n', stderr: '', return_code: 0, content: [] } },
    { type: 'text', text: 'Die Summe ist 3.' },
  ],
  stop_reason: 'end_turn',
  usage: { input_tokens: 3100, output_tokens: 140, server_tool_use: { web_fetch_requests: 1 } },
};

const mistralChunk = (delta: Record<string, unknown>, finish: string | null = null, usage?: Record<string, unknown>) => ({
  id: 'cmpl-9a1',
  object: 'chat.completion.chunk',
  created: 1764600000,
  model: 'magistral-medium-2509',
  choices: [{ index: 0, delta, finish_reason: finish }],
  ...(usage ? { usage } : {}),
});

/** Magistral: `delta.content` as a list of thinking and text parts; usage in the last chunk. */
export const MISTRAL_THINKING_STREAM = sse([
  { data: mistralChunk({ role: 'assistant', content: '' }) },
  { data: mistralChunk({ content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'Łukasz fragt nach ' }] }] }) },
  { data: mistralChunk({ content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'der Hauptstadt.' }] }] }) },
  { data: mistralChunk({ content: [{ type: 'text', text: 'Die Hauptstadt ist ' }] }) },
  { data: mistralChunk({ content: 'Warschau.' }) },
  { data: mistralChunk({ content: '' }, 'stop', { prompt_tokens: 14, completion_tokens: 60, total_tokens: 74 }) },
  { data: '[DONE]' },
]);

/** xAI: completion_tokens without the reasoning tokens that sit beside them. */
export const XAI_REASONING_STREAM = sse([
  { data: { id: 'x-1', object: 'chat.completion.chunk', model: 'grok-3-mini', choices: [{ index: 0, delta: { role: 'assistant', reasoning_content: 'Zählen…' }, finish_reason: null }] } },
  { data: { id: 'x-1', object: 'chat.completion.chunk', model: 'grok-3-mini', choices: [{ index: 0, delta: { content: '101 Dalmatiner.' }, finish_reason: null }] } },
  {
    data: {
      id: 'x-1',
      object: 'chat.completion.chunk',
      model: 'grok-3-mini',
      choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
      usage: { prompt_tokens: 32, completion_tokens: 26, total_tokens: 254, prompt_tokens_details: { cached_tokens: 6 }, completion_tokens_details: { reasoning_tokens: 196 } },
    },
  },
  { data: '[DONE]' },
]);

const vertexChunk = (parts: Record<string, unknown>[], extra: Record<string, unknown> = {}) => ({
  candidates: [{ content: { role: 'model', parts }, ...extra }],
  modelVersion: 'gemini-3-pro-preview',
  responseId: 'vtx-1',
});

/**
 * Vertex with streamed function-call arguments: each call named first, its arguments set
 * piece by piece at JSON paths (strings continued across pieces), an empty functionCall last.
 */
export const VERTEX_PARTIAL_ARGS_STREAM = sse([
  { data: vertexChunk([{ text: 'Ich prüfe beide Städte. ' }]) },
  { data: vertexChunk([{ functionCall: { name: 'get_weather', willContinue: true } }]) },
  { data: vertexChunk([{ functionCall: { partialArgs: [{ jsonPath: '$.location', stringValue: 'São ', willContinue: true }], willContinue: true } }]) },
  { data: vertexChunk([{ functionCall: { partialArgs: [{ jsonPath: '$.location', stringValue: 'Paulo' }], willContinue: true } }]) },
  { data: vertexChunk([{ functionCall: {} }]) },
  { data: vertexChunk([{ functionCall: { name: 'get_forecast', willContinue: true } }]) },
  {
    data: vertexChunk([
      { functionCall: { partialArgs: [{ jsonPath: '$.location', stringValue: '東京' }, { jsonPath: '$.days', numberValue: 3 }], willContinue: true } },
    ]),
  },
  { data: vertexChunk([{ functionCall: { partialArgs: [{ jsonPath: "$.options['units']", stringValue: 'metric' }, { jsonPath: '$.hours[0]', numberValue: 9 }], willContinue: true } }]) },
  {
    data: {
      ...vertexChunk([{ functionCall: {} }], { finishReason: 'STOP' }),
      usageMetadata: { promptTokenCount: 80, candidatesTokenCount: 40, totalTokenCount: 120 },
    },
  },
]);
