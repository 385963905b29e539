import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { audio, image, InvalidInputError, pdf, setWarnHandler } from '../src/index.js';
import { toUserContent } from '../src/input.js';

const dir = mkdtempSync(join(tmpdir(), 'sb-input-'));
// A 1x1 PNG.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
// A WAV header with a few silent samples.
const WAV = Buffer.concat([
  Buffer.from('RIFF'), Buffer.from([36 + 8, 0, 0, 0]), Buffer.from('WAVEfmt '),
  Buffer.from([16, 0, 0, 0, 1, 0, 1, 0, 0x40, 0x1f, 0, 0, 0x80, 0x3e, 0, 0, 2, 0, 16, 0]),
  Buffer.from('data'), Buffer.from([8, 0, 0, 0]), Buffer.alloc(8),
]);
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');

const pngPath = join(dir, 'pixel.png');
const misnamedPng = join(dir, 'photo.jpg');
const wavPath = join(dir, 'clip.wav');
const pdfPath = join(dir, 'report.pdf');
writeFileSync(pngPath, PNG);
writeFileSync(misnamedPng, PNG);
writeFileSync(wavPath, WAV);
writeFileSync(pdfPath, PDF);

describe('input', () => {
  it('keeps plain strings as text', async () => {
    expect(await toUserContent('hello')).toBe('hello');
    expect(await toUserContent(['Summarize report.pdf', 'please'])).toBe('Summarize report.pdf\nplease');
    expect(await toUserContent(['https://example.com/page'])).toBe('https://example.com/page');
  });

  it('treats existing local files and media URLs in arrays as media', async () => {
    const parts = await toUserContent(['What is this?', pngPath, 'https://example.com/cat.jpg?size=2', pdfPath]);
    expect(Array.isArray(parts)).toBe(true);
    const [text, img, remote, doc] = parts as [any, any, any, any];
    expect(text).toEqual({ type: 'text', text: 'What is this?' });
    expect(img.type).toBe('image_url');
    expect(img.image_url.url.startsWith('data:image/png;base64,')).toBe(true);
    expect(Buffer.from(img.image_url.url.split(',')[1], 'base64').equals(PNG)).toBe(true);
    expect(remote).toEqual({ type: 'image_url', image_url: { url: 'https://example.com/cat.jpg?size=2' } });
    expect(doc.type).toBe('file');
    expect(doc.file.filename).toBe('report.pdf');
    expect(doc.file.file_data.startsWith('data:application/pdf;base64,')).toBe(true);
  });

  it('detects the type from the bytes, not the name', async () => {
    const [part] = (await toUserContent([image(misnamedPng)])) as [any];
    expect(part.image_url.url.startsWith('data:image/png;base64,')).toBe(true);
    const [sound] = (await toUserContent([audio(wavPath)])) as [any];
    expect(sound).toEqual({ type: 'input_audio', input_audio: { data: WAV.toString('base64'), format: 'wav' } });
    const [fromBytes] = (await toUserContent([image(new Uint8Array(PNG))])) as [any];
    expect(fromBytes.image_url.url).toBe(`data:image/png;base64,${PNG.toString('base64')}`);
    const [fromData] = (await toUserContent([pdf(`data:application/pdf;base64,${PDF.toString('base64')}`)])) as [any];
    expect(fromData.type).toBe('file');
  });

  it('refuses media whose bytes are not what the helper says', async () => {
    await expect(toUserContent([audio(pngPath)])).rejects.toThrow(/not a supported audio file .*image\/png/);
    await expect(toUserContent([pdf(pngPath)])).rejects.toThrow(/not a PDF/);
    await expect(toUserContent([image(join(dir, 'missing.png'))])).rejects.toThrow(InvalidInputError);
    await expect(toUserContent([image(join(dir, 'missing.png'))])).rejects.toThrow(/not an http\(s\) URL, a data: URI or an existing file/);
    await expect(toUserContent([])).rejects.toThrow(/empty array/);
    await expect(toUserContent([42 as unknown as string])).rejects.toThrow(/Input item 0/);
  });
});

describe('empty input and missing media files', () => {
  it("send('') is refused like send([])", async () => {
    await expect(toUserContent('')).rejects.toThrow(InvalidInputError);
    await expect(toUserContent('   ')).rejects.toThrow('Input is empty');
    await expect(toUserContent([])).rejects.toThrow(InvalidInputError);
  });

  it('a path with a media extension that does not exist is refused, not sent as text', async () => {
    await expect(toUserContent(['Describe', join(dir, 'pixle.png')])).rejects.toThrow(/looks like a path to a media file, but there is no such file/);
    await expect(toUserContent(['Describe', './chrat.png'])).rejects.toThrow(InvalidInputError);
  });

  it('a bare file name that does not exist is text, with one warning; a sentence stays text silently', async () => {
    const warnings: string[] = [];
    const previous = setWarnHandler((m) => warnings.push(m));
    try {
      expect(await toUserContent(['Describe', 'nosuchchart.png'])).toBe('Describe\nnosuchchart.png');
      expect(await toUserContent(['Summarize report-that-is-missing.pdf'])).toBe('Summarize report-that-is-missing.pdf');
      expect(warnings).toEqual(['"nosuchchart.png" has a media extension but there is no such file here; it is sent as text.']);
    } finally {
      setWarnHandler(previous);
    }
  });
});
