/**
 * The user's words and media to canonical content parts.
 *
 * `image(src)`, `pdf(src)` and `audio(src)` take an http(s) URL, a local path, a `data:`
 * URI or bytes. In an input array, a plain string is media only when it is an http(s)
 * URL ending in a known media extension, or an existing local file with such an
 * extension; any other string is text. Image and audio types come from the bytes, not
 * the file name.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { warnOnce } from './catalog/cost.js';
import { basename, extname, resolve } from 'node:path';
import { AbortError, InvalidInputError, SwitchboardError, TimeoutError, redactURL } from './errors.js';
import { limitOf, type Limits } from './limits.js';
import type { ContentPart } from './types.js';

export type MediaKind = 'image' | 'pdf' | 'audio';
export type MediaSource = string | Uint8Array | ArrayBuffer;

/** A piece of media to send, made by `image()`, `pdf()` or `audio()`. */
export interface Media {
  readonly type: 'media';
  /** `auto` decides from the bytes (or, for URLs, the extension). */
  readonly kind: MediaKind | 'auto';
  readonly src: MediaSource;
  readonly filename?: string | undefined;
}

export type InputItem = string | Media | ContentPart;
/** What `send`, `stream` and `run` accept: text, or an array mixing text and media. */
export type Input = string | InputItem[];

export function image(src: MediaSource, options: { filename?: string } = {}): Media {
  return { type: 'media', kind: 'image', src, filename: options.filename };
}
export function pdf(src: MediaSource, options: { filename?: string } = {}): Media {
  return { type: 'media', kind: 'pdf', src, filename: options.filename };
}
export function audio(src: MediaSource, options: { filename?: string } = {}): Media {
  return { type: 'media', kind: 'audio', src, filename: options.filename };
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.gif', '.webp']);
const AUDIO_EXT = new Set(['.wav', '.mp3', '.m4a', '.aac', '.ogg', '.flac', '.aiff', '.aif']);
const PDF_EXT = new Set(['.pdf']);

function kindFromExtension(ext: string): MediaKind | undefined {
  const e = ext.toLowerCase();
  if (IMAGE_EXT.has(e)) return 'image';
  if (AUDIO_EXT.has(e)) return 'audio';
  if (PDF_EXT.has(e)) return 'pdf';
  return undefined;
}

function isHttpURL(s: string): boolean {
  return /^https?:\/\/\S+$/i.test(s);
}

function urlExtension(s: string): string {
  try {
    return extname(new URL(s).pathname);
  } catch {
    return '';
  }
}

/** Decide whether a plain string in an input array is media (URL or existing file) or text. */
async function stringItem(item: string): Promise<Media | undefined> {
  if (isHttpURL(item)) {
    const kind = kindFromExtension(urlExtension(item));
    return kind ? { type: 'media', kind, src: item } : undefined;
  }
  if (item.startsWith('data:')) {
    const kind = dataURIKind(item);
    return kind ? { type: 'media', kind, src: item } : undefined;
  }
  if (item.length > 4096 || item.includes('\n')) return undefined;
  const kind = kindFromExtension(extname(item));
  if (!kind) return undefined;
  try {
    const info = await stat(item);
    return info.isFile() ? { type: 'media', kind: 'auto', src: item } : undefined;
  } catch {
    // No such file: decided below.
  }
  // A typo in a media path would otherwise become a paid call with the path as text.
  if (/\s/.test(item)) return undefined;
  if (/[/\\]/.test(item) || item.startsWith('~')) {
    throw new InvalidInputError(`"${item}" looks like a path to a media file, but there is no such file. Check the path, or put it in a sentence to send it as text.`);
  }
  warnOnce(`media:${item}`, `"${item}" has a media extension but there is no such file here; it is sent as text.`);
  return undefined;
}

function dataURIKind(uri: string): MediaKind | undefined {
  const mime = /^data:([^;,]+)/.exec(uri)?.[1]?.toLowerCase() ?? '';
  if (mime.startsWith('image/')) return 'image';
  if (mime.startsWith('audio/')) return 'audio';
  if (mime === 'application/pdf') return 'pdf';
  return undefined;
}

function isContentPart(item: unknown): item is ContentPart {
  if (typeof item !== 'object' || item === null) return false;
  const type = (item as { type?: unknown }).type;
  return type === 'text' || type === 'image_url' || type === 'file' || type === 'input_audio';
}

/** What bounds media loading: the caller's signal and timeout, and the size and time limits. */
export interface LoadOptions {
  signal?: AbortSignal | undefined;
  /** The request's `timeout` (ms): loading the media may not take longer either. */
  timeoutMs?: number | undefined;
  limits?: Limits | undefined;
}

/** Convert the caller's input to the content of one user message. */
export async function toUserContent(input: Input, options: LoadOptions = {}): Promise<string | ContentPart[]> {
  // '' is refused like []: nothing to say is never a paid call.
  if (typeof input === 'string') {
    if (input.trim() === '') throw new InvalidInputError('Input is empty: give some text or media.');
    return input;
  }
  if (!Array.isArray(input)) {
    throw new InvalidInputError(`Input must be a string or an array of text and media; got ${describe(input)}.`);
  }
  if (input.length === 0) throw new InvalidInputError('Input is an empty array: give some text or media.');
  const parts: ContentPart[] = [];
  let loader: MediaLoader | undefined;
  try {
    for (const [i, item] of input.entries()) {
      if (typeof item === 'string') {
        const media = await stringItem(item);
        parts.push(media ? await mediaPart(media, (loader ??= new MediaLoader(options))) : { type: 'text', text: item });
      } else if (isMedia(item)) {
        parts.push(await mediaPart(item, (loader ??= new MediaLoader(options))));
      } else if (isContentPart(item)) {
        parts.push(item);
      } else {
        throw new InvalidInputError(`Input item ${i} is ${describe(item)}; expected text, image(...), pdf(...), audio(...) or a content part.`);
      }
    }
  } finally {
    loader?.done();
  }
  // Text-only arrays become one plain string, the simplest form every provider takes.
  if (parts.every((p) => p.type === 'text')) return parts.map((p) => (p as { text: string }).text).join('\n');
  return parts;
}

function isMedia(item: unknown): item is Media {
  return typeof item === 'object' && item !== null && (item as { type?: unknown }).type === 'media';
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object of an unknown shape' : `a ${typeof value}`;
}

interface LoadedBytes {
  bytes: Uint8Array;
  filename?: string | undefined;
}

/**
 * Loads the media of one message within its limits: each item and all of them together no
 * larger than `maxMediaBytes` and `maxRequestMediaBytes`, checked before and while reading (a
 * device, a FIFO or an endless URL is never read to the end), and all of it within
 * `mediaTimeout` and the request's `timeout`, stopped at once by the caller's signal.
 */
class MediaLoader {
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #maxItem: number | undefined;
  readonly #maxTotal: number | undefined;
  readonly #userSignal: AbortSignal | undefined;
  #total = 0;
  #timedOut = false;

  constructor(options: LoadOptions) {
    this.#userSignal = options.signal;
    this.#maxItem = limitOf(options.limits, 'maxMediaBytes');
    this.#maxTotal = limitOf(options.limits, 'maxRequestMediaBytes');
    const mediaTimeout = limitOf(options.limits, 'mediaTimeout');
    const timeouts = [mediaTimeout, options.timeoutMs].filter((t): t is number => t !== undefined && t > 0);
    this.#timeoutMs = timeouts.length > 0 ? Math.min(...timeouts) : undefined;
    if (this.#timeoutMs !== undefined) {
      this.#timer = setTimeout(() => {
        this.#timedOut = true;
        this.#controller.abort();
      }, this.#timeoutMs);
    }
    this.signal = options.signal ? AbortSignal.any([options.signal, this.#controller.signal]) : this.#controller.signal;
  }

  done(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  /** Throw the typed error if loading was aborted or ran out of time. */
  check(): void {
    if (this.#timedOut) throw new TimeoutError(`Loading the media took longer than ${this.#timeoutMs} ms (limits.mediaTimeout, or the request's timeout).`);
    if (this.#userSignal?.aborted) throw new AbortError();
  }

  /** Refuse, before reading it, an item whose size is known to be past a limit. */
  fits(label: string, size: number): void {
    this.#refuse(label, size, size);
  }

  /** Count `n` more bytes of the item `label` (of `itemSoFar` bytes so far); throws past a limit. */
  count(label: string, itemSoFar: number, n: number): void {
    this.#refuse(label, itemSoFar + n, n);
    this.#total += n;
  }

  #refuse(label: string, itemSize: number, added: number): void {
    if (this.#maxItem !== undefined && itemSize > this.#maxItem) {
      throw new InvalidInputError(`${label} is larger than ${this.#maxItem} bytes, the limit for one piece of media (limits.maxMediaBytes).`);
    }
    if (this.#maxTotal !== undefined && this.#total + added > this.#maxTotal) {
      throw new InvalidInputError(`The media of this message is larger than ${this.#maxTotal} bytes together (limits.maxRequestMediaBytes); ${label} went past it.`);
    }
  }

  /** Read a stream of bytes within the limits. */
  async readAll(label: string, chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of chunks) {
      this.check();
      this.count(label, size, chunk.byteLength);
      size += chunk.byteLength;
      parts.push(chunk);
    }
    return Buffer.concat(parts, size);
  }
}

async function loadBytes(media: Media, loader: MediaLoader): Promise<LoadedBytes> {
  const { src } = media;
  if (src instanceof Uint8Array || src instanceof ArrayBuffer) {
    const bytes = src instanceof Uint8Array ? src : new Uint8Array(src);
    loader.count(media.filename ?? 'the given bytes', 0, bytes.byteLength);
    return { bytes, filename: media.filename };
  }
  if (isHttpURL(src)) return { bytes: await download(src, loader), filename: media.filename ?? basename(new URL(src).pathname) };
  if (src.startsWith('data:')) {
    const comma = src.indexOf(',');
    if (comma < 0 || !/;base64$/i.test(src.slice(0, comma))) {
      throw new InvalidInputError('A data: URI for media must be base64-encoded (data:<type>;base64,<data>).');
    }
    loader.count(media.filename ?? 'a data: URI', 0, Math.floor(((src.length - comma - 1) * 3) / 4));
    return { bytes: Buffer.from(src.slice(comma + 1), 'base64'), filename: media.filename };
  }
  return { bytes: await readLocalFile(media, src, loader), filename: media.filename ?? basename(src) };
}

/** Download media, refusing a declared or actual size past the limits, within the loader's time. */
async function download(url: string, loader: MediaLoader): Promise<Uint8Array> {
  const label = redactURL(url);
  try {
    const res = await fetch(url, { signal: loader.signal });
    if (!res.ok) throw new InvalidInputError(`Could not download ${label}: HTTP ${res.status}.`);
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared)) loader.fits(label, declared);
    if (!res.body) return new Uint8Array();
    return await loader.readAll(label, res.body as unknown as AsyncIterable<Uint8Array>);
  } catch (err) {
    loader.check();
    if (err instanceof SwitchboardError) throw err;
    throw new InvalidInputError(`Could not download ${label}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Read a local file: only a regular file (never a device or FIFO, which may not end), within the limits. */
async function readLocalFile(media: Media, src: string, loader: MediaLoader): Promise<Uint8Array> {
  const path = resolve(src);
  const label = `"${src}"`;
  try {
    const info = await stat(path);
    if (!info.isFile()) {
      throw new InvalidInputError(`${label} is not a regular file (a device, FIFO or directory cannot be sent as media).`);
    }
    loader.fits(label, info.size);
    return await loader.readAll(label, createReadStream(path, { signal: loader.signal }));
  } catch (err) {
    loader.check();
    if (err instanceof SwitchboardError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidInputError(
      code === 'ENOENT'
        ? `${media.kind === 'auto' ? 'Media' : media.kind} "${src}" is not an http(s) URL, a data: URI or an existing file.`
        : `Could not read ${label}: ${(err as Error).message}`,
    );
  }
}

async function sniff(bytes: Uint8Array): Promise<{ mime: string; ext: string } | undefined> {
  const { fileTypeFromBuffer } = await import('file-type');
  return fileTypeFromBuffer(bytes);
}

const AUDIO_FORMAT: Record<string, string> = {
  'audio/wav': 'wav',
  'audio/vnd.wave': 'wav',
  'audio/x-wav': 'wav',
  'audio/mpeg': 'mp3',
  'audio/mp4': 'm4a',
  'audio/x-m4a': 'm4a',
  'audio/aac': 'aac',
  'audio/ogg': 'ogg',
  'audio/opus': 'ogg',
  'audio/x-flac': 'flac',
  'audio/flac': 'flac',
  'audio/aiff': 'aiff',
  'audio/x-aiff': 'aiff',
};

function toDataURI(mime: string, bytes: Uint8Array): string {
  return `data:${mime};base64,${Buffer.from(bytes).toString('base64')}`;
}

/** Turn one piece of media into a content part, checking its type from its bytes. */
async function mediaPart(media: Media, loader: MediaLoader): Promise<ContentPart> {
  const { src } = media;
  // Remote images and PDFs are passed by URL: providers fetch them themselves.
  if (typeof src === 'string' && isHttpURL(src)) {
    const kind = media.kind === 'auto' ? kindFromExtension(urlExtension(src)) : media.kind;
    if (kind === 'image') return { type: 'image_url', image_url: { url: src } };
    if (kind === 'pdf') return { type: 'file', file: { filename: media.filename ?? basename(new URL(src).pathname), file_data: src } };
  }
  const { bytes, filename } = await loadBytes(media, loader);
  if (bytes.length === 0) throw new InvalidInputError(`Media ${filename ?? ''} is empty.`.replace('  ', ' '));
  const detected = await sniff(bytes);
  const label = typeof src === 'string' && !src.startsWith('data:') ? `"${src}"` : (filename ?? 'the given bytes');
  const kind: MediaKind | undefined =
    media.kind !== 'auto'
      ? media.kind
      : detected?.mime.startsWith('image/')
        ? 'image'
        : detected?.mime.startsWith('audio/')
          ? 'audio'
          : detected?.mime === 'application/pdf'
            ? 'pdf'
            : undefined;
  if (kind === 'image') {
    if (!detected?.mime.startsWith('image/')) {
      throw new InvalidInputError(`${label} is not an image (its bytes look like ${detected?.mime ?? 'no known format'}).`);
    }
    return { type: 'image_url', image_url: { url: toDataURI(detected.mime, bytes) } };
  }
  if (kind === 'audio') {
    const format = detected ? AUDIO_FORMAT[detected.mime] : undefined;
    if (!format) throw new InvalidInputError(`${label} is not a supported audio file (its bytes look like ${detected?.mime ?? 'no known format'}).`);
    return { type: 'input_audio', input_audio: { data: Buffer.from(bytes).toString('base64'), format } };
  }
  if (kind === 'pdf') {
    if (detected?.mime !== 'application/pdf') {
      throw new InvalidInputError(`${label} is not a PDF (its bytes look like ${detected?.mime ?? 'no known format'}).`);
    }
    return { type: 'file', file: { filename: filename ?? 'document.pdf', file_data: toDataURI('application/pdf', bytes) } };
  }
  throw new InvalidInputError(`${label} is not an image, PDF or audio file that switchboard can send.`);
}
