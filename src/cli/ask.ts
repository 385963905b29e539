/**
 * `switchboard ask`: one prompt, one or several models. Streams the reply of a single
 * model; with several, prints each reply, labelled, as it completes. `--json` prints one
 * object per model per line.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { StreamEvent, TurnResult } from '../types.js';
import { MODEL_DEFAULT_HELP, chooseModels, collect, requireKeys } from './defaults.js';
import { formatCost } from './chat/format.js';
import { openCommandCache } from './cache.js';
import { CLIError, cliMessage, commandContext, exitCodeFor, parseNumber, type CliIO } from './io.js';

interface AskFlags {
  model?: string[];
  system?: string;
  json?: boolean;
  temperature?: string;
  maxTokens?: string;
  timeout?: string;
  schema?: string;
  cache?: boolean;
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  stream.setEncoding?.('utf8');
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
  return text;
}

/** A JSON Schema from a file, for `--schema`. */
async function readSchema(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CLIError(`--schema: cannot read ${path} (${(err as Error).message}).`);
  }
  try {
    const schema: unknown = JSON.parse(text);
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new Error('expected a JSON object');
    return schema as Record<string, unknown>;
  } catch (err) {
    throw new CLIError(`--schema: ${path} is not a JSON Schema (${(err as Error).message}).`);
  }
}

/** The line `ask --json` prints for one model. */
export function jsonLine(model: string, result: TurnResult | undefined, error?: Error): string {
  if (!result) return JSON.stringify({ model, provider: null, text: null, usage: null, cost: null, ttftMs: null, latencyMs: null, error: error?.message ?? 'failed' });
  const { usage } = result;
  return JSON.stringify({
    model,
    provider: result.provider,
    resolvedModel: result.resolvedModel,
    text: result.text,
    usage: {
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
      totalTokens: usage.totalTokens,
      ...(usage.cachedTokens === undefined ? {} : { cachedTokens: usage.cachedTokens }),
      ...(usage.cacheWriteTokens === undefined ? {} : { cacheWriteTokens: usage.cacheWriteTokens }),
      ...(usage.reasoningTokens === undefined ? {} : { reasoningTokens: usage.reasoningTokens }),
    },
    cost: usage.cost,
    ...(usage.savedCost === undefined ? {} : { savedCost: usage.savedCost }),
    ...(result.cached ? { cached: true } : {}),
    ttftMs: result.ttftMs,
    latencyMs: result.latencyMs,
    tokensPerSecond: result.tokensPerSecond,
    finishReason: result.finishReason,
    ...(result.object === undefined ? {} : { object: result.object }),
  });
}

export function registerAsk(program: Command, io: CliIO): void {
  program
    .command('ask')
    .description('Ask one or several models once; the prompt comes from the arguments or standard input.')
    .argument('[prompt...]', 'the prompt (read from standard input when absent)')
    .option('-m, --model <model>', `model to ask; repeat to ask several at once (${MODEL_DEFAULT_HELP})`, collect)
    .option('-s, --system <text>', 'system prompt')
    .option('--json', 'print one JSON object per model per line')
    .option('-t, --temperature <n>', 'sampling temperature')
    .option('--max-tokens <n>', 'cap on output tokens')
    .option('--timeout <ms>', 'milliseconds a request may take')
    .option('--schema <file>', 'a JSON Schema file: the reply must satisfy it; prints the validated JSON')
    .option('--cache', 'answer a repeated request from the response cache ($SWITCHBOARD_HOME/response-cache.db)')
    .action(async (words: string[], flags: AskFlags) => {
      let prompt = words.join(' ');
      if (prompt === '') {
        if (io.stdin.isTTY) throw new CLIError('Give a prompt: switchboard ask "your question", or pipe it in.');
        prompt = (await readAll(io.stdin)).trim();
      }
      if (prompt === '') throw new CLIError('The prompt is empty.');
      const { env, registry } = await commandContext(io);
      const models = chooseModels(flags.model ?? [], io);
      const options = {
        env,
        registry,
        ...(flags.system === undefined ? {} : { system: flags.system }),
        ...(flags.temperature === undefined ? {} : { temperature: parseNumber(flags.temperature, '--temperature', { min: 0, max: 2 }) }),
        ...(flags.maxTokens === undefined ? {} : { maxTokens: parseNumber(flags.maxTokens, '--max-tokens', { min: 1, integer: true }) }),
        ...(flags.timeout === undefined ? {} : { timeout: parseNumber(flags.timeout, '--timeout', { min: 0, aboveMin: true }) }),
      };
      await requireKeys(models, options);
      // Imported here, not at the top: `switchboard --version` and `--help` stay quick.
      const { Call } = await import('../call.js');
      const store = flags.cache ? await openCommandCache(io) : undefined;
      try {
        const call = new Call(models, store ? { ...options, cache: { store } } : options);
        const schema = flags.schema === undefined ? undefined : await readSchema(flags.schema);
        const code = await printAnswers(call.stream(prompt, schema === undefined ? {} : { schema }), models, Boolean(flags.json), io, schema !== undefined);
        if (code > 0) process.exitCode = code;
      } finally {
        store?.close();
      }
    });
}

/**
 * Print a call's events: one model streams as it comes; several print labelled blocks (with
 * provider and cost) in `-m` order, each as soon as it and those before it are done; `json`
 * prints one line per model, in the same order. Returns the exit code: 0, or 2 when every
 * failure was a mistake to fix (a key, a model string), else 1.
 */
async function printAnswers(events: AsyncIterable<StreamEvent>, models: string[], json: boolean, io: CliIO, structured = false): Promise<number> {
  const streaming = models.length === 1 && !json && !structured;
  const codes: number[] = [];
  let streamed = false;
  const done = new Map<string, { out: string; err: string }>();
  let next = 0;
  const flush = (): void => {
    for (; next < models.length && done.has(models[next] as string); next++) {
      const { out, err } = done.get(models[next] as string) as { out: string; err: string };
      if (out) io.stdout.write(out);
      if (err) io.stderr.write(err);
    }
  };
  const finished = (model: string, result: TurnResult): void => {
    const body = structured ? JSON.stringify(result.object) : result.text;
    let out: string;
    if (json) out = `${jsonLine(model, result)}\n`;
    else if (streaming) out = streamed ? '\n' : '';
    else if (models.length === 1) out = `${body}\n`;
    else out = `── ${model} (${result.provider} · ${formatCost(result.usage.cost)}) ──\n${body}\n\n`;
    done.set(model, { out, err: '' });
    flush();
  };
  const failed = (model: string, error: Error): void => {
    codes.push(exitCodeFor(error));
    const line = json ? `${jsonLine(model, undefined, error)}\n` : '';
    // A reply cut midway ends its line before the error is said; nothing was printed otherwise.
    const out = streaming && streamed ? `\n${line}` : line;
    done.set(model, { out, err: json ? '' : `switchboard: ${models.length > 1 ? `${model}: ` : ''}${cliMessage(error)}\n` });
    flush();
  };
  try {
    for await (const event of events) {
      if (event.type === 'text-delta') {
        if (streaming && event.text !== '') {
          io.stdout.write(event.text);
          streamed = true;
        }
      } else if (event.type === 'finish') finished(event.model, event.result);
      else if (event.type === 'error') failed(event.model, event.error);
    }
  } catch (err) {
    // With one model its failure is thrown rather than sent as an event.
    if (!(err instanceof Error) || models.length > 1) throw err;
    failed(models[0] as string, err);
  }
  if (codes.length === 0) return 0;
  return codes.every((c) => c === 2) ? 2 : 1;
}
