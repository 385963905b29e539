/**
 * Helpers for the simulator tests: plain fetch against a real simulator, and a tiny SSE
 * parser written independently of src/protocols so the tests check the wire, not our client.
 */

export interface SSEEvent {
  event?: string;
  data: string;
}

/** Split an SSE body into events (blank-line separated; `\r\n` or `\n`). */
export function parseSSE(body: string): SSEEvent[] {
  const events: SSEEvent[] = [];
  for (const block of body.split(/\r?\n\r?\n/)) {
    if (block.trim() === '') continue;
    const event: SSEEvent = { data: '' };
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) event.event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    event.data = data.join('\n');
    events.push(event);
  }
  return events;
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** The simulator's documented tokenizer rule, restated here: words in any script, and each other character. */
export function tokenCount(text: string): number {
  return text.match(/[\p{L}\p{M}\p{N}_]+|[^\p{L}\p{M}\p{N}_\s]/gu)?.length ?? 0;
}

/** Documented prompt accounting: 3 priming tokens, then 4 per message plus its tokens (and 85 per attachment). */
export function expectedPromptTokens(texts: string[], attachments = 0): number {
  return 3 + texts.reduce((n, t) => n + 4 + tokenCount(t), 0) + attachments * 85;
}
