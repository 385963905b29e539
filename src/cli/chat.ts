/**
 * `switchboard chat`: a line-based chat. Type a message, the reply streams back; `pause`
 * or `quit` leave. (The full terminal chat, with commands, comparison and logs, builds on this.)
 */
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { chooseModels, collect } from './defaults.js';
import { commandContext, type CliIO } from './io.js';

export function registerChat(program: Command, io: CliIO): void {
  program
    .command('chat')
    .description('Chat with one model or several at once.')
    .option('-m, --model <model>', 'model to chat with (repeat to compare several)', collect, [])
    .option('-s, --system <text>', 'system prompt')
    .option('--show-cost', 'print the cost of each turn')
    .option('--show-provider', 'print the provider that answered')
    .action(async (flags: { model: string[]; system?: string; showCost?: boolean; showProvider?: boolean }) => {
      const { env, registry } = await commandContext(io);
      const models = chooseModels(flags.model, io);
      const { Chat } = await import('../chat.js');
      const chat = new Chat(models, { env, registry, ...(flags.system === undefined ? {} : { system: flags.system }) });
      const interactive = io.stdin.isTTY === true;
      const rl = createInterface({ input: io.stdin, terminal: false });
      if (interactive) io.stdout.write("Let's have a chat. (Enter `pause` to pause and `quit` to exit)\n> ");
      for await (const line of rl) {
        const text = line.trim();
        if (text === 'quit' || text === 'pause' || text === '/quit' || text === '/pause') break;
        if (text === '') {
          if (interactive) io.stdout.write('> ');
          continue;
        }
        try {
          for await (const event of chat.stream(text)) {
            if (event.type === 'text-delta' && models.length === 1) io.stdout.write(event.text);
            if (event.type === 'finish') {
              if (models.length > 1) io.stdout.write(`[${event.model}] ${event.result.text}`);
              io.stdout.write('\n');
              if (flags.showCost) io.stdout.write(`(spent $${(event.result.usage.cost ?? 0).toFixed(6)})\n`);
              if (flags.showProvider) io.stdout.write(`(provider: ${event.result.provider})\n`);
            }
            if (event.type === 'error') io.stderr.write(`switchboard: ${event.model}: ${event.error.message}\n`);
          }
        } catch (err) {
          io.stderr.write(`\nswitchboard: ${(err as Error).message}\n`);
        }
        if (interactive) io.stdout.write('> ');
      }
      rl.close();
    });
}
