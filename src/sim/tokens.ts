/**
 * The simulator's tokenizer: a word (a run of letters, marks, digits and `_`, in any script)
 * or a single other character (punctuation, a symbol, an emoji) is one token.
 * Not any real model's tokenizer, but simple, deterministic and honest: the counts the
 * simulator reports are exactly the tokens it read and streamed.
 */

const TOKEN = /[\p{L}\p{M}\p{N}_]+|[^\p{L}\p{M}\p{N}_\s]/gu;
/** One token with the whitespace before it; a streamed delta carries exactly one of these (never half a character). */
const PIECE = /\s*(?:[\p{L}\p{M}\p{N}_]+|[^\p{L}\p{M}\p{N}_\s])/gu;

/** Fixed tokens per message for its role and framing, as chat templates add. */
export const MESSAGE_OVERHEAD_TOKENS = 4;
/** Tokens that prime the assistant's reply, counted once per request. */
export const REPLY_PRIMING_TOKENS = 3;
/** What one attachment (image, audio, document) costs in prompt tokens, whatever its size. */
export const ATTACHMENT_TOKENS = 85;

export function countTokens(text: string): number {
  return text.match(TOKEN)?.length ?? 0;
}

/**
 * Split text into pieces of one token each, leading whitespace included, so that joining
 * the pieces gives the text back. Whitespace after the last token joins the last piece.
 */
export function splitTokens(text: string): string[] {
  const pieces = text.match(PIECE) ?? [];
  const consumed = pieces.reduce((n, p) => n + p.length, 0);
  if (consumed < text.length && pieces.length > 0) {
    pieces[pieces.length - 1] += text.slice(consumed);
  }
  return pieces;
}
