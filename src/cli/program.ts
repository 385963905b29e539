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
import { registerLogs } from './logs.js';
import { registerModels } from './models.js';
import { registerSim } from './sim.js';
import { registerUsage } from './usage.js';

export function createProgram(io: CliIO): Command {
  const program = new Command('switchboard')
    .description('Every large language model behind one interface: chat, compare, stream, and pay for models sensibly.')
    .version(VERSION, '-v, --version')
    .showHelpAfterError('(run "switchboard --help" for usage)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride();
  registerAsk(program, io);
  registerChat(program, io);
  registerModels(program, io);
  registerSim(program, io);
  registerLogs(program, io);
  registerUsage(program, io);
  registerCache(program, io);
  return program;
}
