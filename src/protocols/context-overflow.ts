/**
 * A server's own "the prompt is too long" answer, read as a ContextLengthError with its two
 * numbers, whichever protocol carried it. The shapes are those the servers publish:
 * - llama.cpp: `{"error":{"type":"exceed_context_size_error","n_prompt_tokens":4476,"n_ctx":4096,...}}`
 * - OpenAI and vLLM: "maximum context length is 4096 tokens. However, you requested 5000 tokens ..."
 * - Anthropic: "prompt is too long: 208310 tokens > 200000 maximum"
 */
import { ContextLengthError } from '../errors.js';

const MESSAGE_PATTERNS: { pattern: RegExp; required: number; context: number }[] = [
  { pattern: /maximum context length is (\d+) tokens\D*?(?:resulted in|requested) (\d+) tokens/i, context: 1, required: 2 },
  { pattern: /prompt is too long: (\d+) tokens > (\d+) maximum/i, required: 1, context: 2 },
];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

/** The error for a 400 that says the prompt does not fit, or undefined when it says something else. */
export function contextOverflowError(status: number, body: string, message: string, provider: string): ContextLengthError | undefined {
  if (status !== 400 && status !== 413) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const error = isRecord(parsed) && isRecord(parsed.error) ? parsed.error : undefined;
  if (error) {
    const required = count(error.n_prompt_tokens);
    const context = count(error.n_ctx);
    if (required !== undefined && context !== undefined) return new ContextLengthError(required, context, ` (${provider} says so)`, provider);
  }
  for (const { pattern, required, context } of MESSAGE_PATTERNS) {
    const match = pattern.exec(message);
    if (match) return new ContextLengthError(Number(match[required]), Number(match[context]), ` (${provider} says so)`, provider);
  }
  return undefined;
}
