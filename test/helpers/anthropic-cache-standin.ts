/**
 * A local stand-in for Anthropic's Messages API that keeps a prompt cache by Anthropic's
 * rules (src/sim/prompt-cache.ts): it reads the `cache_control` breakpoints of each request,
 * reports cache reads and writes in `usage` as Anthropic does (input_tokens counts only what
 * came after the cache), and streams a fixed reply. Tokens are the simulator's (words and
 * punctuation marks), counted per segment: each tool's JSON, the system text, each block's text
 * (so a prompt's tokens are the sum of its segments', with no per-message framing).
 */
import { countTokens } from '../../src/sim/tokens.js';
import { PromptCacheModel, TooManyBreakpointsError, type PromptSegment } from '../../src/sim/prompt-cache.js';
import { sendJSON, sendSSE, sse, startStandIn, type StandIn } from './stand-in.js';

type Block = Record<string, unknown> & { type?: string; cache_control?: { type: string; ttl?: '5m' | '1h' } };

function segment(content: unknown, control: Block['cache_control'], where = ''): PromptSegment {
  const text = typeof content === 'string' ? content : JSON.stringify(content);
  const out: PromptSegment = { key: `${where}${text}`, tokens: countTokens(text) };
  if (control) out.breakpoint = control.ttl ?? '5m';
  return out;
}

/** Without its marker: the content a cache key covers. */
function bare(block: Block): Block {
  const { cache_control: _marker, ...rest } = block;
  return rest;
}

/** The request's segments in Anthropic's prefix order: tools, system, then message blocks. */
export function anthropicSegments(body: { tools?: Block[]; system?: string | Block[]; messages: { role: string; content: string | Block[] }[] }): PromptSegment[] {
  const out: PromptSegment[] = [];
  for (const tool of body.tools ?? []) out.push(segment(bare(tool), tool.cache_control));
  if (typeof body.system === 'string') out.push(segment(body.system, undefined));
  else for (const block of body.system ?? []) out.push(segment(block.text, block.cache_control));
  for (const message of body.messages) {
    const blocks: Block[] = typeof message.content === 'string' ? [{ type: 'text', text: message.content }] : message.content;
    for (const block of blocks) out.push(segment(block.type === 'text' ? String(block.text) : bare(block), block.cache_control, `${message.role}:`));
  }
  return out;
}

export interface CacheStandIn extends StandIn {
  /** Each request's usage as sent. */
  usages: { input_tokens: number; cache_read_input_tokens: number; cache_creation_input_tokens: number; output_tokens: number }[];
}

/** `reply(n)` is the text of the n-th answer (0-based). */
export async function startAnthropicCacheStandIn(reply: (n: number) => string, minimum = 1024): Promise<CacheStandIn> {
  const cache = new PromptCacheModel();
  const usages: CacheStandIn['usages'] = [];
  const server = await startStandIn(async (req, res) => {
    const body = JSON.parse(req.body) as Parameters<typeof anthropicSegments>[0] & { model: string };
    const segments = anthropicSegments(body);
    let use;
    try {
      use = cache.explicit(body.model, segments, minimum);
    } catch (err) {
      if (!(err instanceof TooManyBreakpointsError)) throw err;
      sendJSON(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: err.message } });
      return;
    }
    const prompt = segments.reduce((n, s) => n + s.tokens, 0);
    const text = reply(usages.length);
    const usage = {
      input_tokens: prompt - use.readTokens - use.writeTokens,
      cache_read_input_tokens: use.readTokens,
      cache_creation_input_tokens: use.writeTokens,
      cache_creation: { ephemeral_5m_input_tokens: use.writeTokens - use.write1hTokens, ephemeral_1h_input_tokens: use.write1hTokens },
      output_tokens: countTokens(text),
    };
    usages.push(usage);
    await sendSSE(
      res,
      sse([
        { event: 'message_start', data: { type: 'message_start', message: { id: `msg_${usages.length}`, type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } } } },
        { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
        { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } } },
        { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
        { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: usage.output_tokens } } },
        { event: 'message_stop', data: { type: 'message_stop' } },
      ]),
    );
  });
  return { ...server, usages };
}
