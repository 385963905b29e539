/** `switchboard sim`: run the simulator alone and print where each simulated provider lives. */
import type { Command } from 'commander';
import { selfCommand } from './defaults.js';
import { CLIError, parseNumber, type CliIO } from './io.js';

export function registerSim(program: Command, io: CliIO): void {
  program
    .command('sim')
    .description('Run the built-in simulator (an offline provider speaking the OpenAI, Anthropic and Gemini protocols).')
    .option('-p, --port <n>', 'port to listen on, 0 to 65535 (default: a free one)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--time-scale <x>', 'multiply every delay, 0 or more (0 answers at once)')
    .option('--fail-rate <r>', "share of sim-flaky's requests that fail, from 0 to 1")
    .option('--timings', "report each reply's simulated speed as llama.cpp's timings, in every protocol")
    .action(async (flags: { port?: string; host: string; timeScale?: string; failRate?: string; timings?: boolean }) => {
      const port = parseNumber(flags.port, '--port', { min: 0, max: 65535, integer: true }) ?? 0;
      const timeScale = parseNumber(flags.timeScale, '--time-scale', { min: 0 });
      const failRate = parseNumber(flags.failRate, '--fail-rate', { min: 0, max: 1 });
      const { startSimulator } = await import('../sim/server.js');
      const { simulatorProviderURL } = await import('../sim/urls.js');
      const { SIM_MODELS, SIM_PROVIDERS } = await import('../sim/profiles.js');
      const sim = await startSimulator({
        port,
        host: flags.host,
        ...(timeScale === undefined ? {} : { timeScale }),
        ...(failRate === undefined ? {} : { failRate }),
        ...(flags.timings ? { timings: true } : {}),
      }).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') throw new CLIError(`port ${port} on ${flags.host} is in use; pick another with --port, or leave --port out for a free one.`, 1);
        if (err.code === 'EACCES') throw new CLIError(`no permission to listen on port ${port}; pick one above 1023, or leave --port out for a free one.`, 1);
        if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') throw new CLIError(`cannot listen on ${flags.host}: no such address here; try --host 127.0.0.1.`, 2);
        throw err;
      });
      io.stdout.write(`${sim.url}\n`);
      io.stderr.write(`switchboard simulator on ${sim.url} (Ctrl-C to stop)\n`);
      for (const [name, profile] of Object.entries(SIM_PROVIDERS)) {
        const models = Object.entries(SIM_MODELS).filter(([, m]) => m.providers.includes(name)).map(([id]) => `sim/${id}`);
        io.stderr.write(`  ${name.padEnd(14)} ${profile.protocol.padEnd(9)} ${simulatorProviderURL(sim.url, name, profile.protocol)}  ${models.join(', ')}\n`);
      }
      io.stderr.write(`Use it from another shell: SWITCHBOARD_SIM_URL=${sim.url} ${selfCommand(io.env)} ask -m sim/llama "hello"\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void sim.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
