/**
 * The `switchboard` command line: one file per command, each registering itself on the
 * commander program with the injected IO.
 */
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { registerAsk } from './ask.js';
import { registerCache } from './cache.js';
import { registerChat } from './chat.js';
import type { CliIO } from './io.js';
import { registerKeys } from './keys.js';
import { registerLogs } from './logs.js';
import { registerModels } from './models.js';
import { registerServe } from './serve.js';
import { registerSim } from './sim.js';
import { registerUsage } from './usage.js';

export function createProgram(io: CliIO): Command {
  const program = new Command('switchboard')
    .description('Every large language model behind one interface: chat, compare, stream, and pay for models sensibly.')
    .version(VERSION, '-v, --version')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride();
  registerAsk(program, io);
  registerChat(program, io);
  registerModels(program, io);
  registerSim(program, io);
  registerServe(program, io);
  registerLogs(program, io);
  registerUsage(program, io);
  registerCache(program, io);
  registerKeys(program, io);
  program.addHelpText(
    'after',
    `
Environment:
  SWITCHBOARD_MODEL   the model (or comma-separated models) used when -m is left out
  OPENROUTER_API_KEY  and each provider's own key variable (see README), read from .env too
  SWITCHBOARD_HOME    where the conversation log and measurements live (default: ~/.switchboard)
  NO_COLOR            no colours`,
  );
  oneLineErrors(program);
  return program;
}

/**
 * commander's mistakes (unknown option, missing argument...) as one line that says what to
 * do: `switchboard: unknown option '--modle'; did you mean --model? (see: switchboard ask --help)`.
 * bin.ts exits 2 for them.
 */
function oneLineErrors(command: Command): void {
  const path: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) path.unshift(c.name());
  const output = command.configureOutput();
  command.configureOutput({
    ...output,
    outputError: (text, write) => {
      const [first = '', ...rest] = text.trim().split('\n');
      const hint = rest.map((line) => line.replace(/^\((.*)\)$/, '$1').replace(/^Did you mean/, 'did you mean')).join(' ');
      write(`switchboard: ${first.replace(/^error: /, '')}${hint ? `; ${hint}` : ''} (see: ${path.join(' ')} --help)\n`);
    },
  });
  for (const sub of command.commands) oneLineErrors(sub);
}
