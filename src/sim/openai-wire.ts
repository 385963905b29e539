/**
 * OpenAI Chat Completions, served the way OpenAI and OpenRouter serve it: `POST
 * /v1/chat/completions` (JSON or SSE chunks ending in `data: [DONE]`) and `GET /v1/models`.
 * Usage carries OpenRouter's `cost` in dollars beside OpenAI's token fields.
 */
import { attachmentFromURL, joinText, type Attachment, type SimMessage, type SimRequest, type SimTool } from './conversation.js';
import type { StreamEncoder } from './delivery.js';
import type { PlannedTurn } from './turn.js';
import { asRecord, readPositiveInt, type SimWire } from './wire.js';

/** Read OpenAI message content (a string or an array of parts) into text and attachments. */
function readContent(content: unknown): { text: string; attachments: Attachment[] } | string {
  if (content === null || content === undefined) return { text: '', attachments: [] };
  if (typeof content === 'string') return { text: content, attachments: [] };
  if (!Array.isArray(content)) return 'message content must be a string or an array of content parts';
  const texts: string[] = [];
  const attachments: Attachment[] = [];
  for (const raw of content) {
    const part = asRecord(raw);
    const type = part?.type;
    if (type === 'text' && typeof part?.text === 'string') texts.push(part.text);
    else if (type === 'image_url') {
      const url = asRecord(part?.image_url)?.url;
      if (typeof url !== 'string') return 'image_url parts need image_url.url';
      attachments.push(attachmentFromURL('image', url));
    } else if (type === 'file') {
      const file = asRecord(part?.file);
      const data = file?.file_data;
      if (typeof data !== 'string') return 'file parts need file.file_data';
      const name = typeof file?.filename === 'string' ? file.filename : undefined;
      const attachment = attachmentFromURL('file', data, name);
      if (attachment.mediaType === 'application/pdf') attachment.kind = 'document';
      attachments.push(attachment);
    } else if (type === 'input_audio') {
      const audio = asRecord(part?.input_audio);
      if (typeof audio?.data !== 'string' || typeof audio.format !== 'string') return 'input_audio parts need input_audio.data and input_audio.format';
      attachments.push(attachmentFromURL('audio', `data:audio/${audio.format};base64,${audio.data}`));
    } else return `unsupported content part type ${JSON.stringify(type)}`;
  }
  return { text: joinText(texts), attachments };
}

function readRequest(body: unknown): SimRequest | string {
  const record = asRecord(body);
  if (!record) return 'the request body must be a JSON object';
  if (typeof record.model !== 'string' || record.model === '') return 'you must provide a model parameter';
  if (!Array.isArray(record.messages) || record.messages.length === 0) return "'messages' must be a non-empty array";
  const system: string[] = [];
  const messages: SimMessage[] = [];
  for (const [i, raw] of record.messages.entries()) {
    const message = asRecord(raw);
    const role = message?.role;
    const content = readContent(message?.content);
    if (typeof content === 'string') return `messages[${i}]: ${content}`;
    if (role === 'system' || role === 'developer') system.push(content.text);
    else if (role === 'user') messages.push({ role: 'user', ...content });
    else if (role === 'tool') {
      if (typeof message?.tool_call_id !== 'string') return `messages[${i}]: a tool message needs tool_call_id`;
      messages.push({ role: 'user', ...content, toolResults: [{ id: message.tool_call_id, content: content.text }] });
    } else if (role === 'assistant') {
      const calls = readToolCalls(message?.tool_calls);
      if (typeof calls === 'string') return `messages[${i}].${calls}`;
      messages.push(calls.length > 0 ? { role: 'assistant', ...content, toolCalls: calls } : { role: 'assistant', ...content });
    }
    else return `messages[${i}].role must be one of system, developer, user, assistant, tool`;
  }
  const maxTokens = readPositiveInt(record.max_completion_tokens ?? record.max_tokens, record.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens');
  if (typeof maxTokens === 'string') return maxTokens;
  const request: SimRequest = {
    model: record.model,
    system: joinText(system),
    messages,
    stream: record.stream === true,
    includeUsage: asRecord(record.stream_options)?.include_usage === true,
  };
  if (maxTokens !== undefined) request.maxTokens = maxTokens;
  const tools = readTools(record.tools);
  if (typeof tools === 'string') return tools;
  if (tools.length > 0) request.tools = tools;
  const choice = record.tool_choice;
  if (choice === 'auto' || choice === 'none' || choice === 'required') request.toolChoice = choice;
  else if (typeof asRecord(asRecord(choice)?.function)?.name === 'string') request.toolChoice = { name: asRecord(asRecord(choice)?.function)?.name as string };
  const format = asRecord(record.response_format);
  if (format?.type === 'json_object') request.jsonMode = true;
  const schema = asRecord(asRecord(format?.json_schema)?.schema);
  if (format?.type === 'json_schema' && schema) request.responseSchema = schema;
  if (record.reasoning !== undefined || record.reasoning_effort !== undefined) request.reasoning = true;
  if (Array.isArray(record.plugins) && record.plugins.some((p) => asRecord(p)?.id === 'web')) request.online = true;
  return request;
}

function readToolCalls(value: unknown): NonNullable<SimMessage['toolCalls']> | string {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) return 'tool_calls must be an array';
  const out: NonNullable<SimMessage['toolCalls']> = [];
  for (const raw of value) {
    const call = asRecord(raw);
    const fn = asRecord(call?.function);
    if (typeof call?.id !== 'string' || typeof fn?.name !== 'string' || typeof fn.arguments !== 'string') return 'tool_calls: each needs id, function.name and function.arguments (a string)';
    out.push({ id: call.id, name: fn.name, arguments: fn.arguments });
  }
  return out;
}

function readTools(value: unknown): SimTool[] | string {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) return 'tools must be an array';
  const out: SimTool[] = [];
  for (const [i, raw] of value.entries()) {
    const fn = asRecord(asRecord(raw)?.function);
    if (typeof fn?.name !== 'string') return `tools[${i}].function.name is required`;
    out.push({ name: fn.name, description: typeof fn.description === 'string' ? fn.description : '', parameters: asRecord(fn.parameters) ?? {} });
  }
  return out;
}

const FINISH = { stop: 'stop', length: 'length', 'tool-calls': 'tool_calls' } as const;

/** Split a string into about three fragments, as providers stream tool arguments. */
export function fragments(text: string): string[] {
  if (text.length < 6) return [text];
  const a = Math.floor(text.length / 3);
  const b = Math.floor((2 * text.length) / 3);
  return [text.slice(0, a), text.slice(a, b), text.slice(b)];
}

function wireCalls(turn: PlannedTurn) {
  return turn.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
}

/** Stream chunks for reasoning (before the text) and for tool calls and annotations (after it). */
function reasoningFrames(prefix: string, turn: PlannedTurn): string {
  if (!turn.reasoning) return '';
  return fragments(turn.reasoning)
    .map((r) => `${prefix}[{"index":0,"delta":{"reasoning":${JSON.stringify(r)}},"finish_reason":null}]}\n\n`)
    .join('');
}

function afterTextFrames(prefix: string, turn: PlannedTurn): string {
  let frames = '';
  if (turn.annotations.length > 0) frames += `${prefix}[{"index":0,"delta":{"annotations":${JSON.stringify(turn.annotations)}},"finish_reason":null}]}\n\n`;
  turn.toolCalls.forEach((c, index) => {
    const first = { index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } };
    frames += `${prefix}[{"index":0,"delta":{"tool_calls":[${JSON.stringify(first)}]},"finish_reason":null}]}\n\n`;
    for (const part of fragments(c.arguments)) {
      frames += `${prefix}[{"index":0,"delta":{"tool_calls":[{"index":${index},"function":{"arguments":${JSON.stringify(part)}}}]},"finish_reason":null}]}\n\n`;
    }
  });
  return frames;
}

function usage(turn: PlannedTurn) {
  return {
    prompt_tokens: turn.promptTokens,
    completion_tokens: turn.completionTokens,
    total_tokens: turn.promptTokens + turn.completionTokens,
    cost: turn.cost,
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: turn.reasoningTokens },
  };
}

const ERROR_TYPES: Record<number, { type: string; code: string }> = {
  400: { type: 'invalid_request_error', code: 'invalid_request' },
  404: { type: 'invalid_request_error', code: 'model_not_found' },
  429: { type: 'rate_limit_error', code: 'rate_limit_exceeded' },
  500: { type: 'server_error', code: 'internal_error' },
};

export const openaiWire: SimWire = {
  protocol: 'openai',
  endpointHint: 'POST /v1/chat/completions',

  route(method, path) {
    if (method === 'POST' && path === '/v1/chat/completions') return { kind: 'generate' };
    if (method === 'GET' && path === '/v1/models') return { kind: 'models' };
    return undefined;
  },

  readRequest: (body) => readRequest(body),

  errorBody(status, message) {
    const kind = ERROR_TYPES[status] ?? { type: 'server_error', code: 'error' };
    return { error: { message, type: kind.type, code: kind.code, param: null } };
  },

  response(turn) {
    return {
      id: `chatcmpl-${turn.id}`,
      object: 'chat.completion',
      created: turn.created,
      model: turn.model,
      provider: turn.provider,
      system_fingerprint: null,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: turn.toolCalls.length > 0 && turn.text === '' ? null : turn.text,
            refusal: null,
            ...(turn.reasoning ? { reasoning: turn.reasoning } : {}),
            ...(turn.toolCalls.length > 0 ? { tool_calls: wireCalls(turn) } : {}),
            ...(turn.annotations.length > 0 ? { annotations: turn.annotations } : {}),
          },
          logprobs: null,
          finish_reason: FINISH[turn.finish],
        },
      ],
      usage: usage(turn),
    };
  },

  streamEncoder(turn, request): StreamEncoder {
    // Every chunk shares these fields; the prefix is serialised once per stream.
    const prefix = `data: {"id":"chatcmpl-${turn.id}","object":"chat.completion.chunk","created":${turn.created},"model":${JSON.stringify(turn.model)},"provider":${JSON.stringify(turn.provider)},"choices":`;
    return {
      head: () => `${prefix}[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n` + reasoningFrames(prefix, turn),
      piece: (text) => `${prefix}[{"index":0,"delta":{"content":${JSON.stringify(text)}},"finish_reason":null}]}\n\n`,
      tail: () =>
        afterTextFrames(prefix, turn) +
        `${prefix}[{"index":0,"delta":{},"finish_reason":"${FINISH[turn.finish]}"}]}\n\n` +
        (request.includeUsage ? `${prefix}[],"usage":${JSON.stringify(usage(turn))}}\n\n` : '') +
        'data: [DONE]\n\n',
    };
  },

  modelList(models, profile) {
    return {
      object: 'list',
      data: Object.entries(models).map(([id, model]) => ({
        id,
        object: 'model',
        created: 0,
        owned_by: 'switchboard-sim',
        context_length: model.contextLength,
        // OpenRouter's convention: dollars per token, as strings.
        pricing: { prompt: String(profile.inputPrice / 1e6), completion: String(profile.outputPrice / 1e6) },
      })),
    };
  },
};
