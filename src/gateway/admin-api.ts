/**
 * The admin REST API under /admin/: keys, teams and usage, for the master key or a key with
 * the admin role. One function from a parsed request to a JSON answer, so any router can
 * mount it; the gateway does (`GatewayOptions.admin`).
 *
 *   GET    /admin/keys                  list          POST /admin/keys           create (the secret is in this answer only)
 *   GET    /admin/keys/{id|name}        one, with spend
 *   PATCH  /admin/keys/{id|name}        update        POST /admin/keys/{id}/rotate  {"grace_seconds": 3600}
 *   POST   /admin/keys/{id}/revoke      revoke        DELETE /admin/keys/{id}    revoke
 *   GET    /admin/teams, POST /admin/teams {"id": ...}, GET|PATCH /admin/teams/{id}
 *   GET    /admin/usage?by=key|team|model|provider|day&since=2026-12-01
 */
import { LedgerError, USAGE_GROUPS, type Ledger, type UsageGroup } from '../store/ledger.js';
import { systemClock, type Clock } from '../store/shared-state.js';
import type { Principal } from './admission.js';
import { KeyInputError, keyShow, keyView, newKeyFrom, patchFrom, spendView, teamId, teamLimitsFrom, teamPatchFrom, teamView, usageView, type KeySpec } from './key-input.js';
import { apiPathParts } from './http.js';
import type { VirtualKeys } from './virtual-keys.js';

export interface AdminRequest {
  method: string;
  /** The path without the query (`/admin/keys/sk-sb-3f9a1c0d`). */
  path: string;
  query: URLSearchParams;
  /** The parsed JSON body (undefined when there was none). */
  body: unknown;
  principal: Principal;
}

export interface AdminResponse {
  status: number;
  body: unknown;
}

export type AdminHandler = (req: AdminRequest) => Promise<AdminResponse>;

export interface AdminApiOptions {
  ledger: Ledger;
  keys: VirtualKeys;
  clock?: Clock;
  /** The budgets' calendar zone, for this period's spend and `by=day`. */
  timeZone?: string;
}

const fail = (status: number, type: string, message: string): AdminResponse => ({ status, body: { error: { message, type } } });

/** What each field of a key or team body may be: a JSON type check and how to say it. */
const SPEC_FIELDS = new Map<string, [(v: unknown) => boolean, string]>(Object.entries({
  name: [(v) => typeof v === 'string', 'a string'],
  id: [(v) => typeof v === 'string', 'a string'],
  team: [(v) => v === null || typeof v === 'string', 'a team id or null'],
  admin: [(v) => typeof v === 'boolean', 'true or false'],
  budget: [(v) => v === null || typeof v === 'string' || typeof v === 'number', 'dollars as a number or a string, or null'],
  period: [(v) => typeof v === 'string', 'a string'],
  rpm: [(v) => v === null || typeof v === 'string' || typeof v === 'number', 'a whole number or null'],
  tpm: [(v) => v === null || typeof v === 'string' || typeof v === 'number', 'a whole number or null'],
  models: [(v) => v === null || typeof v === 'string' || (Array.isArray(v) && v.every((m) => typeof m === 'string')), 'a list of patterns (strings), one string of them, or null'],
  expires: [(v) => v === null || typeof v === 'string', 'a date or null'],
  expires_at: [(v) => v === null || typeof v === 'string', 'a date or null'],
  metadata: [(v) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string'), 'an object of strings'],
  grace_seconds: [(v) => typeof v === 'number', 'a number of seconds'],
} satisfies Record<string, [(v: unknown) => boolean, string]>));

/** A key or team body, each field checked for its type; an unknown field is refused (a misspelt budget must not make a key without one). */
function spec(body: unknown): KeySpec {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new KeyInputError('The body must be a JSON object.');
  const b = body as Record<string, unknown>;
  for (const [field, value] of Object.entries(b)) {
    const rule = SPEC_FIELDS.get(field);
    if (!rule) throw new KeyInputError(`Unknown field "${field}"; the fields are ${[...SPEC_FIELDS.keys()].join(', ')}.`);
    if (!rule[0](value)) throw new KeyInputError(`${field} takes ${rule[1]}; got ${JSON.stringify(value)}.`);
  }
  const out: Record<string, unknown> = { ...b };
  // The JSON API spells the expiry as it is shown back.
  if ('expires_at' in b) out.expires = b.expires_at;
  delete out.expires_at;
  return out as KeySpec;
}

export function createAdminApi(options: AdminApiOptions): AdminHandler {
  const { ledger, keys } = options;
  const clock = options.clock ?? systemClock;
  const timeZone = options.timeZone ?? 'UTC';

  const showKey = async (idOrName: string): Promise<AdminResponse> => {
    const key = await ledger.getKey(idOrName);
    if (!key) return fail(404, 'not_found', `No key with id or name "${idOrName}".`);
    return { status: 200, body: await keyShow(ledger, key, clock.now(), timeZone) };
  };
  const showTeam = async (id: string): Promise<AdminResponse> => {
    const team = await ledger.getTeam(id);
    if (!team) return fail(404, 'not_found', `No team named "${id}".`);
    return { status: 200, body: teamView(team, await spendView(ledger, `team:${team.id}`, team, clock.now(), timeZone)) };
  };

  const route = async (req: AdminRequest): Promise<AdminResponse> => {
    const parts = apiPathParts(req.path);
    if (!parts) return fail(404, 'not_found', `${req.path} is not an admin endpoint: its path has a malformed percent-escape.`);
    const [resource, id, action] = parts;
    const m = req.method;
    if (resource === 'keys') {
      if (id === undefined && m === 'GET') return { status: 200, body: { data: (await ledger.listKeys()).map((k) => keyView(k)) } };
      if (id === undefined && m === 'POST') {
        const { key, secret } = await keys.create(newKeyFrom(spec(req.body)));
        return { status: 201, body: { ...keyView(key), key: secret } };
      }
      if (id !== undefined && action === undefined && m === 'GET') return showKey(id);
      if (id !== undefined && action === undefined && m === 'PATCH') {
        const current = await ledger.getKey(id);
        if (!current) return fail(404, 'not_found', `No key with id or name "${id}".`);
        await ledger.updateKey(current.id, patchFrom(spec(req.body), current));
        return showKey(current.id);
      }
      if (id !== undefined && ((action === 'revoke' && m === 'POST') || (action === undefined && m === 'DELETE'))) {
        const key = await ledger.getKey(id);
        if (!key) return fail(404, 'not_found', `No key with id or name "${id}".`);
        return { status: 200, body: keyView(await ledger.revokeKey(key.id, clock.now())) };
      }
      if (id !== undefined && action === 'rotate' && m === 'POST') {
        const grace = (spec(req.body) as { grace_seconds?: unknown }).grace_seconds ?? 0;
        if (typeof grace !== 'number' || !Number.isFinite(grace) || grace < 0) throw new KeyInputError(`grace_seconds takes a number of seconds, 0 or more; got ${JSON.stringify(grace)}.`);
        const { key, secret, oldRetiresAt } = await keys.rotate(id, grace * 1000);
        return { status: 200, body: { ...keyView(key), key: secret, previous_key_retires_at: new Date(oldRetiresAt).toISOString() } };
      }
    }
    if (resource === 'teams') {
      if (id === undefined && m === 'GET') return { status: 200, body: { data: (await ledger.listTeams()).map((t) => teamView(t)) } };
      if (id === undefined && m === 'POST') {
        const s = spec(req.body) as KeySpec & { id?: unknown };
        if (typeof s.id !== 'string' || s.id === '') throw new KeyInputError('A team needs an "id".');
        const team = await ledger.createTeam(teamId(s.id), teamLimitsFrom(s), clock.now());
        return { status: 201, body: teamView(team) };
      }
      if (id !== undefined && action === undefined && m === 'GET') return showTeam(id);
      if (id !== undefined && action === undefined && m === 'PATCH') {
        const current = await ledger.getTeam(id);
        if (!current) return fail(404, 'not_found', `No team named "${id}".`);
        await ledger.updateTeam(id, teamPatchFrom(spec(req.body), current));
        return showTeam(id);
      }
    }
    if (resource === 'usage' && id === undefined && m === 'GET') {
      const by = req.query.get('by') ?? 'key';
      if (!(USAGE_GROUPS as readonly string[]).includes(by)) throw new KeyInputError(`by takes ${USAGE_GROUPS.join(', ')}; got "${by}".`);
      const since = req.query.get('since');
      const sinceMs = since === null ? undefined : Date.parse(since);
      if (sinceMs !== undefined && Number.isNaN(sinceMs)) throw new KeyInputError(`since takes a date like 2026-12-01 or an ISO time; got "${since}".`);
      const rows = await ledger.usage({ by: by as UsageGroup, timeZone, ...(sinceMs === undefined ? {} : { sinceMs }) });
      return { status: 200, body: { by, data: rows.map((r) => usageView(by, r)) } };
    }
    return fail(404, 'not_found', `${m} ${req.path} is not part of the admin API (see GET /admin/keys, /admin/teams, /admin/usage).`);
  };

  return async (req) => {
    if (!req.principal.admin) return fail(403, 'permission_error', 'The admin API takes the master key or a key with the admin role.');
    try {
      return await route(req);
    } catch (err) {
      if (err instanceof KeyInputError) return fail(400, 'invalid_request_error', err.message);
      if (err instanceof LedgerError) return err.kind === 'not_found' ? fail(404, 'not_found', err.message) : fail(409, 'conflict', err.message);
      throw err;
    }
  };
}
