/**
 * The simulated clouds: sim-azure, sim-bedrock and sim-vertex, each addressed and
 * authenticated as its cloud is, through the library and through official SDKs.
 */
import { BedrockRuntimeClient, ConverseStreamCommand } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { AzureOpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Chat, tool } from '../src/index.js';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { SIM_PROVIDERS } from '../src/sim/profiles.js';
import { postJson } from './sim-helpers.js';

let sim: RunningSimulator;
beforeAll(async () => {
  sim = await startSimulator({ timeScale: 0 });
});
afterAll(() => sim.close());

const env = () => ({ SWITCHBOARD_SIM_URL: sim.url });

describe.each(['sim-azure', 'sim-bedrock', 'sim-vertex'])('%s through the library', (provider) => {
  const profile = SIM_PROVIDERS[provider];
  if (!profile) throw new Error(provider);

  it('streams a chat that remembers the conversation, at the exact simulated price', async () => {
    const chat = new Chat(`sim/llama@${provider}`, { env: env() });
    await chat.send('My name is Zoë Łukasz.');
    let text = '';
    for await (const e of chat.stream('What is my name?')) if (e.type === 'text-delta') text += e.text;
    expect(text).toContain('Zoë Łukasz');
    const usage = chat.lastTurn?.usage;
    expect(usage?.promptTokens).toBeGreaterThan(0);
    expect(usage?.completionTokens).toBeGreaterThan(0);
    expect(usage?.cost).toBeCloseTo(((usage?.promptTokens ?? 0) * profile.inputPrice + (usage?.completionTokens ?? 0) * profile.outputPrice) / 1e6, 15);
    expect(chat.lastTurn?.provider).toBe(provider);
  });

  it('runs a tool round trip', async () => {
    const seen: unknown[] = [];
    const weather = tool({ name: 'get_weather', description: 'Current weather for a city', parameters: z.object({ city: z.string() }), execute: (args) => (seen.push(args), { city: args.city, temperature: 21 }) });
    const chat = new Chat(`sim/llama@${provider}`, { env: env() });
    const reply = await chat.send('What is the weather in Paris?', { tools: [weather] });
    expect(seen).toEqual([expect.objectContaining({ city: 'Paris' })]);
    expect(reply).toContain('"temperature":21');
    expect(chat.history.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
  });
});

describe('the simulated clouds check their auth headers', () => {
  const body = { messages: [{ role: 'user', content: [{ text: 'Hi' }] }] };

  it('sim-bedrock refuses a request without SigV4, in Bedrock\'s shape', async () => {
    const res = await postJson(`${sim.url}/sim-bedrock/model/llama/converse`, body);
    expect(res.status).toBe(403);
    expect(res.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    const malformed = await postJson(`${sim.url}/sim-bedrock/model/llama/converse`, body, { authorization: 'AWS4-HMAC-SHA256 Credential=nope' });
    expect(malformed.status).toBe(403);
    expect(malformed.headers.get('x-amzn-errortype')).toBe('IncompleteSignatureException');
  });

  it('sim-azure refuses a request without api-key, and the deployment paths without api-version', async () => {
    const chatBody = { messages: [{ role: 'user', content: 'Hi' }] };
    expect((await postJson(`${sim.url}/sim-azure/openai/v1/chat/completions`, { model: 'llama', ...chatBody })).status).toBe(401);
    const noVersion = await postJson(`${sim.url}/sim-azure/openai/deployments/llama/chat/completions`, chatBody, { 'api-key': 'k' });
    expect(noVersion.status).toBe(400);
    const ok = await postJson(`${sim.url}/sim-azure/openai/deployments/llama/chat/completions?api-version=2024-10-21`, chatBody, { 'api-key': 'k' });
    expect(ok.status).toBe(200);
  });

  it('sim-vertex refuses a request without a bearer token', async () => {
    const res = await postJson(`${sim.url}/sim-vertex/v1/projects/p/locations/us-central1/publishers/google/models/llama:generateContent`, { contents: [{ role: 'user', parts: [{ text: 'Hi' }] }] });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { status: string } }).error.status).toBe('UNAUTHENTICATED');
  });
});

describe('sim-vertex serves Claude as Vertex does', () => {
  it('answers :rawPredict with the model named in the path and Vertex\'s anthropic_version in the body', async () => {
    const res = await postJson(
      `${sim.url}/sim-vertex/v1/projects/p/locations/us-east5/publishers/anthropic/models/llama:rawPredict`,
      { anthropic_version: 'vertex-2023-10-16', max_tokens: 200, messages: [{ role: 'user', content: 'My name is Ana. What is my name?' }] },
      { authorization: 'Bearer ya29.simulated' },
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { type: string; content: { text: string }[]; usage: { output_tokens: number } };
    expect(body.type).toBe('message');
    expect(body.content[0]?.text).toContain('Ana');
    expect(body.usage.output_tokens).toBeGreaterThan(0);
  });
});

describe('official SDKs against the simulated clouds', () => {
  it('the AWS SDK streams from sim-bedrock with ConverseStream', async () => {
    const client = new BedrockRuntimeClient({
      region: 'us-east-1',
      endpoint: `${sim.url}/sim-bedrock`,
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      requestHandler: new NodeHttpHandler(),
      maxAttempts: 1,
    });
    const out = await client.send(new ConverseStreamCommand({ modelId: 'llama', messages: [{ role: 'user', content: [{ text: 'My name is José. What is my name?' }] }] }));
    let text = '';
    let usage: { inputTokens?: number; outputTokens?: number } | undefined;
    for await (const event of out.stream ?? []) {
      if (event.contentBlockDelta?.delta?.text) text += event.contentBlockDelta.delta.text;
      if (event.metadata) usage = event.metadata.usage;
    }
    expect(text).toContain('José');
    expect(usage?.outputTokens).toBeGreaterThan(0);
  });

  it('openai\'s AzureOpenAI client chats with sim-azure on the deployment paths', async () => {
    const client = new AzureOpenAI({ endpoint: `${sim.url}/sim-azure`, apiKey: 'azure-key-for-the-simulator', apiVersion: '2024-10-21', deployment: 'llama' });
    const reply = await client.chat.completions.create({ model: 'llama', messages: [{ role: 'user', content: 'My name is Łukasz. What is my name?' }] });
    expect(reply.choices[0]?.message.content).toContain('Łukasz');
    expect(reply.usage?.completion_tokens).toBeGreaterThan(0);
  });
});
