import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../src/sim/server.js';
import { postJson, tokenCount } from './sim-helpers.js';

interface Message {
  role: string;
  content: unknown;
}
interface Completion {
  choices: { message: { content: string } }[];
  usage: { completion_tokens: number };
}

let sim: RunningSimulator;
beforeAll(async () => {
  sim = await startSimulator({ timeScale: 0 });
});
afterAll(() => sim.close());

async function ask(messages: Message[], model = 'llama', provider = 'sim-fast'): Promise<Completion> {
  const res = await postJson(`${sim.url}/${provider}/v1/chat/completions`, { model, messages });
  expect(res.status).toBe(200);
  return (await res.json()) as Completion;
}
async function reply(messages: Message[], model = 'llama', provider = 'sim-fast'): Promise<string> {
  return (await ask(messages, model, provider)).choices[0]!.message.content;
}
const user = (content: unknown): Message => ({ role: 'user', content });

describe('simulator replies', () => {
  it('are deterministic per model, provider and conversation', async () => {
    const conversation = [user('What are good habits for writing maintainable software?')];
    const first = await reply(conversation);
    expect(await reply(conversation)).toBe(first);
    expect(await reply(conversation, 'sim/llama')).toBe(first);
    expect(await reply(conversation, 'llama', 'sim-cheap')).not.toBe(first);
    expect(await reply(conversation, 'mini')).not.toBe(first);
  });

  it('depend on the history, not only on the last message', async () => {
    const last = user('What should I focus on next?');
    const a = await reply([user('I am learning the violin.'), { role: 'assistant', content: 'Nice.' }, last]);
    const b = await reply([user('I am training for a marathon.'), { role: 'assistant', content: 'Nice.' }, last]);
    expect(a).not.toBe(b);
  });

  it('are longer for llama than for mini', async () => {
    const prompts = ['Tell me about caching strategies.', 'How do compilers optimise loops?', 'Describe good API design.', 'Explain eventual consistency.'];
    let llama = 0;
    let mini = 0;
    for (const p of prompts) {
      llama += (await ask([user(p)], 'llama')).usage.completion_tokens;
      mini += (await ask([user(p)], 'mini')).usage.completion_tokens;
    }
    expect(llama).toBeGreaterThan(mini * 1.4);
  });

  it('say who they are and who serves them', async () => {
    expect(await reply([user('Who created you?')], 'mini', 'sim-cheap')).toMatch(/^I am mini, a model of the switchboard simulator, served here by the provider sim-cheap\./);
  });

  it('remember facts from earlier turns', async () => {
    const history: Message[] = [user('My name is Foo, I am 25 and I live in Lisbon.'), { role: 'assistant', content: 'Nice to meet you!' }];
    expect(await reply([...history, user('How old am I?')])).toMatch(/^You are 25 years old\./);
    expect(await reply([...history, user('What is my name?')])).toMatch(/^Your name is Foo\./);
    expect(await reply([...history, user('Where do I live?')], 'mini')).toBe('You live in Lisbon.');
    expect(await reply([user('What is my name?')], 'mini')).toBe("You haven't told me your name yet.");
  });

  it('echo on request and write exactly N tokens on request', async () => {
    expect(await reply([user('Repeat after me: the quick brown fox')])).toBe('the quick brown fox');
    const long = await ask([user('Write 2000 tokens about anything.')]);
    expect(long.usage.completion_tokens).toBe(2000);
    expect(tokenCount(long.choices[0]!.message.content)).toBe(2000);
  });

  it('write a code block when asked for code', async () => {
    const text = await reply([user('Write a typescript function that sums invoices.')]);
    expect(text).toMatch(/```ts\n[\s\S]+\n```/);
  });

  it('acknowledge OpenAI multimodal parts', async () => {
    const png = Buffer.alloc(1234, 1).toString('base64');
    const wav = Buffer.alloc(500, 2).toString('base64');
    const text = await reply([
      user([
        { type: 'text', text: 'What do you make of these?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
        { type: 'input_audio', input_audio: { data: wav, format: 'wav' } },
        { type: 'file', file: { filename: 'notes.pdf', file_data: `data:application/pdf;base64,${png}` } },
      ]),
    ]);
    expect(text).toMatch(/^I see an image \(image\/png, 1\.2 kB\), an audio clip \(audio\/wav, 500 B\) and a document named notes\.pdf \(application\/pdf, 1\.2 kB\)\./);
    const url = await reply([user([{ type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } }])]);
    expect(url).toMatch(/^I see an image at https:\/\/example\.com\/cat\.jpg\./);
  });
});
