/**
 * AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), as Bedrock's
 * ConverseStream sends it. Each frame is: total length, headers length, prelude CRC,
 * headers, payload, message CRC. @smithy/core's EventStreamCodec encodes and decodes one
 * frame (headers and both CRCs); this file only cuts the byte stream at frame boundaries.
 */
import { createRequire } from 'node:module';
import type { EventStreamCodec, Message } from '@smithy/core/event-streams';
import { ProtocolError } from '../errors.js';

/** The smallest frame: 12-byte prelude plus 4-byte message CRC. */
const MIN_FRAME = 16;
/** Bedrock's frames are far smaller; a larger length means the stream is not event-stream. */
const MAX_FRAME = 16 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const toUtf8 = (bytes: Uint8Array): string => decoder.decode(bytes);
const fromUtf8 = (text: string): Uint8Array => encoder.encode(text);

let sharedCodec: EventStreamCodec | undefined;
/** The codec, loaded on first use (synchronously, from its CommonJS build): most programs never talk to Bedrock. */
function codec(): EventStreamCodec {
  if (!sharedCodec) {
    const { EventStreamCodec: Codec } = createRequire(import.meta.url)('@smithy/core/event-streams') as typeof import('@smithy/core/event-streams');
    sharedCodec = new Codec(toUtf8, fromUtf8);
  }
  return sharedCodec;
}

/** One decoded frame: its `:message-type` (`event` or `exception`), its event or exception type and its payload. */
export interface EventFrame {
  messageType: string;
  type: string;
  payload: string;
}

/** Collects bytes as they arrive and hands out each frame once it is whole. */
export class EventStreamDecoder {
  private buffer: Uint8Array = new Uint8Array(0);

  push(bytes: Uint8Array): EventFrame[] {
    this.buffer = this.buffer.length === 0 ? bytes : concat(this.buffer, bytes);
    const frames: EventFrame[] = [];
    for (;;) {
      if (this.buffer.length < 4) break;
      const view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
      const length = view.getUint32(0, false);
      if (length < MIN_FRAME || length > MAX_FRAME) {
        throw new ProtocolError(`The event stream has a frame of ${length} bytes, which is not a valid event-stream frame.`);
      }
      if (this.buffer.length < length) break;
      const frame = this.buffer.subarray(0, length);
      this.buffer = this.buffer.subarray(length);
      frames.push(toFrame(decodeFrame(frame)));
    }
    return frames;
  }

  /** Bytes of a frame that has not arrived whole. */
  get pending(): number {
    return this.buffer.length;
  }
}

function decodeFrame(frame: Uint8Array): Message {
  try {
    return codec().decode(frame);
  } catch (err) {
    throw new ProtocolError(`An event-stream frame failed to decode: ${(err as Error).message}`, { cause: err });
  }
}

function header(message: Message, name: string): string | undefined {
  const value = message.headers[name];
  return value?.type === 'string' ? value.value : undefined;
}

function toFrame(message: Message): EventFrame {
  const messageType = header(message, ':message-type') ?? 'event';
  const type = (messageType === 'exception' ? header(message, ':exception-type') : header(message, ':event-type')) ?? '';
  return { messageType, type, payload: toUtf8(message.body) };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** One event frame as Bedrock writes it (`:event-type`, JSON payload). */
export function encodeEvent(eventType: string, payload: unknown): Uint8Array {
  return codec().encode({
    headers: {
      ':event-type': { type: 'string', value: eventType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'event' },
    },
    body: fromUtf8(JSON.stringify(payload)),
  });
}

/** An exception frame (`throttlingException`, `modelStreamErrorException`, ...) with its message. */
export function encodeException(exceptionType: string, message: string): Uint8Array {
  return codec().encode({
    headers: {
      ':exception-type': { type: 'string', value: exceptionType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'exception' },
    },
    body: fromUtf8(JSON.stringify({ message })),
  });
}
