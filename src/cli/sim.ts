/** `switchboard sim`: run the simulator alone and print where each simulated provider lives. */
import type { Command } from 'commander';
import { parseNumber } from './ask.js';
import type { CliIO } from './io.js';

export function registerSim(program: Command, io: CliIO): void {
  program
    .command('sim')
    .description('Run the built-in simulator (an offline provider speaking the OpenAI, Anthropic and Gemini protocols).')
    .option('-p, --port <n>', 'port to listen on (default: a free one)', '0')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--time-scale <x>', 'multiply every delay (0 answers at once)')
    .option('--fail-rate <r>', "share of sim-flaky's requests that fail")
    .action(async (flags: { port: string; host: string; timeScale?: string; failRate?: string }) => {
      const timeScale = parseNumber(flags.timeScale, '--time-scale');
      const failRate = parseNumber(flags.failRate, '--fail-rate');
      const { startSimulator } = await import('../sim/server.js');
      const { simulatorProviderURL } = await import('../sim/urls.js');
      const { SIM_MODELS, SIM_PROVIDERS } = await import('../sim/profiles.js');
      const sim = await startSimulator({
        port: parseNumber(flags.port, '--port') ?? 0,
        host: flags.host,
        ...(timeScale === undefined ? {} : { timeScale }),
        ...(failRate === undefined ? {} : { failRate }),
      });
      io.stdout.write(`${sim.url}\n`);
      io.stderr.write(`switchboard simulator on ${sim.url} (Ctrl-C to stop)\n`);
      for (const [name, profile] of Object.entries(SIM_PROVIDERS)) {
        const models = Object.entries(SIM_MODELS).filter(([, m]) => m.providers.includes(name)).map(([id]) => `sim/${id}`);
        io.stderr.write(`  ${name.padEnd(14)} ${profile.protocol.padEnd(9)} ${simulatorProviderURL(sim.url, name, profile.protocol)}  ${models.join(', ')}\n`);
      }
      io.stderr.write(`Use it from another shell: SWITCHBOARD_SIM_URL=${sim.url} switchboard ask -m sim/llama "hello"\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void sim.close().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
