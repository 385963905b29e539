/**
 * `switchboard serve`: the gateway. With no config it serves the simulator's models and says
 * so. The config file reloads when it changes and on SIGHUP (an invalid one is refused and
 * the old one stays); SIGTERM and SIGINT drain requests in flight, then exit. `--workers N`
 * runs N processes sharing the port (node:cluster); each reloads and drains on its own, keeps
 * its own in-flight limit, and `/metrics` reports the sum of all of them.
 */
import type { Command } from 'commander';
import { CLIError, gatewayConfigFor, parseNumber, type CliIO } from './io.js';

interface ServeFlags {
  config?: string;
  port?: string;
  host?: string;
  workers?: string;
}

export function registerServe(program: Command, io: CliIO): void {
  program
    .command('serve')
    .description('Run the gateway: every model behind the OpenAI, Anthropic and Gemini APIs, for a whole team.')
    .option('-c, --config <file>', 'gateway config (YAML); default: $SWITCHBOARD_GATEWAY_CONFIG, else the simulator on its own')
    .option('-p, --port <n>', 'port to listen on (default: the config\'s, else 4000; 0 picks a free one)')
    .option('--host <host>', 'address to listen on (default: the config\'s, else 127.0.0.1)')
    .option('-w, --workers <n>', 'worker processes sharing the port', '1')
    .action(async (flags: ServeFlags) => {
      const workers = parseNumber(flags.workers, '--workers', { min: 1, integer: true }) ?? 1;
      const port = parseNumber(flags.port, '--port', { min: 0, max: 65535, integer: true });
      const cluster = (await import('node:cluster')).default;
      if (workers > 1 && cluster.isPrimary && (await gatewayConfigFor(flags.config, io)).config.virtualKeys.enabled) {
        // Each worker would keep its own counters, so N workers could spend N budgets.
        throw new CLIError('Virtual keys keep budgets and rate limits in one process: run them with --workers 1, or set virtual_keys.enabled: false to share the port without them.');
      }
      if (workers > 1 && cluster.isPrimary) {
        await runPrimary(workers, io);
        return;
      }
      await runServer(flags, port, io, cluster.isWorker);
    });

  program
    .command('console')
    .description('Start a local gateway on the embedded stores and print the URL of its web console (compare models, spend, logs, routing, keys).')
    .option('-c, --config <file>', 'gateway config (YAML); default: $SWITCHBOARD_GATEWAY_CONFIG, else the simulator on its own')
    .option('-p, --port <n>', 'port to listen on (default 0: a free one)', '0')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .action(async (flags: ServeFlags) => {
      const port = parseNumber(flags.port, '--port');
      if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) throw new CLIError(`--port takes 0 to 65535; got "${flags.port}".`);
      // Without a master key anyone on the machine could use the console: make one for this run.
      let sessionKey: string | undefined;
      if (!io.env.SWITCHBOARD_MASTER_KEY && !(await gatewayConfigFor(flags.config, io)).config.masterKey) {
        const { randomBytes } = await import('node:crypto');
        sessionKey = `sk-sb-console_${randomBytes(24).toString('base64url')}`;
        io.env.SWITCHBOARD_MASTER_KEY = sessionKey;
      }
      await runServer(flags, port, io, false, (url) =>
        sessionKey
          ? `console: ${url}/#key=${sessionKey}  (a master key made for this run; it logs you in and stops working when this process ends)`
          : `console: ${url}/  (log in with the master key or a virtual key)`,
      );
    });
}

/** Fork the workers, pass SIGHUP and SIGTERM on, replace a worker that dies unasked. */
async function runPrimary(workers: number, io: CliIO): Promise<void> {
  const cluster = (await import('node:cluster')).default;
  let stopping = false;
  // Create the request log's schema once, before the workers open it side by side.
  const { openConversationLog } = await import('../store/conversation-log.js');
  openConversationLog({ env: io.env, warn: (m) => void io.stderr.write(`switchboard serve: ${m}\n`) })?.close();
  // One /metrics for the whole server: the primary sums the workers' series (cluster-metrics.ts).
  (await import('../gateway/cluster-metrics.js')).serveClusterMetrics(cluster);
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (worker, code) => {
    if (stopping) return;
    io.stderr.write(`switchboard serve: worker ${worker.process.pid} exited (${code}); starting another\n`);
    cluster.fork();
  });
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      stopping = true;
      const alive = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
      if (alive.length === 0) resolve();
      let left = alive.length;
      for (const w of alive) {
        w.once('exit', () => {
          if (--left === 0) resolve();
        });
        w.process.kill('SIGTERM');
      }
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

async function runServer(flags: ServeFlags, port: number | undefined, io: CliIO, isWorker: boolean, consoleLine?: (url: string) => string): Promise<void> {
  const { Gateway } = await import('../gateway/gateway.js');
  const { openConversationLog } = await import('../store/conversation-log.js');
  const { path, load, config } = await gatewayConfigFor(flags.config, io);
  // With several workers the first one speaks for all (they share the port and the config).
  const cluster = (await import('node:cluster')).default;
  const say = (m: string): void => {
    if (!isWorker || cluster.worker?.id === 1) io.stderr.write(`switchboard serve: ${m}\n`);
  };
  const warn = (m: string): void => void io.stderr.write(`switchboard serve: ${m}\n`);
  const requestLog = config.logging.requests ? openConversationLog({ env: io.env, warn }) : undefined;
  // Virtual keys: their ledger, budgets, limits and admin API (on by default with a master key).
  const keys = config.virtualKeys.enabled ? await (await import('../gateway/virtual-key-stack.js')).openVirtualKeyStack(config, { log: warn }) : undefined;
  // With Redis, routing measurements and circuit breakers are shared by every instance too.
  const redisUrl = config.virtualKeys.redisUrl;
  const sharedRouting = redisUrl ? await (await import('../gateway/shared-routing.js')).openSharedRouting({ redisUrl, instance: config.env.SWITCHBOARD_INSTANCE, warn }) : undefined;
  const { GatewayMetrics } = await import('../gateway/metrics.js');
  const metrics = new GatewayMetrics();
  const gateway = new Gateway({
    config,
    metrics,
    ...(isWorker ? { metricsText: (await import('../gateway/cluster-metrics.js')).workerMetricsText(metrics) } : {}),
    requestLog: requestLog ?? false,
    warn,
    accessLog: (lines) => io.stdout.write(lines),
    ...(keys ? { authenticator: keys.keys, admission: keys.admission, admin: keys.admin, readiness: keys.readiness, ledger: keys.ledger, timeZone: config.virtualKeys.timeZone } : {}),
  });
  const url = await gateway.listen(port ?? config.port, flags.host ?? config.host);

  // One write, so that whoever reads the banner gets it whole.
  const banner = [`listening on ${url} (config: ${config.source}${requestLog ? `; request log: ${requestLog.path}` : ''})`];
  if (keys) banner.push(`virtual keys on (ledger: ${keys.ledgerPath}; admin API under /admin/)${config.masterKey ? '' : '; no master key, so only virtual keys are accepted'}`);
  else if (!config.masterKey) banner.push('no master key (master_key in the config or SWITCHBOARD_MASTER_KEY): anyone who can reach this address may use it.');
  if (path === undefined) {
    banner.push(`no config file: serving the simulator's models (sim/llama, sim/mini) and any model whose provider key is set.`);
    banner.push(`try: OPENAI_BASE_URL=${url}/v1 ANTHROPIC_BASE_URL=${url} GOOGLE_GEMINI_BASE_URL=${url} with the model "sim/llama"`);
  }
  say(banner.join('\nswitchboard serve: '));
  if (consoleLine) io.stdout.write(`${consoleLine(url)}\n`);

  let reloading = Promise.resolve();
  const reload = (why: string): void => {
    reloading = reloading.then(async () => {
      try {
        const next = await load();
        if (next.port !== gateway.config.port || next.host !== gateway.config.host) say('the listen address changed; it takes effect on restart');
        gateway.reload(next);
        say(`configuration reloaded (${why})`);
      } catch (err) {
        gateway.reloadFailed((err as Error).message);
      }
    });
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  let watcher: import('node:fs').FSWatcher | undefined;
  if (path !== undefined) {
    const { watch } = await import('node:fs');
    const { dirname, basename } = await import('node:path');
    let timer: NodeJS.Timeout | undefined;
    // Watch the directory: editors replace the file (rename), which ends a watch on the file itself.
    watcher = watch(dirname(path), (_event, file) => {
      if (file !== null && file !== basename(path)) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => reload('file changed'), 100);
    });
  }

  await new Promise<void>((done) => {
    const stop = (signal: string): void => {
      say(`${signal}: draining ${gateway.inFlight} request(s) in flight (up to ${gateway.config.limits.drainTimeoutMs} ms)`);
      watcher?.close();
      void gateway.shutdown().then(async ({ drained, aborted }) => {
        await keys?.close();
        await sharedRouting?.close();
        say(drained ? 'drained; stopped' : `stopped; ${aborted} request(s) cut at the deadline`);
        // A worker's channel to the primary would keep it alive.
        cluster.worker?.disconnect();
        done();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
