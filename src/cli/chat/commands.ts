/** What a line typed in the chat is: a message to send, a command, or an unknown command. */

export type ChatCommandName =
  | 'model' | 'add' | 'drop' | 'system' | 'history' | 'usage' | 'reset' | 'retry' | 'save' | 'models' | 'help' | 'pause' | 'quit';

export type ParsedLine =
  | { kind: 'empty' }
  | { kind: 'message'; text: string }
  | { kind: 'command'; name: ChatCommandName; arg: string }
  | { kind: 'unknown'; name: string };

export const COMMANDS: { name: ChatCommandName; args: string; help: string }[] = [
  { name: 'model', args: 'MODEL', help: 'switch to another model, keeping the conversation (several models: /model OLD NEW)' },
  { name: 'add', args: 'MODEL', help: 'add a model to compare; it starts from the conversation so far' },
  { name: 'drop', args: 'MODEL', help: 'stop talking to a model' },
  { name: 'system', args: 'TEXT', help: 'set the system prompt (empty: remove it)' },
  { name: 'history', args: '', help: 'show the conversation' },
  { name: 'usage', args: '', help: 'tokens and cost so far, per model' },
  { name: 'reset', args: '', help: 'forget the conversation and start over' },
  { name: 'retry', args: '', help: 'ask the last message again; the new reply replaces the last one' },
  { name: 'save', args: 'FILE', help: 'write the chat (history, usage, turns) to a JSON file' },
  { name: 'models', args: '[QUERY]', help: 'list known models and their prices' },
  { name: 'help', args: '', help: 'this list' },
  { name: 'pause', args: '', help: 'leave, keeping the conversation: `switchboard chat --resume` continues it' },
  { name: 'quit', args: '', help: 'leave (also /exit, Ctrl-D, or Ctrl-C at the prompt)' },
];

const NAMES = new Map<string, ChatCommandName>([...COMMANDS.map((c): [string, ChatCommandName] => [c.name, c.name]), ['exit', 'quit'], ['?', 'help']]);

export function parseLine(line: string): ParsedLine {
  const text = line.trim();
  if (text === '') return { kind: 'empty' };
  // The seed's bare words.
  if (text === 'quit' || text === 'exit') return { kind: 'command', name: 'quit', arg: '' };
  if (text === 'pause') return { kind: 'command', name: 'pause', arg: '' };
  if (!text.startsWith('/')) return { kind: 'message', text };
  // "//..." sends a message that starts with a slash.
  if (text.startsWith('//')) return { kind: 'message', text: text.slice(1) };
  const match = /^\/(\S*)\s*([\s\S]*)$/.exec(text) as RegExpExecArray;
  const word = (match[1] ?? '').toLowerCase();
  const name = NAMES.get(word);
  if (!name) return { kind: 'unknown', name: word };
  return { kind: 'command', name, arg: (match[2] ?? '').trim() };
}

export function helpText(): string {
  const rows = COMMANDS.map((c) => `  /${`${c.name} ${c.args}`.trim().padEnd(16)} ${c.help}`);
  return ['Commands:', ...rows, '  Anything else is sent as a message (start it with // to send a leading slash).', '  Ctrl-C stops a reply as it streams.'].join('\n');
}
