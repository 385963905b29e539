/**
 * Keys and teams as people write them (the CLI's flags, the admin API's JSON) and as they are
 * shown back: one parser and one view for both, so the two cannot drift apart.
 *
 * Amounts are dollars written as decimals (`25`, `0.50`), turned into integer micro-dollars
 * without a float; more than six decimals is an error rather than a rounding.
 */
import type { KeyPatch, KeyRecord, Ledger, LedgerUsageRow, Limits, NewKey, TeamPatch, TeamRecord } from '../store/ledger.js';
import { FEMTO_PER_MICRO } from '../store/ledger.js';
import { BUDGET_PERIODS, periodWindow, type BudgetPeriod } from '../store/periods.js';
import { formatDollars } from '../money.js';
import { formatMicros } from './budget-admission.js';

/** Input that does not describe a key or a team: the message says which field and what it takes. */
export class KeyInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyInputError';
  }
}

/** What a key or team is made or changed from; `null` clears a field on update. */
export interface KeySpec {
  name?: string;
  team?: string | null;
  admin?: boolean;
  /** Dollars (`25`, `"0.50"`). */
  budget?: string | number | null;
  period?: string;
  rpm?: number | string | null;
  tpm?: number | string | null;
  models?: string[] | string | null;
  /** A date or ISO time. */
  expires?: string | null;
  metadata?: Record<string, string>;
}

/** `"25.5"` -> 25_500_000 micro-dollars, exactly. */
export function parseDollars(value: string | number, field = 'budget'): number {
  const text = typeof value === 'number' ? String(value) : value.trim().replace(/^\$/, '');
  const m = /^(\d+)(?:\.(\d{0,6}))?$/.exec(text);
  if (!m) throw new KeyInputError(`${field} takes an amount in dollars with at most six decimals, like 25 or 0.50; got "${String(value)}".`);
  const micros = Number(m[1]) * 1e6 + Number((m[2] ?? '').padEnd(6, '0'));
  if (!Number.isSafeInteger(micros)) throw new KeyInputError(`${field} is too large: ${String(value)}.`);
  return micros;
}

function positiveInt(value: number | string, field: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new KeyInputError(`${field} takes a whole number above 0; got "${String(value)}".`);
  return n;
}

/** Longest names, ids and metadata the ledger keeps: they are shown in `keys list`, logs and the console. */
export const LABEL_LIMITS = { name: 128, team: 64, metadataKey: 64, metadataValue: 512, metadataEntries: 32, models: 64, pattern: 256 } as const;

/**
 * A name or id as the ledger keeps it: trimmed, not empty, at most `max` characters, and no
 * control characters (a name with a terminal escape in it would repaint `keys list`).
 */
function label(value: string, field: string, max: number): string {
  const text = value.trim();
  if (text === '') throw new KeyInputError(`${field} must not be empty.`);
  if (text.length > max) throw new KeyInputError(`${field} is ${text.length} characters long; the most it takes is ${max}.`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(text)) throw new KeyInputError(`${field} must not hold control characters (newlines, tabs, terminal escapes); got ${JSON.stringify(text)}.`);
  return text;
}

/** A team's id, as given to `teams create` or a key's `team`. */
export function teamId(value: string): string {
  return label(value, 'team', LABEL_LIMITS.team);
}

function metadataOf(value: Record<string, string>): Record<string, string> {
  const entries = Object.entries(value);
  if (entries.length > LABEL_LIMITS.metadataEntries) throw new KeyInputError(`metadata holds ${entries.length} entries; the most it takes is ${LABEL_LIMITS.metadataEntries}.`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    const key = label(k, 'a metadata key', LABEL_LIMITS.metadataKey);
    if (v.length > LABEL_LIMITS.metadataValue) throw new KeyInputError(`metadata "${key}" is ${v.length} characters long; the most a value takes is ${LABEL_LIMITS.metadataValue}.`);
    out[key] = v;
  }
  return out;
}

function period(value: string | undefined): BudgetPeriod {
  const p = value ?? 'month';
  if (!(BUDGET_PERIODS as readonly string[]).includes(p)) throw new KeyInputError(`period takes ${BUDGET_PERIODS.join(', ')}; got "${p}".`);
  return p as BudgetPeriod;
}

function expiry(value: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new KeyInputError(`expires takes a date like 2027-01-01 or an ISO time; got "${value}".`);
  return ms;
}

function models(value: string[] | string): string[] {
  const list = (Array.isArray(value) ? value : value.split(',')).map((m) => m.trim()).filter((m) => m !== '');
  if (list.length === 0) throw new KeyInputError('models takes one or more patterns, like "sim/*,openai/gpt-4o*".');
  if (list.length > LABEL_LIMITS.models) throw new KeyInputError(`models holds ${list.length} patterns; the most it takes is ${LABEL_LIMITS.models}.`);
  return list.map((m) => label(m, 'a models pattern', LABEL_LIMITS.pattern));
}

/** The limits in a spec, for a new key or team. */
function limitsOf(spec: KeySpec): Limits {
  const out: Limits = {};
  if (spec.budget !== undefined && spec.budget !== null) out.budget = { limitMicros: parseDollars(spec.budget), period: period(spec.period) };
  else if (spec.period !== undefined) throw new KeyInputError('period goes with a budget: give both, like --budget 25 --period month.');
  if (spec.rpm !== undefined && spec.rpm !== null) out.rpm = positiveInt(spec.rpm, 'rpm');
  if (spec.tpm !== undefined && spec.tpm !== null) out.tpm = positiveInt(spec.tpm, 'tpm');
  return out;
}

export function newKeyFrom(spec: KeySpec): Omit<NewKey, 'id'> {
  if (spec.name === undefined || spec.name.trim() === '') throw new KeyInputError('A key needs a name (--name, or "name" in JSON).');
  const key: Omit<NewKey, 'id'> = { name: label(spec.name, 'name', LABEL_LIMITS.name), ...limitsOf(spec) };
  if (spec.team !== undefined && spec.team !== null) key.teamId = teamId(spec.team);
  if (spec.admin) key.admin = true;
  if (spec.models !== undefined && spec.models !== null) key.models = models(spec.models);
  if (spec.expires !== undefined && spec.expires !== null) key.expiresAt = expiry(spec.expires);
  if (spec.metadata) key.metadata = metadataOf(spec.metadata);
  return key;
}

/** Changes to a key or team; `period` alone changes the period of the budget it has (`current`). */
export function patchFrom(spec: KeySpec, current?: Limits): KeyPatch {
  const patch: KeyPatch = {};
  if (spec.name !== undefined) patch.name = label(spec.name, 'name', LABEL_LIMITS.name);
  if (spec.team !== undefined) patch.teamId = spec.team === null ? null : teamId(spec.team);
  if (spec.admin !== undefined) patch.admin = spec.admin;
  if (spec.budget === null) patch.budget = null;
  else if (spec.budget !== undefined) patch.budget = { limitMicros: parseDollars(spec.budget), period: period(spec.period ?? current?.budget?.period) };
  else if (spec.period !== undefined) {
    if (!current?.budget) throw new KeyInputError('period goes with a budget, and there is none yet: give --budget too.');
    patch.budget = { limitMicros: current.budget.limitMicros, period: period(spec.period) };
  }
  if (spec.rpm !== undefined) patch.rpm = spec.rpm === null ? null : positiveInt(spec.rpm, 'rpm');
  if (spec.tpm !== undefined) patch.tpm = spec.tpm === null ? null : positiveInt(spec.tpm, 'tpm');
  if (spec.models !== undefined) patch.models = spec.models === null ? null : models(spec.models);
  if (spec.expires !== undefined) patch.expiresAt = spec.expires === null ? null : expiry(spec.expires);
  if (spec.metadata !== undefined) patch.metadata = metadataOf(spec.metadata);
  return patch;
}

export function teamLimitsFrom(spec: KeySpec): Limits {
  return limitsOf(spec);
}

/** Changes to a team: its budget and limits only. */
export function teamPatchFrom(spec: KeySpec, current: Limits): TeamPatch {
  const { budget, rpm, tpm } = patchFrom(spec, current);
  return { ...(budget === undefined ? {} : { budget }), ...(rpm === undefined ? {} : { rpm }), ...(tpm === undefined ? {} : { tpm }) };
}

/** Exact femto-dollars as dollars with `digits` decimals and no sign (`25.000000`), for display and JSON. */
export function formatFemto(femto: bigint, digits = 6): string {
  return femto === 0n ? (0).toFixed(digits) : formatDollars(femto, digits).replace('$', '');
}

/** What a key's spend looks like next to it: this period's (when it has a budget) and all time. */
export interface SpendView {
  period?: string;
  period_spend?: string;
  budget_remaining?: string;
  total_spend: string;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

function limitsView(l: Limits): Record<string, unknown> {
  return {
    budget: l.budget ? { amount: formatMicros(l.budget.limitMicros), period: l.budget.period } : null,
    rpm: l.rpm ?? null,
    tpm: l.tpm ?? null,
  };
}

/** A key as JSON: never its secret (there is none to show). */
export function keyView(key: KeyRecord, spend?: SpendView): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: key.id,
    name: key.name,
    team: key.teamId ?? null,
    admin: key.admin,
    ...limitsView(key),
    models: key.models ?? null,
    expires_at: iso(key.expiresAt),
    revoked_at: iso(key.revokedAt),
    created_at: iso(key.createdAt),
    metadata: key.metadata,
  };
  if (spend) out.spend = spend;
  return out;
}

export function teamView(team: TeamRecord, spend?: SpendView): Record<string, unknown> {
  const out: Record<string, unknown> = { id: team.id, ...limitsView(team), created_at: iso(team.createdAt) };
  if (spend) out.spend = spend;
  return out;
}

export function usageView(by: string, row: LedgerUsageRow): Record<string, unknown> {
  return {
    [by]: row.key,
    requests: row.requests,
    prompt_tokens: row.promptTokens,
    completion_tokens: row.completionTokens,
    cost: formatFemto(row.costFemto),
    cost_femto: row.costFemto.toString(),
    unpriced: row.unpriced,
    // What caching saved (response-cache hits, provider prompt-cache discounts); negative while cache writes outweigh reads.
    saved_cost: formatFemto(row.savedFemto),
    saved_femto: row.savedFemto.toString(),
  };
}

/** A key's or team's spend from the ledger: this period's against its budget, and all time. */
export async function spendView(ledger: Ledger, scope: string, limits: Limits, now: number, timeZone: string): Promise<SpendView> {
  const view: SpendView = { total_spend: formatFemto(await ledger.spentFemto(scope, 0)) };
  if (limits.budget) {
    const window = periodWindow(limits.budget.period, now, timeZone);
    const spent = await ledger.spentFemto(scope, window.startMs);
    const remaining = BigInt(limits.budget.limitMicros) * FEMTO_PER_MICRO - spent;
    view.period = window.id;
    view.period_spend = formatFemto(spent);
    view.budget_remaining = formatFemto(remaining < 0n ? 0n : remaining);
  }
  return view;
}

/** A key with its spend and, when it is in a team, the team's: what `keys show` and GET /admin/keys/{id} answer. */
export async function keyShow(ledger: Ledger, key: KeyRecord, now: number, timeZone: string): Promise<Record<string, unknown>> {
  const view = keyView(key, await spendView(ledger, `key:${key.id}`, key, now, timeZone));
  const team = key.teamId === undefined ? undefined : await ledger.getTeam(key.teamId);
  if (team) view.team_spend = await spendView(ledger, `team:${team.id}`, team, now, timeZone);
  return view;
}
