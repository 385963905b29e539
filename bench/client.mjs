/**
 * Client overhead benchmark: switchboard against plain fetch + eventsource-parser, the
 * official `openai` SDK and the Vercel AI SDK, all talking to the same local upstream.
 *
 * The upstream is a node:http server speaking OpenAI Chat Completions, run in a worker
 * thread of this process so it does not share the client's event loop. Every reply is
 * built once and then sent as ready-made bytes, so the server costs next to nothing.
 * The model name says what to answer: `bench-t<tokens>-d<delay ms>[-<tag>]`.
 *
 * Contenders run interleaved (round robin, rotating who goes first) after a warm-up, and
 * GC is forced between phases when node runs with --expose-gc. Figures are medians (p90
 * beside them). The last line of output is one JSON object with the ratios.
 *
 * A last phase measures the simulator's own cost: the same 2,000-token reply streamed by the
 * built-in simulator in each protocol, read whole by plain fetch. With `--old-sim=DIR` (the
 * `dist/` of an earlier build) the earlier simulator serves beside it, side by side.
 *
 *   npm run bench:client                 full run (about a minute)
 *   npm run bench:client -- --quick      fewer iterations, for a quick look
 *   npm run bench:client -- --only=sim --old-sim=/tmp/old-dist
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';

const STREAM_CHUNKS = 2000;
const SHORT_REPLY = 20;
const FANOUT_TOKENS = 100;
const FANOUT_DELAY_MS = 50;

/* ------------------------------------------------------------------ upstream server */

function tokenText(i) {
  return ` w${i % 100}`;
}

function expectedText(tokens) {
  let s = '';
  for (let i = 0; i < tokens; i++) s += tokenText(i);
  return s;
}

function parseModel(model) {
  const m = /^bench-t(\d+)-d(\d+)/.exec(String(model));
  return m ? { tokens: Number(m[1]), delay: Number(m[2]) } : { tokens: SHORT_REPLY, delay: 0 };
}

function buildReply(model, stream) {
  const { tokens, delay } = parseModel(model);
  const id = 'chatcmpl-bench';
  const created = 1700000000;
  const usage = { prompt_tokens: 8, completion_tokens: tokens, total_tokens: 8 + tokens };
  if (!stream) {
    const body = JSON.stringify({
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: expectedText(tokens) }, finish_reason: 'stop' }],
      usage,
    });
    const bytes = Buffer.from(body);
    return { delay, bytes, headers: { 'content-type': 'application/json', 'content-length': bytes.length } };
  }
  const parts = [];
  const chunk = (delta, finish) =>
    `data: ${JSON.stringify({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    })}\n\n`;
  parts.push(chunk({ role: 'assistant', content: '' }, null));
  // N one-token chunks; the last one carries the finish reason, as OpenAI sends it.
  for (let i = 0; i < tokens; i++) parts.push(chunk({ content: tokenText(i) }, i === tokens - 1 ? 'stop' : null));
  parts.push(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`);
  parts.push('data: [DONE]\n\n');
  const bytes = Buffer.from(parts.join(''));
  return {
    delay,
    bytes,
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'content-length': bytes.length },
  };
}

/** The same reply in Anthropic Messages' stream format. */
function buildAnthropicReply(model) {
  const { tokens } = parseModel(model);
  const ev = (event, data) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  const parts = [
    ev('message_start', { type: 'message_start', message: { id: 'msg_bench', type: 'message', role: 'assistant', model, content: [], stop_reason: null, usage: { input_tokens: 8, output_tokens: 1 } } }),
    ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
  ];
  for (let i = 0; i < tokens; i++) parts.push(ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: tokenText(i) } }));
  parts.push(ev('content_block_stop', { type: 'content_block_stop', index: 0 }));
  parts.push(ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: tokens } }));
  parts.push(ev('message_stop', { type: 'message_stop' }));
  const bytes = Buffer.from(parts.join(''));
  return { delay: 0, bytes, headers: { 'content-type': 'text/event-stream', 'content-length': bytes.length } };
}

/** The same reply in Gemini's streamGenerateContent (alt=sse) format. */
function buildGeminiReply(model) {
  const { tokens } = parseModel(model);
  const parts = [];
  for (let i = 0; i < tokens; i++) {
    const last = i === tokens - 1;
    const chunk = { candidates: [{ content: { parts: [{ text: tokenText(i) }], role: 'model' }, index: 0, ...(last ? { finishReason: 'STOP' } : {}) }], modelVersion: model };
    if (last) chunk.usageMetadata = { promptTokenCount: 8, candidatesTokenCount: tokens, totalTokenCount: 8 + tokens };
    parts.push(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
  }
  const bytes = Buffer.from(parts.join(''));
  return { delay: 0, bytes, headers: { 'content-type': 'text/event-stream', 'content-length': bytes.length } };
}

function runServer() {
  const replies = new Map();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"bad json"}}');
        return;
      }
      // OpenAI at /v1/chat/completions, Anthropic at /v1/messages, Gemini at /v1beta/models/M:...
      const gemini = /^\/v1beta\/models\/([^:]+):streamGenerateContent/.exec(req.url ?? '');
      const protocol = gemini ? 'gemini' : req.url === '/v1/messages' ? 'anthropic' : 'openai';
      const model = gemini ? decodeURIComponent(gemini[1]) : body.model;
      const key = `${protocol}|${model}|${body.stream ? 1 : 0}`;
      let reply = replies.get(key);
      if (!reply) {
        reply = protocol === 'gemini' ? buildGeminiReply(model) : protocol === 'anthropic' ? buildAnthropicReply(model) : buildReply(model, body.stream === true);
        replies.set(key, reply);
      }
      const send = () => {
        res.writeHead(200, reply.headers);
        res.end(reply.bytes);
      };
      if (reply.delay > 0) setTimeout(send, reply.delay);
      else send();
    });
  });
  server.keepAliveTimeout = 120_000;
  server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
}

/* ------------------------------------------------------------------ harness */

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function summarize(times) {
  const sorted = [...times].sort((a, b) => a - b);
  return { median: percentile(sorted, 50), p90: percentile(sorted, 90), n: sorted.length };
}

const gc = typeof globalThis.gc === 'function' ? globalThis.gc : null;

/** Warm up, then run the contenders interleaved, rotating which goes first each round. */
async function measure(contenders, { warmup, iterations }) {
  for (let i = 0; i < warmup; i++) for (const c of contenders) await c.run();
  gc?.();
  const times = contenders.map(() => []);
  const n = contenders.length;
  for (let i = 0; i < iterations; i++) {
    for (let k = 0; k < n; k++) {
      const j = (i + k) % n;
      const c = contenders[j];
      const t0 = performance.now();
      await c.run();
      times[j].push(performance.now() - t0);
    }
  }
  gc?.();
  const out = {};
  contenders.forEach((c, j) => (out[c.name] = summarize(times[j])));
  return out;
}

/** Every contender must produce the same text, or the comparison means nothing. */
async function check(contenders, expected) {
  for (const c of contenders) {
    const text = await c.run();
    if (typeof text !== 'string' || text !== expected) {
      throw new Error(`${c.name} returned ${JSON.stringify(String(text).slice(0, 80))}... (length ${String(text).length}), expected length ${expected.length}`);
    }
  }
}

/* ------------------------------------------------------------------ contenders */

async function main() {
  const quick = process.argv.includes('--quick');
  // --only=nonstream|stream|protocols|fanout runs one phase (handy with node --cpu-prof).
  const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
  const phase = (name) => only === undefined || only === name;
  const worker = new Worker(new URL(import.meta.url));
  const { port } = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const baseURL = `http://127.0.0.1:${port}/v1`;
  const apiKey = 'sk-bench-local-0000';

  globalThis.AI_SDK_LOG_WARNINGS = false;
  const { Call, Chat, ProviderRegistry } = await import('../dist/index.js');
  const { createParser } = await import('eventsource-parser');
  const { default: OpenAI } = await import('openai');
  const { streamText } = await import('ai');
  const { createOpenAICompatible } = await import('@ai-sdk/openai-compatible');

  const url = `${baseURL}/chat/completions`;
  const messages = [{ role: 'user', content: 'hi' }];
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` };

  const fetchJSON = async (model) => {
    const res = await fetch(url, { method: 'POST', headers: { ...headers, accept: 'application/json' }, body: JSON.stringify({ model, messages }) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const body = await res.json();
    return body.choices[0].message.content;
  };

  // The honest minimal baseline: read the body, feed the SSE parser, parse each event's JSON once.
  const fetchSSE = async (model) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { ...headers, accept: 'text/event-stream' },
      body: JSON.stringify({ model, messages, stream: true, stream_options: { include_usage: true } }),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    let text = '';
    const parser = createParser({
      onEvent(event) {
        if (event.data === '[DONE]') return;
        const chunk = JSON.parse(event.data);
        const content = chunk.choices[0]?.delta?.content;
        if (content) text += content;
      },
    });
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
    }
    return text;
  };

  const openai = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
  const openaiStream = async (model) => {
    const stream = await openai.chat.completions.create({ model, messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    return text;
  };
  const openaiJSON = async (model) => {
    const r = await openai.chat.completions.create({ model, messages });
    return r.choices[0].message.content;
  };

  const aiProvider = createOpenAICompatible({ baseURL, name: 'bench', apiKey, includeUsage: true });
  const aisdkStream = async (model) => {
    const result = streamText({ model: aiProvider(model), prompt: 'hi', maxRetries: 0 });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    return text;
  };

  const sbOptions = { baseURL, apiKey };
  const streamModel = `bench-t${STREAM_CHUNKS}-d0`;
  const shortModel = `bench-t${SHORT_REPLY}-d0`;
  const sbCall = new Call(streamModel, sbOptions);
  const sbCallStream = async () => {
    let text = '';
    for await (const event of sbCall.stream('hi')) if (event.type === 'text-delta') text += event.text;
    return text;
  };
  const sbChat = new Chat(streamModel, sbOptions);
  const sbChatStream = async () => {
    sbChat.reset(); // keep the request the same size every round
    let text = '';
    for await (const event of sbChat.stream('hi')) if (event.type === 'text-delta') text += event.text;
    return text;
  };
  const sbShort = new Call(shortModel, sbOptions);

  const results = {};

  // --- non-streaming: one short reply per call
  const nonStream = [
    { name: 'fetch (JSON)', run: () => fetchJSON(shortModel) },
    { name: 'switchboard Call.run', run: () => sbShort.run('hi') },
    // Call.run streams under the hood; this row shows what streaming the same reply costs plain fetch.
    { name: 'fetch (SSE, same reply)', run: () => fetchSSE(shortModel) },
    { name: 'openai SDK (JSON)', run: () => openaiJSON(shortModel) },
  ];
  await check(nonStream, expectedText(SHORT_REPLY));
  if (phase('nonstream')) results.nonStream = await measure(nonStream, quick ? { warmup: 200, iterations: 500 } : { warmup: 1000, iterations: 3000 });

  // --- streaming: one 2,000-chunk reply per call
  const streaming = [
    { name: 'fetch + eventsource-parser', run: () => fetchSSE(streamModel) },
    { name: 'switchboard Call.stream', run: sbCallStream },
    { name: 'switchboard Chat.stream', run: sbChatStream },
    { name: 'openai SDK', run: () => openaiStream(streamModel) },
    { name: 'AI SDK streamText', run: () => aisdkStream(streamModel) },
  ];
  await check(streaming, expectedText(STREAM_CHUNKS));
  if (phase('stream')) results.stream = await measure(streaming, quick ? { warmup: 10, iterations: 20 } : { warmup: 30, iterations: 80 });

  // --- the same 2,000-chunk stream through each wire protocol (local providers on the upstream)
  const origin = `http://127.0.0.1:${port}`;
  const registry = new ProviderRegistry([
    { name: 'bench-openai', protocol: 'openai', baseURL: `${origin}/v1`, keyEnv: [] },
    { name: 'bench-anthropic', protocol: 'anthropic', baseURL: origin, keyEnv: [] },
    { name: 'bench-gemini', protocol: 'gemini', baseURL: origin, keyEnv: [] },
  ]);
  const protocolStream = (provider) => {
    const call = new Call(`${streamModel}@${provider}`, { registry, env: {}, apiKey: apiKey });
    return async () => {
      let text = '';
      for await (const e of call.stream('hi')) if (e.type === 'text-delta') text += e.text;
      return text;
    };
  };
  const protocols = [
    { name: 'OpenAI Chat Completions', run: protocolStream('bench-openai') },
    { name: 'Anthropic Messages', run: protocolStream('bench-anthropic') },
    { name: 'Gemini streamGenerateContent', run: protocolStream('bench-gemini') },
  ];
  await check(protocols, expectedText(STREAM_CHUNKS));
  if (phase('protocols')) results.protocols = await measure(protocols, quick ? { warmup: 10, iterations: 20 } : { warmup: 30, iterations: 80 });

  // --- fan-out: five models of equal latency at once, against one
  const fanModels = [1, 2, 3, 4, 5].map((i) => `bench-t${FANOUT_TOKENS}-d${FANOUT_DELAY_MS}-m${i}`);
  const fanFive = new Call(fanModels, sbOptions);
  const fanOne = new Call(`bench-t${FANOUT_TOKENS}-d${FANOUT_DELAY_MS}-m0`, sbOptions);
  const fanout = [
    { name: 'switchboard Call(1 model).run', run: () => fanOne.run('hi') },
    {
      name: 'switchboard Call(5 models).run',
      run: async () => {
        const replies = await fanFive.run('hi');
        for (const m of fanModels) if (typeof replies[m] !== 'string') throw new Error(`${m}: ${replies[m]}`);
        return replies[fanModels[0]];
      },
    },
  ];
  await check(fanout, expectedText(FANOUT_TOKENS));
  if (phase('fanout')) results.fanout = await measure(fanout, quick ? { warmup: 5, iterations: 20 } : { warmup: 10, iterations: 60 });

  await worker.terminate();

  // --- the simulator's own cost: one 2,000-token stream per protocol, read whole by fetch
  if (phase('sim')) {
    const { startSimulator } = await import('../dist/sim/server.js');
    const oldDir = process.argv.find((a) => a.startsWith('--old-sim='))?.slice(10);
    const sims = [{ tag: 'server halves', sim: await startSimulator({ timeScale: 0 }) }];
    if (oldDir) {
      const { pathToFileURL } = await import('node:url');
      const old = await import(pathToFileURL(`${oldDir.replace(/\/+$/, '')}/sim/server.js`).href);
      sims.push({ tag: 'before', sim: await old.startSimulator({ timeScale: 0 }) });
    }
    const prompt = `Write ${STREAM_CHUNKS} tokens.`;
    const requests = {
      openai: (origin) => [`${origin}/sim-fast/v1/chat/completions`, { model: 'llama', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: prompt }] }],
      anthropic: (origin) => [`${origin}/sim-anthropic/v1/messages`, { model: 'llama', stream: true, max_tokens: 4096, messages: [{ role: 'user', content: prompt }] }],
      gemini: (origin) => [`${origin}/sim-gemini/v1beta/models/llama:streamGenerateContent?alt=sse`, { contents: [{ role: 'user', parts: [{ text: prompt }] }] }],
    };
    const simContenders = [];
    for (const [protocol, build] of Object.entries(requests)) {
      for (const { tag, sim } of sims) {
        const [simURL, body] = build(sim.url);
        const json = JSON.stringify(body);
        simContenders.push({
          name: `sim ${protocol} (${tag})`,
          run: async () => {
            const res = await fetch(simURL, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json });
            if (!res.ok) throw new Error(`HTTP ${res.status}`);
            return res.text();
          },
        });
      }
    }
    // The simulator's own work alone, without HTTP: every frame of a planned 2,000-token turn.
    if (oldDir) {
      const { pathToFileURL } = await import('node:url');
      const oldURL = (file) => pathToFileURL(`${oldDir.replace(/\/+$/, '')}/sim/${file}`).href;
      const { planTurn, turnEvents } = await import('../dist/sim/turn.js');
      const { getProtocolServer } = await import('../dist/protocols/index.js');
      const { SIM_MODELS, SIM_PROVIDERS } = await import('../dist/sim/profiles.js');
      const oldWires = { openai: 'openai-wire.js', anthropic: 'anthropic-wire.js', gemini: 'gemini-wire.js' };
      const simRequest = { model: 'llama', system: '', messages: [{ role: 'user', text: prompt, attachments: [] }], stream: true, includeUsage: true };
      const turn = planTurn(simRequest, 'sim-fast', SIM_PROVIDERS['sim-fast'], SIM_MODELS.llama, 0);
      const framesContenders = [];
      for (const protocol of Object.keys(oldWires)) {
        const wire = Object.values(await import(oldURL(oldWires[protocol]))).find((v) => typeof v === 'object' && v?.streamEncoder);
        framesContenders.push({
          name: `frames ${protocol} (before)`,
          run: async () => {
            const e = wire.streamEncoder(turn, simRequest);
            let out = e.head();
            for (let i = 0; i < turn.pieces.length; i++) out += e.piece(turn.pieces[i], i);
            return out + e.tail();
          },
        });
        framesContenders.push({
          name: `frames ${protocol} (server halves)`,
          run: async () => {
            const writer = getProtocolServer(protocol).createStreamWriter({ id: turn.id, model: turn.model, created: turn.created, provider: 'sim-fast', promptTokens: turn.promptTokens, includeUsage: true });
            const events = turnEvents(turn);
            let out = writer.start() + writer.write(events.before);
            for (let i = 0; i < turn.pieces.length; i++) out += writer.write([{ type: 'text-delta', text: turn.pieces[i] }]);
            return out + writer.write(events.after) + writer.end(events.end);
          },
        });
      }
      results.frames = await measure(framesContenders, quick ? { warmup: 20, iterations: 100 } : { warmup: 50, iterations: 300 });
    }
    // Each simulator must send a full stream (frames differ in shape, so compare sizes loosely).
    for (const c of simContenders) if ((await c.run()).length < STREAM_CHUNKS * 10) throw new Error(`${c.name}: stream too short`);
    results.sim = await measure(simContenders, quick ? { warmup: 10, iterations: 20 } : { warmup: 20, iterations: 60 });
    results.simHasOld = oldDir !== undefined;
    for (const { sim } of sims) await sim.close();
  }

  /* ---------------------------------------------------------------- report */
  const ns = results.nonStream;
  const st = results.stream;
  const fo = results.fanout;
  const pr = results.protocols;
  const r = (x) => Math.round(x * 1000) / 1000;
  const ms = (x) => (x < 1 ? x.toFixed(3) : x.toFixed(2)).padStart(9);
  const median = (name, rows) => rows[name].median;

  const lines = [];
  lines.push(`switchboard client benchmark: node ${process.version}, gc between phases: ${gc ? 'yes' : 'no (run with --expose-gc)'}${quick ? ', --quick' : ''}`);
  lines.push('');
  const table = (title, rows, baseName, extra) => {
    lines.push(title);
    lines.push(`  ${'contender'.padEnd(32)}${'median ms'.padStart(10)}${'p90 ms'.padStart(10)}${extra ? extra.head.padStart(11) : ''}${'ratio'.padStart(8)}`);
    for (const [name, s] of Object.entries(rows)) {
      const ratio = s.median / rows[baseName].median;
      lines.push(`  ${name.padEnd(32)}${ms(s.median)} ${ms(s.p90)}${extra ? extra.cell(s).padStart(11) : ''}${ratio.toFixed(2).padStart(8)}`);
    }
    lines.push('');
  };
  const summary = {};
  if (ns) {
    table(`Non-streaming, ${SHORT_REPLY}-token reply (${ns['fetch (JSON)'].n} calls each; ratio vs fetch)`, ns, 'fetch (JSON)');
    summary.nonStreamVsFetch = r(median('switchboard Call.run', ns) / median('fetch (JSON)', ns));
  }
  if (st) {
    table(`Streaming, ${STREAM_CHUNKS}-chunk reply (${st['fetch + eventsource-parser'].n} streams each; ratio vs fetch + eventsource-parser)`, st, 'fetch + eventsource-parser', {
      head: 'us/chunk',
      cell: (s) => ((s.median * 1000) / STREAM_CHUNKS).toFixed(2),
    });
    // Per-chunk cost is stream time / chunks, so the per-chunk ratio is the ratio of stream times.
    const sb = Math.max(median('switchboard Call.stream', st), median('switchboard Chat.stream', st));
    summary.streamChunkVsRaw = r(sb / median('fetch + eventsource-parser', st));
    summary.streamChunkVsOpenAI = r(sb / median('openai SDK', st));
    summary.streamChunkVsAISDK = r(sb / median('AI SDK streamText', st));
  }
  if (pr) {
    table(`Each wire protocol, the same ${STREAM_CHUNKS}-chunk stream through switchboard (${pr['OpenAI Chat Completions'].n} streams each; ratio vs OpenAI)`, pr, 'OpenAI Chat Completions', {
      head: 'us/chunk',
      cell: (x) => ((x.median * 1000) / STREAM_CHUNKS).toFixed(2),
    });
    summary.anthropicVsOpenAIPath = r(median('Anthropic Messages', pr) / median('OpenAI Chat Completions', pr));
    summary.geminiVsOpenAIPath = r(median('Gemini streamGenerateContent', pr) / median('OpenAI Chat Completions', pr));
  }
  if (fo) {
    table(`Fan-out, ${FANOUT_DELAY_MS} ms upstream latency, ${FANOUT_TOKENS}-token replies (${fo['switchboard Call(1 model).run'].n} runs each; ratio vs one model)`, fo, 'switchboard Call(1 model).run');
    summary.fanout5VsOne = r(median('switchboard Call(5 models).run', fo) / median('switchboard Call(1 model).run', fo));
  }
  const sm = results.sim;
  if (sm) {
    const base = results.simHasOld ? 'sim openai (before)' : 'sim openai (server halves)';
    table(`The simulator serving a ${STREAM_CHUNKS}-token stream, read whole by fetch (${sm[base].n} streams each; ratio vs ${base})`, sm, base, {
      head: 'us/chunk',
      cell: (x) => ((x.median * 1000) / STREAM_CHUNKS).toFixed(2),
    });
    if (results.simHasOld) {
      for (const protocol of ['openai', 'anthropic', 'gemini']) {
        summary[`sim${protocol[0].toUpperCase()}${protocol.slice(1)}VsBefore`] = r(median(`sim ${protocol} (server halves)`, sm) / median(`sim ${protocol} (before)`, sm));
      }
    }
  }
  const fr = results.frames;
  if (fr) {
    table(`The simulator's own work: every frame of a ${STREAM_CHUNKS}-token turn, no HTTP (${fr['frames openai (before)'].n} turns each; ratio vs OpenAI before)`, fr, 'frames openai (before)');
    for (const protocol of ['openai', 'anthropic', 'gemini']) {
      summary[`frames${protocol[0].toUpperCase()}${protocol.slice(1)}VsBefore`] = r(median(`frames ${protocol} (server halves)`, fr) / median(`frames ${protocol} (before)`, fr));
    }
  }
  const targets = { simOpenaiVsBefore: 1.2, simAnthropicVsBefore: 1.2, simGeminiVsBefore: 1.2, framesOpenaiVsBefore: 1.2, framesAnthropicVsBefore: 1.2, framesGeminiVsBefore: 1.2, nonStreamVsFetch: 1.15, streamChunkVsRaw: 1.3, streamChunkVsOpenAI: 0.6, anthropicVsOpenAIPath: 1.3, geminiVsOpenAIPath: 1.3, fanout5VsOne: 1.15 };
  lines.push('Ratios (switchboard stream time = the slower of Call.stream and Chat.stream)');
  for (const [key, value] of Object.entries(summary)) {
    const target = targets[key];
    const verdict = target === undefined ? 'informational' : value <= target ? `target <= ${target}: met` : `target <= ${target}: MISSED`;
    lines.push(`  ${key.padEnd(22)}${value.toFixed(3).padStart(8)}   ${verdict}`);
  }
  console.log(lines.join('\n'));

  const medians = (rows) => rows && Object.fromEntries(Object.entries(rows).map(([k, s]) => [k, r(s.median)]));
  const p90s = (rows) => rows && Object.fromEntries(Object.entries(rows).map(([k, s]) => [k, r(s.p90)]));
  const detail = {
    streamChunks: STREAM_CHUNKS,
    nonStreamMedianMs: medians(ns),
    streamMedianMs: medians(st),
    streamP90Ms: p90s(st),
    protocolMedianMs: medians(pr),
    fanoutMedianMs: medians(fo),
    simMedianMs: medians(results.sim),
    framesMedianMs: medians(results.frames),
    node: process.version,
    exposeGC: gc !== null,
  };
  console.log(JSON.stringify({ ...summary, ...detail }));
}

if (isMainThread) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
} else {
  runServer();
}
