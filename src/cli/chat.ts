/**
 * `switchboard chat`: chat in the terminal with one model or several side by side.
 * The chat itself loads when the command runs (see chat/repl.ts); docs/chat.md describes it.
 */
import type { Command } from 'commander';
import { MODEL_DEFAULT_HELP, collect } from './defaults.js';
import type { CliIO } from './io.js';

export function registerChat(program: Command, io: CliIO): void {
  program
    .command('chat')
    .description('Chat with one model or several at once (type /help inside for the commands).')
    .option('-m, --model <model>', `model to chat with; repeat to compare several (${MODEL_DEFAULT_HELP})`, collect)
    .option('-s, --system <text>', 'system prompt')
    .option('--show-cost', "print each turn's cost and the session total")
    .option('--show-provider', 'print the provider that answered each turn')
    .option('--resume [id]', 'continue the last paused conversation (or the one with this id)')
    .action(async (flags: { model?: string[]; system?: string; showCost?: boolean; showProvider?: boolean; resume?: string | boolean }) => {
      const { runChat } = await import('./chat/repl.js');
      await runChat(io, { ...flags, model: flags.model ?? [] });
    });
}
