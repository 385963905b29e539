#!/usr/bin/env node
/**
 * The one place that turns errors into exit codes: 0 for help and version, 2 for a user's
 * mistake (one line saying what to do), 1 for a runtime failure (one line); anything else is
 * a bug and is thrown with its stack.
 */
import { CommanderError } from 'commander';
import { SwitchboardError } from '../errors.js';
import { CLIError, cliMessage, exitCodeFor, processIO } from './io.js';
import { createProgram } from './program.js';

// `switchboard ... | head`: the reader left; stop quietly, as other command-line tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

const io = processIO();
const program = createProgram(io);
try {
  if (process.argv.length <= 2) program.outputHelp();
  else await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    const shown = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
    process.exitCode = shown ? err.exitCode : 2;
  } else if (err instanceof CLIError || err instanceof SwitchboardError) {
    io.stderr.write(`switchboard: ${cliMessage(err)}\n`);
    process.exitCode = exitCodeFor(err);
  } else {
    throw err;
  }
}
