/**
 * What the simulated models say. Replies are deterministic for a model, provider and
 * conversation (the caller seeds `rng` from a hash of the three), read like plain English,
 * and depend on the prompt and the history: a few rules make the simulator feel real
 * (who are you, remembering the user's name and age, echo, code, lists, long outputs),
 * and everything else gets a topical answer built from the prompt's key words.
 */
import { pick, type Rng } from './random.js';
import { splitTokens } from './tokens.js';
import type { Attachment, SimMessage, SimRequest } from './conversation.js';

export interface ReplyContext {
  /** Canonical model name (`llama`). */
  model: string;
  provider: string;
  /** Typical reply length in words, from the model's profile. */
  replyWords: number;
  rng: Rng;
}

/** The longest reply a "write N tokens" prompt may ask for. */
export const MAX_REQUESTED_TOKENS = 100_000;

const STOPWORDS = new Set(
  ('the and for are but not you all any can had her was one our out day get has him his how man new now old see two ' +
    'way who did its let put say she too use why yes may own got any off few big lot end try ask yet per via ' +
    'about above after again also because been before being below between both could does doing during each from ' +
    'further have having here hers herself himself into itself just more most myself once only other ought ourselves ' +
    'over same should some such than that their theirs them themselves then there these they this those through under ' +
    'until very were what when where which while whom with would your yours yourself yourselves please tell explain ' +
    'know want like think make give need thanks thank really maybe something anything things thing going good well ' +
    'hello okay sure much many every onto upon shall will write called named lately today always never ' +
    'tips list steps ideas options ways code function script program implement snippet python typescript ' +
    "javascript rust bash shell can't don't isn't it's i'm you're").split(' '),
);

/** Words that carry the topic, as written (proper nouns keep their capital), first mention order. */
export function keywords(text: string): string[] {
  const seen = new Map<string, string>();
  for (const word of text.match(/\p{L}[\p{L}\p{M}'-]{2,}|\p{Lo}{2,}/gu) ?? []) {
    const lower = word.toLowerCase();
    // A capitalised word mid-text is a name; otherwise compare and show in lower case.
    if (!STOPWORDS.has(lower) && !seen.has(lower)) seen.set(lower, /^\p{Lu}\p{Ll}/u.test(word) && text.indexOf(word) > 0 ? word : lower);
  }
  return [...seen.values()];
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function wordCount(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

// ---------------------------------------------------------------------------------------
// Facts the user told about themselves, remembered across turns.

interface Facts {
  name?: string;
  age?: string;
  place?: string;
  job?: string;
  favorites: Map<string, string>;
}

function extractFacts(messages: SimMessage[]): Facts {
  const facts: Facts = { favorites: new Map() };
  for (const message of messages) {
    if (message.role !== 'user') continue;
    const text = message.text;
    const name = /\b(?:my name is|call me)\s+(\p{Lu}[\p{L}\p{M}'-]*(?:\s+\p{Lu}[\p{L}\p{M}'-]*)?|\p{Lo}+)/iu.exec(text);
    if (name?.[1]) facts.name = name[1];
    const age = /\b(?:I(?:'m| am)|my age is)\s+(\d{1,3})\b(?!\s*(?:%|percent|kg|km|cm|m\b|minutes|hours|days))/i.exec(text);
    if (age?.[1]) facts.age = age[1];
    const place = /\bI (?:live in|am from|'m from|come from)\s+(\p{Lu}[\p{L}\p{M}'-]*(?:\s+\p{Lu}[\p{L}\p{M}'-]*)*|\p{Lo}+)/u.exec(text);
    if (place?.[1]) facts.place = place[1];
    const job = /\bI (?:work as|am working as|'m working as)\s+(?:an?\s+)?(\p{L}[\p{L}\p{M}\p{N}_ -]*?)(?=[.,;!?]|$| and\b)/iu.exec(text);
    if (job?.[1]) facts.job = job[1].trim();
    for (const fav of text.matchAll(/\bmy fav(?:ou?rite)\s+([\p{L}\p{N}_]+)\s+is\s+([\p{L}\p{M}\p{N}_' -]+?)(?=[.,;!?]|$| and\b)/giu)) {
      if (fav[1] && fav[2]) facts.favorites.set(fav[1].toLowerCase(), fav[2].trim());
    }
  }
  return facts;
}

/** Answers to questions about the user, or undefined when the prompt asks none. */
function answerFromMemory(prompt: string, facts: Facts): string[] | undefined {
  const answers: string[] = [];
  if (/\b(?:what(?:'s| is) my name|who am i\b|(?:know|remember) my name)/i.test(prompt)) {
    answers.push(facts.name ? `Your name is ${facts.name}.` : "You haven't told me your name yet.");
  }
  if (/\b(?:how old am i|what(?:'s| is) my age)/i.test(prompt)) {
    answers.push(facts.age ? `You are ${facts.age} years old.` : "You haven't told me your age yet.");
  }
  if (/\b(?:where do i live|where am i from|where do i come from)/i.test(prompt)) {
    answers.push(facts.place ? `You live in ${facts.place}.` : "You haven't told me where you live.");
  }
  if (/\b(?:what do i do for a living|what(?:'s| is) my job|where do i work)/i.test(prompt)) {
    answers.push(facts.job ? `You work as ${/^[aeiou]/i.test(facts.job) ? 'an' : 'a'} ${facts.job}.` : "You haven't told me what you do.");
  }
  for (const fav of prompt.matchAll(/\bwhat(?:'s| is) my fav(?:ou?rite)\s+([\p{L}\p{N}_]+)/giu)) {
    const thing = fav[1]?.toLowerCase() ?? '';
    const value = facts.favorites.get(thing);
    answers.push(value ? `Your favorite ${thing} is ${value}.` : `You haven't told me your favorite ${thing}.`);
  }
  return answers.length > 0 ? answers : undefined;
}

// ---------------------------------------------------------------------------------------
// Attachments: say what arrived.

function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

/** "an image (image/png, 1.2 kB)", "a PDF document report.pdf (application/pdf, 20.0 kB)". */
export function describeAttachment(attachment: Attachment): string {
  const noun = { image: 'an image', audio: 'an audio clip', document: 'a document', file: 'a file' }[attachment.kind];
  const details: string[] = [];
  if (attachment.mediaType) details.push(attachment.mediaType);
  if (attachment.bytes !== undefined) details.push(formatBytes(attachment.bytes));
  const name = attachment.filename ? ` named ${attachment.filename}` : '';
  const where = attachment.url ? ` at ${attachment.url}` : '';
  return `${noun}${name}${where}${details.length > 0 ? ` (${details.join(', ')})` : ''}`;
}

function acknowledgeAttachments(attachments: Attachment[], rng: Rng): string {
  const list = attachments.map(describeAttachment);
  const joined = list.length === 1 ? list[0] : `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}`;
  const tail = pick(rng, [
    "As a simulated model I can't look inside it, but I can tell it arrived intact.",
    'I only simulate reading it, so take my comments as placeholders.',
    'It came through fine; a real model would describe its contents here.',
  ]);
  return `I see ${joined}. ${tail}`;
}

// ---------------------------------------------------------------------------------------
// Topical prose from key words.

const TOPIC_SENTENCES = [
  'When it comes to {k}, the details matter more than the headline.',
  'A good first step is to pin down what {k} means in your setting.',
  '{K} and {k2} tend to influence each other, so it helps to look at them together.',
  'Most people who ask about {k} want something practical rather than theoretical.',
  'If you can share more about {k}, I can be more specific.',
  'One common mistake with {k} is to optimise before measuring.',
  'In short, {k} is manageable once the constraints are clear.',
  'It is worth writing down the assumptions behind {k} before you start.',
  'A small experiment usually tells you more about {k} than a long debate.',
  'Keep in mind that {k2} can change the picture.',
  'There are trade-offs here: speed, cost and clarity rarely line up perfectly.',
  'I would start simple, check the result, and only then add complexity.',
  'Examples help a lot, so try {k} on a concrete case first.',
  'The documentation on {k} is usually the fastest way to settle the details.',
];

const QUESTION_OPENINGS = ['Good question.', 'Short answer: it depends on {k}.', 'Here is how I would think about {k}.', 'Let me break that down.'];
const STATEMENT_OPENINGS = ['Thanks for sharing that.', 'Noted: {k} is on the table.', 'That sounds interesting, and {k} is a rich topic.', 'Understood.'];

function fill(template: string, words: string[], rng: Rng): string {
  const k = words.length > 0 ? pick(rng, words) : 'this';
  const others = words.filter((w) => w !== k);
  const k2 = others.length > 0 ? pick(rng, others) : 'the context';
  return template.replaceAll('{K}', capitalize(k)).replaceAll('{k}', k).replaceAll('{k2}', k2);
}

/** Shuffle a copy (Fisher-Yates) with the seeded generator. */
function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Append topical sentences until the text reaches `target` words (or ideas run out). */
function padTo(sentences: string[], target: number, words: string[], rng: Rng): void {
  const pool = shuffled(TOPIC_SENTENCES, rng);
  let count = sentences.reduce((n, s) => n + wordCount(s), 0);
  while (count < target && pool.length > 0) {
    const next = fill(pool.pop() as string, words, rng);
    sentences.push(next);
    count += wordCount(next);
  }
}

function markdownList(words: string[], rng: Rng): string {
  return words
    .slice(0, 4)
    .map((w, i) => {
      const other = words[(i + 1) % words.length] ?? 'the rest';
      const advice = pick(rng, ['start with the basics and measure.', `check how it interacts with ${other}.`, 'keep it simple at first.', 'write down what "done" looks like.']);
      return `- **${capitalize(w)}**: ${advice}`;
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------
// Code blocks.

function identifier(word: string): string {
  return word.replace(/[^a-z0-9]+/gi, '_').replace(/^_+|_+$/g, '') || 'items';
}

function codeBlock(prompt: string, words: string[]): string {
  const name = identifier(words[0]?.toLowerCase() ?? 'items');
  if (/typescript|\bts\b/i.test(prompt)) {
    return `\`\`\`ts\nexport function ${name}Summary(values: number[]): number {\n  return values.reduce((sum, v) => sum + v, 0);\n}\n\`\`\``;
  }
  if (/javascript|\bjs\b|node/i.test(prompt)) {
    return `\`\`\`js\nfunction ${name}Summary(values) {\n  return values.reduce((sum, v) => sum + v, 0);\n}\n\`\`\``;
  }
  if (/\brust\b/i.test(prompt)) {
    return `\`\`\`rust\nfn ${name}_summary(values: &[f64]) -> f64 {\n    values.iter().sum()\n}\n\`\`\``;
  }
  if (/\b(bash|shell)\b/i.test(prompt)) {
    return `\`\`\`bash\nfor f in ${name}/*; do\n  echo "$f"\ndone\n\`\`\``;
  }
  return `\`\`\`python\ndef ${name}_summary(values):\n    return sum(values)\n\`\`\``;
}

// ---------------------------------------------------------------------------------------
// Long outputs on request ("write 2000 tokens"), for benchmarks and length tests.

const LOREM = (
  'The quick brown fox jumps over the lazy dog while the simulator keeps streaming tokens , ' +
  'one at a time , so that clients , routers and benchmarks have something steady to measure .'
).split(' ');

/** Exactly `n` tokens of filler prose. */
export function filler(n: number): string {
  const words: string[] = [];
  for (let i = 0; words.length < n; i++) words.push(LOREM[i % LOREM.length] as string);
  // "word ," would read oddly; attach punctuation to the word before it (still one token each).
  const text = words.join(' ').replace(/ ([,.])/g, '$1');
  return splitTokens(text).slice(0, n).join('');
}

// ---------------------------------------------------------------------------------------

export function composeReply(request: SimRequest, ctx: ReplyContext): string {
  const { rng } = ctx;
  const lastUser = [...request.messages].reverse().find((m) => m.role === 'user');
  const prompt = lastUser?.text.trim() ?? '';

  // Echo: "say: hello", "repeat after me: ..." answers with the text itself, nothing else.
  const echo = /^(?:please\s+)?(?:say|repeat|echo)(?:\s+after\s+me)?\s*:?\s+([\s\S]+)$/i.exec(prompt);
  if (echo?.[1]) return echo[1].trim().replace(/^(["'])([\s\S]*)\1$/, '$2');

  // "write 2000 tokens": a reply of exactly that many tokens.
  const asked = /\b(\d{1,6})\s+(?:tokens|words)\b/i.exec(prompt);
  if (asked?.[1] && /\b(?:write|reply|answer|give|generate|produce|stream|respond)\b/i.test(prompt)) {
    return filler(Math.min(MAX_REQUESTED_TOKENS, Math.max(1, Number(asked[1]))));
  }

  const target = Math.round(ctx.replyWords * (0.75 + rng() * 0.5));
  const words = keywords(prompt);
  const earlier = request.messages.filter((m) => m !== lastUser && m.role === 'user').flatMap((m) => keywords(m.text));
  const sentences: string[] = [];
  if (lastUser && lastUser.attachments.length > 0) sentences.push(acknowledgeAttachments(lastUser.attachments, rng));

  if (/\bwho (?:are|created|made|built|trained) you\b|\bwhat are you\b|\bwhat(?:'s| is) your name\b|\bwhich model\b/i.test(prompt)) {
    sentences.push(
      `I am ${ctx.model}, a model of the switchboard simulator, served here by the provider ${ctx.provider}.`,
      pick(rng, [
        'I run offline on your machine, so no API key is needed and my replies are deterministic for a given conversation.',
        'Nobody trained me: I am a local stand-in that speaks the real wire protocols so you can test without keys.',
      ]),
    );
    return sentences.join(' ');
  }

  const remembered = answerFromMemory(prompt, extractFacts(request.messages));
  if (remembered) {
    sentences.push(...remembered);
    if (ctx.replyWords >= 50) sentences.push(pick(rng, ['You mentioned it earlier in our conversation.', 'That is what you told me before.']));
    return sentences.join(' ');
  }

  if (/^(?:hi|hello|hey|good (?:morning|afternoon|evening))\b/i.test(prompt) && words.length <= 2) {
    sentences.push(pick(rng, ['Hello! How can I help you today?', 'Hi there! What would you like to talk about?', 'Hey! What can I do for you?']));
    return sentences.join(' ');
  }

  const isQuestion = /\?\s*$/.test(prompt) || /^(?:how|what|why|when|where|which|who|can|could|should|is|are|do|does)\b/i.test(prompt);
  sentences.push(fill(pick(rng, isQuestion ? QUESTION_OPENINGS : STATEMENT_OPENINGS), words, rng));
  const fromBefore = earlier.filter((w) => !words.includes(w));
  if (fromBefore.length > 0 && rng() < 0.5) {
    sentences.push(`This connects to what you mentioned earlier about ${pick(rng, fromBefore)}.`);
  }

  if (/\b(?:code|function|script|program|implement|snippet)\b/i.test(prompt)) {
    sentences.push('Here is a minimal version to start from:');
    const intro = sentences.join(' ');
    const after: string[] = [];
    padTo(after, Math.max(0, target - wordCount(intro) - 12), words, rng);
    return [intro, codeBlock(prompt, words), ...(after.length > 0 ? [after.join(' ')] : [])].join('\n\n');
  }

  const wantsList = /\b(?:list|steps|ideas|options|ways|tips)\b/i.test(prompt) || (words.length >= 3 && rng() < 0.2);
  if (wantsList && words.length > 0) {
    const intro = `${sentences.join(' ')} A few points:`;
    const after: string[] = [];
    padTo(after, Math.max(0, target - wordCount(intro) - 8 * Math.min(4, words.length)), words, rng);
    return [intro, markdownList(words, rng), ...(after.length > 0 ? [after.join(' ')] : [])].join('\n\n');
  }

  padTo(sentences, target, words, rng);
  return sentences.join(' ');
}
