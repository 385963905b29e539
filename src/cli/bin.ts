#!/usr/bin/env node
import { CommanderError } from 'commander';
import { SwitchboardError } from '../errors.js';
import { CLIError, processIO } from './io.js';
import { createProgram } from './program.js';

const io = processIO();
try {
  await createProgram(io).parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else if (err instanceof CLIError || err instanceof SwitchboardError) {
    io.stderr.write(`switchboard: ${err.message}\n`);
    process.exitCode = err instanceof CLIError ? err.exitCode : 1;
  } else {
    throw err;
  }
}
