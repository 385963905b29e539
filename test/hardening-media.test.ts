/**
 * Media that would exhaust memory or hang: devices, a FIFO, a file too large, an endless or
 * silent URL. Each is refused with a typed error within the limits, the caller's timeout and
 * signal apply while media loads, and the turn leaves the history as it was.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, Chat, InvalidInputError, TimeoutError, audio, image, pdf } from '../src/index.js';
import { startStandIn, type StandIn } from './helpers/stand-in.js';

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
const dir = mkdtempSync(join(tmpdir(), 'sb-media-'));

let media: StandIn;
const closed: string[] = [];

beforeAll(async () => {
  media = await startStandIn((req, res) => {
    res.on('close', () => closed.push(req.url));
    if (req.url.startsWith('/endless')) {
      res.writeHead(200, { 'content-type': 'audio/wav' });
      const chunk = Buffer.alloc(64 * 1024);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    } else if (req.url.startsWith('/declared')) {
      res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': String(30_000_000) });
      res.write(Buffer.alloc(10));
    }
    // '/silent': accept and never answer.
  });
});
afterAll(() => media.close());

async function refusal(input: Parameters<Chat<string>['send']>[0], options: Parameters<Chat<string>['send']>[1] = {}, chatOptions = {}): Promise<Error> {
  const chat = new Chat('sim/llama', chatOptions);
  const err = await chat.send(input, options).then(
    () => new Error('expected the turn to fail'),
    (e: unknown) => e as Error,
  );
  expect(chat.history).toEqual([]);
  return err;
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe('local media', () => {
  it.each([
    ['image', () => image('/dev/zero')],
    ['pdf', () => pdf('/dev/urandom')],
  ])('%s of a device is refused without reading it', async (_kind, make) => {
    const err = await refusal(['What is this?', make()]);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(/is not a regular file/);
  });

  it('a FIFO with no writer is refused, not waited on', async () => {
    const fifo = join(dir, 'pipe.png');
    execFileSync('mkfifo', [fifo]);
    const err = await refusal(['What is this?', image(fifo)]);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(/pipe\.png" is not a regular file/);
  });

  it('a 600 MB file is refused by its size before it is read, with a typed error', async () => {
    const big = join(dir, 'huge.wav');
    const fd = openSync(big, 'w');
    ftruncateSync(fd, 600 * 1024 * 1024); // sparse: no disk used
    closeSync(fd);
    const err = await refusal(['Transcribe', audio(big)]);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(/huge\.wav" is larger than 20000000 bytes.*limits\.maxMediaBytes/);
  });

  it('media of one message together past maxRequestMediaBytes is refused', async () => {
    const err = await refusal(['Compare', image(PNG), image(PNG), image(PNG)], { limits: { maxRequestMediaBytes: PNG.length * 2 } });
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(/larger than \d+ bytes together \(limits\.maxRequestMediaBytes\)/);
  });

  it('within the limits, media still goes', async () => {
    const chat = new Chat('sim/llama');
    await chat.send(['What is this?', image(PNG)], { limits: { maxMediaBytes: PNG.length } });
    expect(chat.history).toHaveLength(2);
  });
});

describe('media from URLs', () => {
  it('an endless download stops at the size limit and is closed', async () => {
    const err = await refusal(['Transcribe', audio(`${media.url}/endless.wav`)], { limits: { maxMediaBytes: 1_000_000 } });
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(/endless\.wav is larger than 1000000 bytes/);
    await until(() => closed.includes('/endless.wav'));
  });

  it('a declared Content-Length past the limit is refused before the body is read', async () => {
    const err = await refusal(['Transcribe', audio(`${media.url}/declared.wav`)]);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toMatch(/declared\.wav is larger than 20000000 bytes/);
  });

  it('a silent server: limits.mediaTimeout gives a TimeoutError', async () => {
    const err = await refusal(['Transcribe', audio(`${media.url}/silent-1.wav`)], { limits: { mediaTimeout: 300 } });
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toMatch(/Loading the media took longer than 300 ms/);
    await until(() => closed.includes('/silent-1.wav'));
  });

  it("a silent server: the request's timeout applies to media loading too", async () => {
    const err = await refusal(['Transcribe', audio(`${media.url}/silent-2.wav`)], {}, { timeout: 300 });
    expect(err).toBeInstanceOf(TimeoutError);
  });

  it('a silent server: the AbortSignal stops media loading', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const err = await refusal(['Transcribe', audio(`${media.url}/silent-3.wav`)], { signal: controller.signal });
    expect(err).toBeInstanceOf(AbortError);
    await until(() => closed.includes('/silent-3.wav'));
  });
});
