/**
 * `switchboard keys` and `switchboard teams`: virtual keys and their teams, straight on the
 * gateway's ledger (the same one `switchboard serve` uses, so changes apply to its next
 * request). A new or rotated key is printed once, alone on stdout; only its hash is kept.
 */
import type { Command } from 'commander';
import { CLIError, gatewayConfigFor, type CliIO } from './io.js';
import type { KeySpec } from '../gateway/key-input.js';

interface CommonFlags {
  config?: string;
  json?: boolean;
}

interface LimitFlags extends CommonFlags {
  budget?: string;
  period?: string;
  rpm?: string;
  tpm?: string;
}

interface KeyFlags extends LimitFlags {
  name?: string;
  team?: string | boolean;
  models?: string;
  expires?: string;
  metadata?: string[];
  admin?: boolean;
  grace?: string;
}

/** The ledger and keys of the gateway config (`-c`, else $SWITCHBOARD_GATEWAY_CONFIG, else the defaults). */
async function open(flags: CommonFlags, io: CliIO) {
  const { config } = await gatewayConfigFor(flags.config, io);
  const { ledgerPath, SQLiteLedger } = await import('../store/ledger.js');
  const { loadPepper, VirtualKeys } = await import('../gateway/virtual-keys.js');
  const input = await import('../gateway/key-input.js');
  const { databaseUrl } = config.virtualKeys;
  const ledger =
    databaseUrl === undefined
      ? // A short-lived process: spend (were a command to write any) in this thread, not a worker
        // thread that takes 70 to 200 ms to start.
        new SQLiteLedger(config.virtualKeys.ledger ?? ledgerPath(config.env), { spendWrites: 'thread' })
      : await (await import('../store/postgres-ledger.js')).PostgresLedger.open({ url: databaseUrl, ...(config.virtualKeys.redisUrl === undefined ? {} : { queueUrl: config.virtualKeys.redisUrl }) });
  const keys = new VirtualKeys({ ledger, pepper: loadPepper(config.env) });
  return { ledger, keys, input, timeZone: config.virtualKeys.timeZone };
}

type Opened = Awaited<ReturnType<typeof open>>;

/** Run `fn` on the opened ledger; input and ledger mistakes become one-line CLI errors. */
export async function withLedger(flags: CommonFlags, io: CliIO, fn: (o: Opened) => Promise<void>): Promise<void> {
  const o = await open(flags, io);
  const { LedgerError } = await import('../store/ledger.js');
  try {
    await fn(o);
  } catch (err) {
    if (err instanceof o.input.KeyInputError || err instanceof LedgerError) throw new CLIError(err.message);
    throw err;
  } finally {
    await o.ledger.close();
  }
}

/** `none` (or `all` for models, `never` for expiry) clears a field on update. */
function cleared(value: string | undefined, word: string): string | null | undefined {
  return value === undefined ? undefined : value === word || value === 'none' ? null : value;
}

function metadataOf(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs) return undefined;
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CLIError(`--metadata takes key=value; got "${pair}".`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

function specOf(flags: KeyFlags, update: boolean): KeySpec {
  const spec: KeySpec = {};
  if (flags.name !== undefined) spec.name = flags.name;
  if (flags.team === false) spec.team = null;
  else if (typeof flags.team === 'string') spec.team = flags.team;
  const budget = update ? cleared(flags.budget, 'none') : flags.budget;
  if (budget !== undefined) spec.budget = budget;
  if (flags.period !== undefined) spec.period = flags.period;
  const rpm = update ? cleared(flags.rpm, 'none') : flags.rpm;
  if (rpm !== undefined) spec.rpm = rpm;
  const tpm = update ? cleared(flags.tpm, 'none') : flags.tpm;
  if (tpm !== undefined) spec.tpm = tpm;
  const models = update ? cleared(flags.models, 'all') : flags.models;
  if (models !== undefined) spec.models = models;
  const expires = update ? cleared(flags.expires, 'never') : flags.expires;
  if (expires !== undefined) spec.expires = expires;
  const metadata = metadataOf(flags.metadata);
  if (metadata) spec.metadata = metadata;
  if (flags.admin !== undefined) spec.admin = flags.admin;
  return spec;
}

/** `90s`, `30m`, `1h`, `7d` or plain milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new CLIError(`${flag} takes a duration like 90s, 30m, 1h or 7d; got "${text}".`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms'] ?? 1;
  return Math.round(Number(m[1]) * unit);
}

function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return `${rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd()).join('\n')}\n`;
}

function budgetText(view: Record<string, unknown>): string {
  const b = view.budget as { amount: string; period: string } | null;
  return b ? `$${b.amount}${b.period === 'total' ? '' : `/${b.period}`}` : '-';
}

function describe(view: Record<string, unknown>): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(view)) {
    if ((k === 'spend' || k === 'team_spend') && v && typeof v === 'object') {
      for (const [sk, sv] of Object.entries(v)) lines.push(`${k === 'spend' ? '' : 'team_'}${sk}: ${String(sv)}`);
    } else if (k === 'budget') lines.push(`budget: ${budgetText(view)}`);
    else lines.push(`${k}: ${v === null ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  }
  return `${lines.join('\n')}\n`;
}

const addLimitOptions = (c: Command): Command =>
  c
    .option('--budget <dollars>', 'spend limit in dollars, like 25 or 0.50 (update: "none" removes it)')
    .option('--period <period>', 'when the budget resets: day, month or total (never)', undefined)
    .option('--rpm <n>', 'requests per minute (update: "none")')
    .option('--tpm <n>', 'tokens per minute, prompt plus output cap (update: "none")');

const addKeyOptions = (c: Command): Command =>
  addLimitOptions(c)
    .option('--team <team>', 'the team it belongs to (its budget and limits apply too)')
    .option('--models <patterns>', 'allowed models, comma-separated globs like "sim/*,openai/gpt-4o*" (update: "all")')
    .option('--expires <date>', 'when it stops working: a date or ISO time (update: "never")')
    .option('--metadata <key=value...>', 'labels kept with the key')
    .option('--admin', 'may use the admin API')
    .option('--json', 'JSON output');

export function registerKeys(program: Command, io: CliIO): void {
  const keys = program.command('keys').description('Virtual keys for the gateway: budgets, rate limits and allowed models per key.');
  const config = (c: Command): Command => c.option('-c, --config <file>', 'gateway config whose ledger to use (default: $SWITCHBOARD_GATEWAY_CONFIG)');

  addKeyOptions(config(keys.command('create').description('Create a key; it is printed once, on stdout.').requiredOption('--name <name>', 'a unique name'))).action((flags: KeyFlags) =>
    withLedger(flags, io, async ({ keys: vk, input }) => {
      const { key, secret } = await vk.create(input.newKeyFrom(specOf(flags, false)));
      if (flags.json) {
        io.stdout.write(`${JSON.stringify({ ...input.keyView(key), key: secret })}\n`);
        return;
      }
      io.stderr.write(`Created ${key.id} (${key.name}). Copy the key now: it is not stored and cannot be shown again.\n`);
      io.stdout.write(`${secret}\n`);
    }),
  );

  config(keys.command('list').description('All keys (never their secrets).').option('--json', 'one JSON object per line')).action((flags: CommonFlags) =>
    withLedger(flags, io, async ({ ledger, input }) => {
      const views = (await ledger.listKeys()).map((k) => input.keyView(k));
      if (flags.json) return void io.stdout.write(views.map((v) => `${JSON.stringify(v)}\n`).join(''));
      if (views.length === 0) return void io.stderr.write('No keys yet: switchboard keys create --name NAME\n');
      const rows = [['ID', 'NAME', 'TEAM', 'BUDGET', 'RPM', 'TPM', 'MODELS', 'EXPIRES', 'STATUS']];
      for (const v of views) {
        const expired = v.expires_at !== null && Date.parse(String(v.expires_at)) <= Date.now();
        rows.push([String(v.id), String(v.name), String(v.team ?? '-'), budgetText(v), String(v.rpm ?? '-'), String(v.tpm ?? '-'), (v.models as string[] | null)?.join(',') ?? '*', String(v.expires_at ?? '-'), v.revoked_at !== null ? 'revoked' : expired ? 'expired' : v.admin ? 'active, admin' : 'active']);
      }
      io.stdout.write(table(rows));
    }),
  );

  config(keys.command('show').description("A key's settings and spend, and its team's (this period and all time).").argument('<key>', 'id or name').option('--json', 'JSON output')).action((id: string, flags: CommonFlags) =>
    withLedger(flags, io, async ({ ledger, input, timeZone }) => {
      const key = await ledger.getKey(id);
      if (!key) throw new CLIError(`No key with id or name "${id}" (see: switchboard keys list).`);
      const view = await input.keyShow(ledger, key, Date.now(), timeZone);
      io.stdout.write(flags.json ? `${JSON.stringify(view)}\n` : describe(view));
    }),
  );

  addKeyOptions(config(keys.command('update').description('Change a key; the gateway applies it from its next request.').argument('<key>', 'id or name').option('--name <name>', 'a new name')))
    // After --team and --admin, so that leaving both out changes neither.
    .option('--no-team', 'leave its team')
    .option('--no-admin', 'take the admin role away')
    .action(
    (id: string, flags: KeyFlags) =>
      withLedger(flags, io, async ({ ledger, input }) => {
        const current = await ledger.getKey(id);
        if (!current) throw new CLIError(`No key with id or name "${id}" (see: switchboard keys list).`);
        const key = await ledger.updateKey(current.id, input.patchFrom(specOf(flags, true), current));
        io.stdout.write(flags.json ? `${JSON.stringify(input.keyView(key))}\n` : describe(input.keyView(key)));
      }),
  );

  config(keys.command('revoke').description('Stop a key at once.').argument('<key>', 'id or name')).action((id: string, flags: CommonFlags) =>
    withLedger(flags, io, async ({ ledger }) => {
      const key = await ledger.getKey(id);
      if (!key) throw new CLIError(`No key with id or name "${id}" (see: switchboard keys list).`);
      await ledger.revokeKey(key.id, Date.now());
      io.stderr.write(`Revoked ${key.id} (${key.name}).\n`);
    }),
  );

  config(keys.command('rotate').description('A new secret for a key; the old one works for the grace period.').argument('<key>', 'id or name').option('--grace <duration>', 'how long the old secret keeps working (90s, 30m, 1h, 7d)', '0').option('--json', 'JSON output')).action(
    (id: string, flags: KeyFlags) =>
      withLedger(flags, io, async ({ keys: vk, input }) => {
        const { key, secret, oldRetiresAt } = await vk.rotate(id, parseDuration(flags.grace ?? '0', '--grace'));
        if (flags.json) return void io.stdout.write(`${JSON.stringify({ ...input.keyView(key), key: secret, previous_key_retires_at: new Date(oldRetiresAt).toISOString() })}\n`);
        io.stderr.write(`Rotated ${key.id} (${key.name}); the previous key ${flags.grace === '0' ? 'stopped now' : `works until ${new Date(oldRetiresAt).toISOString()}`}. Copy the new key now:\n`);
        io.stdout.write(`${secret}\n`);
      }),
  );

  const teams = program.command('teams').description('Teams of virtual keys: a budget and limits shared by all their keys.');
  addLimitOptions(config(teams.command('create').description('Create a team.').argument('<team>', 'its id, used by keys --team').option('--json', 'JSON output'))).action((id: string, flags: LimitFlags) =>
    withLedger(flags, io, async ({ ledger, input }) => {
      const team = await ledger.createTeam(input.teamId(id), input.teamLimitsFrom(specOf(flags, false)), Date.now());
      io.stdout.write(flags.json ? `${JSON.stringify(input.teamView(team))}\n` : describe(input.teamView(team)));
    }),
  );
  config(teams.command('list').description('All teams.').option('--json', 'one JSON object per line')).action((flags: CommonFlags) =>
    withLedger(flags, io, async ({ ledger, input }) => {
      const views = (await ledger.listTeams()).map((t) => input.teamView(t));
      if (flags.json) return void io.stdout.write(views.map((v) => `${JSON.stringify(v)}\n`).join(''));
      if (views.length === 0) return void io.stderr.write('No teams yet: switchboard teams create TEAM\n');
      io.stdout.write(table([['TEAM', 'BUDGET', 'RPM', 'TPM'], ...views.map((v) => [String(v.id), budgetText(v), String(v.rpm ?? '-'), String(v.tpm ?? '-')])]));
    }),
  );
  config(teams.command('show').description("A team's limits and spend.").argument('<team>').option('--json', 'JSON output')).action((id: string, flags: CommonFlags) =>
    withLedger(flags, io, async ({ ledger, input, timeZone }) => {
      const team = await ledger.getTeam(id);
      if (!team) throw new CLIError(`No team named "${id}" (see: switchboard teams list).`);
      const view = input.teamView(team, await input.spendView(ledger, `team:${team.id}`, team, Date.now(), timeZone));
      io.stdout.write(flags.json ? `${JSON.stringify(view)}\n` : describe(view));
    }),
  );
  addLimitOptions(config(teams.command('update').description("Change a team's budget or limits.").argument('<team>').option('--json', 'JSON output'))).action((id: string, flags: LimitFlags) =>
    withLedger(flags, io, async ({ ledger, input }) => {
      const current = await ledger.getTeam(id);
      if (!current) throw new CLIError(`No team named "${id}" (see: switchboard teams list).`);
      const team = await ledger.updateTeam(id, input.teamPatchFrom(specOf(flags, true), current));
      io.stdout.write(flags.json ? `${JSON.stringify(input.teamView(team))}\n` : describe(input.teamView(team)));
    }),
  );
}
