import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { expectedPromptTokens, parseSSE, postJson, tokenCount } from './sim-helpers.js';

interface GenerateContentResponse {
  candidates: { content: { role: string; parts: { text: string }[] }; finishReason?: string; index: number }[];
  usageMetadata?: { promptTokenCount: number; candidatesTokenCount: number; totalTokenCount: number };
  modelVersion: string;
}

let sim: RunningSimulator;
let base: string;
beforeAll(async () => {
  sim = await startSimulator({ timeScale: 0 });
  base = `${sim.url}/sim-gemini/v1beta/models`;
});
afterAll(() => sim.close());

const instruction = 'Be concise.';
const contents = [
  { role: 'user', parts: [{ text: 'I am planning a garden with tomatoes and basil.' }] },
  { role: 'model', parts: [{ text: 'Lovely plan.' }] },
  { role: 'user', parts: [{ text: 'How often should I water tomatoes?' }] },
];
const texts = [instruction, 'I am planning a garden with tomatoes and basil.', 'Lovely plan.', 'How often should I water tomatoes?'];

describe('simulator: Gemini generateContent', () => {
  it('answers generateContent with candidates, finishReason STOP and usageMetadata', async () => {
    const res = await postJson(`${base}/llama:generateContent`, { contents, systemInstruction: { parts: [{ text: instruction }] } }, { 'x-goog-api-key': 'ignored' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as GenerateContentResponse;
    const candidate = body.candidates[0]!;
    expect(candidate.content.role).toBe('model');
    expect(candidate.finishReason).toBe('STOP');
    const text = candidate.content.parts.map((p) => p.text).join('');
    const usage = body.usageMetadata!;
    expect(usage.candidatesTokenCount).toBe(tokenCount(text));
    expect(usage.promptTokenCount).toBe(expectedPromptTokens(texts));
    expect(usage.totalTokenCount).toBe(usage.promptTokenCount + usage.candidatesTokenCount);
    expect(body.modelVersion).toBe('llama');
  });

  it('streams SSE chunks of one token, then a last one with finishReason and usage, and no [DONE]', async () => {
    const request = { contents, system_instruction: { parts: [{ text: instruction }] } };
    const res = await postJson(`${base}/sim%2Fmini:streamGenerateContent?alt=sse`, request);
    expect(res.status).toBe(200);
    const events = parseSSE(await res.text());
    expect(events.some((e) => e.data === '[DONE]')).toBe(false);
    const chunks = events.map((e) => JSON.parse(e.data) as GenerateContentResponse);
    const last = chunks.at(-1)!;
    expect(last.candidates[0]!.finishReason).toBe('STOP');
    expect(chunks.slice(0, -1).every((c) => c.candidates[0]!.finishReason === undefined && c.usageMetadata === undefined)).toBe(true);
    // The server half writes each token as it comes, so the finishing chunk has no text of its own.
    expect(last.candidates[0]!.content.parts).toEqual([{ text: '' }]);
    const pieces = chunks.slice(0, -1).map((c) => c.candidates[0]!.content.parts[0]!.text);
    expect(pieces.every((p) => tokenCount(p) === 1)).toBe(true);
    expect(last.usageMetadata!.candidatesTokenCount).toBe(pieces.length);
    expect(last.usageMetadata!.promptTokenCount).toBe(expectedPromptTokens(texts));
    expect(last.modelVersion).toBe('sim/mini');

    const whole = (await (await postJson(`${base}/mini:generateContent`, request)).json()) as GenerateContentResponse;
    expect(whole.candidates[0]!.content.parts[0]!.text).toBe(pieces.join(''));
  });

  it('stops at maxOutputTokens with MAX_TOKENS', async () => {
    const res = await postJson(`${base}/llama:generateContent`, { contents, generationConfig: { maxOutputTokens: 4 } });
    const body = (await res.json()) as GenerateContentResponse;
    expect(body.candidates[0]!.finishReason).toBe('MAX_TOKENS');
    expect(body.usageMetadata!.candidatesTokenCount).toBe(4);
  });

  it('acknowledges inline_data parts', async () => {
    const wav = Buffer.alloc(3000, 3).toString('base64');
    const res = await postJson(`${base}/llama:generateContent`, {
      contents: [{ role: 'user', parts: [{ inline_data: { mime_type: 'audio/wav', data: wav } }, { text: 'Transcribe this.' }] }],
    });
    const body = (await res.json()) as GenerateContentResponse;
    expect(body.candidates[0]!.content.parts[0]!.text).toMatch(/^I see an audio clip \(audio\/wav, 3\.0 kB\)\./);
    expect(body.usageMetadata!.promptTokenCount).toBe(expectedPromptTokens(['Transcribe this.'], 1));
  });

  it('answers errors in Gemini shape', async () => {
    let res = await postJson(`${base}/gpt-4:generateContent`, { contents });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { code: 404, status: 'NOT_FOUND', message: 'sim-gemini does not serve model gpt-4; it serves llama, mini (also as sim/llama, sim/mini)' },
    });
    res = await fetch(`${base}/llama:generateContent`, { method: 'POST', body: '{' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { status: string } }).error.status).toBe('INVALID_ARGUMENT');
    res = await postJson(`${base}/llama:generateContent`, { contents: [] });
    expect(res.status).toBe(400);
  });
});
