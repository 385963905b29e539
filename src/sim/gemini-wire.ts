/**
 * Gemini generateContent, served like generativelanguage.googleapis.com:
 * `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.
 * The model and streaming come from the path; the request and response use camelCase
 * (snake_case request fields are accepted too, as Google's JSON parser does). A Gemini
 * stream has no terminator: its last chunk carries finishReason and usageMetadata.
 */
import { attachmentFromURL, joinText, type Attachment, type AttachmentKind, type SimMessage, type SimRequest } from './conversation.js';
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

function readParts(parts: unknown, where: string): { text: string; attachments: Attachment[] } | string {
  if (!Array.isArray(parts)) return `${where}.parts must be a list`;
  const texts: string[] = [];
  const attachments: Attachment[] = [];
  for (const [i, raw] of parts.entries()) {
    const part = asRecord(raw);
    const inline = asRecord(field(part, 'inlineData', 'inline_data'));
    const file = asRecord(field(part, 'fileData', 'file_data'));
    if (typeof part?.text === 'string') texts.push(part.text);
    else if (inline) {
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
    } else if (part && ('functionCall' in part || 'functionResponse' in part || 'thought' in part)) {
      // Tool calls and thoughts carry no prompt text for the simulator.
    } else return `${where}.parts[${i}]: unsupported part`;
  }
  return { text: joinText(texts), attachments };
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
    messages.push({ role: role === 'model' ? 'assistant' : 'user', ...read });
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
  return request;
}

const ERROR_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
};

const FINISH = { stop: 'STOP', length: 'MAX_TOKENS' } as const;

function usageMetadata(turn: PlannedTurn) {
  return {
    promptTokenCount: turn.promptTokens,
    candidatesTokenCount: turn.completionTokens,
    totalTokenCount: turn.promptTokens + turn.completionTokens,
  };
}

/** One GenerateContentResponse; `final` adds finishReason and usage. */
function chunk(turn: PlannedTurn, text: string, final: boolean) {
  const candidate: Record<string, unknown> = { content: { parts: [{ text }], role: 'model' } };
  if (final) candidate.finishReason = FINISH[turn.finish];
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
    return chunk(turn, turn.text, true);
  },

  streamEncoder(turn): StreamEncoder {
    const last = turn.pieces.length - 1;
    return {
      head: () => '',
      piece: (text, index) => `data: ${JSON.stringify(chunk(turn, text, index === last))}\r\n\r\n`,
      // Only an empty reply needs a separate final chunk; otherwise the last piece was it.
      tail: () => (last < 0 ? `data: ${JSON.stringify(chunk(turn, '', true))}\r\n\r\n` : ''),
    };
  },
};
