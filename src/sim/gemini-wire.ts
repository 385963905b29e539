/**
 * Gemini generateContent, served like generativelanguage.googleapis.com:
 * `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.
 * The model and streaming come from the path; the request and response use camelCase
 * (snake_case request fields are accepted too, as Google's JSON parser does). A Gemini
 * stream has no terminator: its last chunk carries finishReason and usageMetadata.
 */
import { attachmentFromURL, joinText, type Attachment, type AttachmentKind, type SimMessage, type SimRequest, type SimTool, type SimToolCall, type SimToolResult } from './conversation.js';
import type { StreamEncoder } from './delivery.js';
import type { PlannedTurn } from './turn.js';
import { asRecord, readPositiveInt, type SimWire } from './wire.js';

const PATH = /^\/v1beta\/models\/(.+):(generateContent|streamGenerateContent)$/;

/** A field under its camelCase or snake_case name. */
function field(record: Record<string, unknown> | undefined, camel: string, snake: string): unknown {
  return record?.[camel] ?? record?.[snake];
}

function kindOf(mimeType: string): AttachmentKind {
  if (mimeType.startsWith('image/')) return 'image';
  if (mimeType.startsWith('audio/')) return 'audio';
  if (mimeType === 'application/pdf' || mimeType.startsWith('text/')) return 'document';
  return 'file';
}

interface ReadParts {
  text: string;
  attachments: Attachment[];
  toolCalls: SimToolCall[];
  toolResults: SimToolResult[];
}

function readParts(parts: unknown, where: string): ReadParts | string {
  if (!Array.isArray(parts)) return `${where}.parts must be a list`;
  const texts: string[] = [];
  const attachments: Attachment[] = [];
  const toolCalls: SimToolCall[] = [];
  const toolResults: SimToolResult[] = [];
  for (const [i, raw] of parts.entries()) {
    const part = asRecord(raw);
    const inline = asRecord(field(part, 'inlineData', 'inline_data'));
    const file = asRecord(field(part, 'fileData', 'file_data'));
    const call = asRecord(field(part, 'functionCall', 'function_call'));
    const response = asRecord(field(part, 'functionResponse', 'function_response'));
    if (part?.thought === true) {
      // A thought summary is not prompt text.
    } else if (typeof part?.text === 'string') texts.push(part.text);
    else if (call) {
      if (typeof call.name !== 'string') return `${where}.parts[${i}].functionCall.name is required`;
      toolCalls.push({ name: call.name, arguments: JSON.stringify(call.args ?? {}) });
    } else if (response) {
      if (typeof response.name !== 'string') return `${where}.parts[${i}].functionResponse.name is required`;
      // `{ result: text }` is how clients wrap a plain-text result; read it back as the text.
      const body = asRecord(response.response) ?? {};
      const keys = Object.keys(body);
      const content = keys.length === 1 && keys[0] === 'result' && typeof body.result === 'string' ? body.result : JSON.stringify(body);
      texts.push(content);
      toolResults.push({ name: response.name, content });
    } else if (inline) {
      const mime = field(inline, 'mimeType', 'mime_type');
      if (typeof mime !== 'string' || typeof inline.data !== 'string') return `${where}.parts[${i}].inlineData needs mimeType and data`;
      attachments.push(attachmentFromURL(kindOf(mime), `data:${mime};base64,${inline.data}`));
    } else if (file) {
      const uri = field(file, 'fileUri', 'file_uri');
      if (typeof uri !== 'string') return `${where}.parts[${i}].fileData needs fileUri`;
      const mime = field(file, 'mimeType', 'mime_type');
      const attachment = attachmentFromURL(typeof mime === 'string' ? kindOf(mime) : 'file', uri);
      if (typeof mime === 'string') attachment.mediaType = mime;
      attachments.push(attachment);
    } else return `${where}.parts[${i}]: unsupported part`;
  }
  return { text: joinText(texts), attachments, toolCalls, toolResults };
}

function readTools(value: unknown, request: SimRequest): void {
  if (!Array.isArray(value)) return;
  const tools: SimTool[] = [];
  for (const raw of value) {
    const tool = asRecord(raw);
    if (field(tool, 'googleSearch', 'google_search') !== undefined) request.online = true;
    const declarations = field(tool, 'functionDeclarations', 'function_declarations');
    if (!Array.isArray(declarations)) continue;
    for (const d of declarations) {
      const decl = asRecord(d);
      if (typeof decl?.name !== 'string') continue;
      tools.push({ name: decl.name, description: typeof decl.description === 'string' ? decl.description : '', parameters: asRecord(decl.parameters) ?? {} });
    }
  }
  if (tools.length > 0) request.tools = tools;
}

function readRequest(body: unknown, model: string, stream: boolean): SimRequest | string {
  const record = asRecord(body);
  if (!record) return 'Invalid JSON payload: the request body must be an object';
  const contents = record.contents;
  if (!Array.isArray(contents) || contents.length === 0) return '* GenerateContentRequest.contents: contents is not specified';
  const messages: SimMessage[] = [];
  for (const [i, raw] of contents.entries()) {
    const content = asRecord(raw);
    const role = content?.role ?? 'user';
    if (role !== 'user' && role !== 'model') return `* GenerateContentRequest.contents[${i}].role: Please use a valid role: user, model.`;
    const read = readParts(content?.parts, `contents[${i}]`);
    if (typeof read === 'string') return read;
    const message: SimMessage = { role: role === 'model' ? 'assistant' : 'user', text: read.text, attachments: read.attachments };
    if (read.toolCalls.length > 0) message.toolCalls = read.toolCalls;
    if (read.toolResults.length > 0) message.toolResults = read.toolResults;
    messages.push(message);
  }
  let system = '';
  const instruction = asRecord(field(record, 'systemInstruction', 'system_instruction'));
  if (instruction) {
    const read = readParts(instruction.parts, 'systemInstruction');
    if (typeof read === 'string') return read;
    system = read.text;
  }
  const config = asRecord(field(record, 'generationConfig', 'generation_config'));
  const maxTokens = readPositiveInt(field(config, 'maxOutputTokens', 'max_output_tokens'), 'generationConfig.maxOutputTokens');
  if (typeof maxTokens === 'string') return maxTokens;
  const request: SimRequest = { model, system, messages, stream, includeUsage: true };
  if (maxTokens !== undefined) request.maxTokens = maxTokens;
  readTools(record.tools, request);
  const calling = asRecord(field(asRecord(field(record, 'toolConfig', 'tool_config')), 'functionCallingConfig', 'function_calling_config'));
  const allowed = field(calling, 'allowedFunctionNames', 'allowed_function_names');
  if (calling?.mode === 'NONE') request.toolChoice = 'none';
  else if (calling?.mode === 'ANY') request.toolChoice = Array.isArray(allowed) && allowed.length === 1 && typeof allowed[0] === 'string' ? { name: allowed[0] } : 'required';
  else if (calling?.mode === 'AUTO') request.toolChoice = 'auto';
  const schema = asRecord(field(config, 'responseSchema', 'response_schema')) ?? asRecord(field(config, 'responseJsonSchema', 'response_json_schema'));
  if (schema) request.responseSchema = schema;
  else if (field(config, 'responseMimeType', 'response_mime_type') === 'application/json') request.jsonMode = true;
  const thinking = asRecord(field(config, 'thinkingConfig', 'thinking_config'));
  if (thinking && field(thinking, 'includeThoughts', 'include_thoughts') === true) request.reasoning = true;
  return request;
}

const ERROR_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
};

// Gemini ends a turn that calls functions with STOP.
const FINISH = { stop: 'STOP', length: 'MAX_TOKENS', 'tool-calls': 'STOP' } as const;

function usageMetadata(turn: PlannedTurn) {
  const usage: Record<string, number> = {
    promptTokenCount: turn.promptTokens,
    // Gemini counts thoughts apart from the candidates.
    candidatesTokenCount: turn.completionTokens - turn.reasoningTokens,
    totalTokenCount: turn.promptTokens + turn.completionTokens,
  };
  if (turn.reasoningTokens > 0) usage.thoughtsTokenCount = turn.reasoningTokens;
  return usage;
}

function safeArgs(args: string): unknown {
  try {
    return JSON.parse(args) as unknown;
  } catch {
    return { _unparsed: args };
  }
}

/** Grounding metadata for url_citation annotations; the unknown one becomes a chunk without a web source. */
function grounding(turn: PlannedTurn) {
  return {
    groundingChunks: turn.annotations.map((a) => {
      const c = asRecord(asRecord(a)?.url_citation);
      return c ? { web: { uri: c.url, title: c.title } } : { retrievedContext: { uri: 'sim://notes', title: 'notes' } };
    }),
  };
}

/** One GenerateContentResponse; `final` adds finishReason, usage, function calls and grounding. */
function chunk(turn: PlannedTurn, text: string, final: boolean, thought = false) {
  const parts: Record<string, unknown>[] = [];
  if (thought) parts.push({ text, thought: true });
  else if (text !== '' || !final || turn.toolCalls.length === 0) parts.push({ text });
  if (final) for (const c of turn.toolCalls) parts.push({ functionCall: { name: c.name, args: safeArgs(c.arguments) } });
  const candidate: Record<string, unknown> = { content: { parts, role: 'model' } };
  if (final) candidate.finishReason = FINISH[turn.finish];
  if (final && turn.annotations.length > 0) candidate.groundingMetadata = grounding(turn);
  candidate.index = 0;
  const out: Record<string, unknown> = { candidates: [candidate] };
  if (final) out.usageMetadata = usageMetadata(turn);
  out.modelVersion = turn.model;
  out.responseId = turn.id;
  return out;
}

export const geminiWire: SimWire = {
  protocol: 'gemini',
  endpointHint: 'POST /v1beta/models/{model}:generateContent or :streamGenerateContent?alt=sse',

  route(method, path, query) {
    const match = PATH.exec(path);
    if (method !== 'POST' || !match?.[1]) return undefined;
    const stream = match[2] === 'streamGenerateContent';
    if (stream && query.get('alt') !== 'sse') {
      return { kind: 'invalid', message: 'the simulator streams Gemini responses as server-sent events only: add ?alt=sse' };
    }
    return { kind: 'generate', model: decodeURIComponent(match[1]), stream };
  },

  readRequest: (body, route) => readRequest(body, route.model ?? '', route.stream === true),

  errorBody(status, message) {
    return { error: { code: status, message, status: ERROR_STATUS[status] ?? 'UNKNOWN' } };
  },

  response(turn) {
    const body = chunk(turn, turn.text, true);
    if (turn.reasoning) {
      const candidate = (body.candidates as { content: { parts: unknown[] } }[])[0];
      candidate?.content.parts.unshift({ text: turn.reasoning, thought: true });
    }
    return body;
  },

  streamEncoder(turn): StreamEncoder {
    const last = turn.pieces.length - 1;
    return {
      head: () => (turn.reasoning ? `data: ${JSON.stringify(chunk(turn, turn.reasoning, false, true))}\r\n\r\n` : ''),
      piece: (text, index) => `data: ${JSON.stringify(chunk(turn, text, index === last))}\r\n\r\n`,
      // Only an empty reply needs a separate final chunk; otherwise the last piece was it.
      tail: () => (last < 0 ? `data: ${JSON.stringify(chunk(turn, '', true))}\r\n\r\n` : ''),
    };
  },
};
