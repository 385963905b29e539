/**
 * Virtual keys: minting, hashing, rotating and checking them.
 *
 * A key reads `sk-sb-3f9a1c0d_<43 characters>`: the part before `_` is its public id (shown in
 * lists, logs and the ledger), the rest is 256 random bits. Only HMAC-SHA256(pepper, key) is
 * stored; the pepper is per install (`SWITCHBOARD_KEY_PEPPER`, else a random one written once
 * to `$SWITCHBOARD_HOME/keys.pepper`, mode 0600), so a copied ledger alone cannot be used to
 * test guesses. With 256-bit keys a fast hash is enough: there is nothing to brute-force.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { registerSecret } from '../errors.js';
import { switchboardHome } from '../paths.js';
import type { Env } from '../providers/resolve.js';
import type { KeyRecord, Ledger, NewKey } from '../store/ledger.js';
import { systemClock, type Clock } from '../store/shared-state.js';
import { AdmissionError, type Authenticator, type Principal } from './admission.js';

export const KEY_PREFIX = 'sk-sb-';

/** The install's pepper: from the environment, else the file beside the ledger (created on first use). */
export function loadPepper(env: Env = process.env): Buffer {
  const fromEnv = env.SWITCHBOARD_KEY_PEPPER;
  if (fromEnv !== undefined && fromEnv !== '') return Buffer.from(fromEnv, 'utf8');
  const home = switchboardHome(env);
  const file = join(home, 'keys.pepper');
  if (!existsSync(file)) {
    mkdirSync(home, { recursive: true });
    try {
      writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      // Another process wrote it first: read theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8');
}

/** The stored form of a key. */
export function hashKey(secret: string, pepper: Buffer): string {
  return createHmac('sha256', pepper).update(secret, 'utf8').digest('hex');
}

/** A new public id and the full key that starts with it. */
export function mintKey(id = `${KEY_PREFIX}${randomBytes(4).toString('hex')}`): { id: string; secret: string } {
  return { id, secret: `${id}_${randomBytes(32).toString('base64url')}` };
}

/** The key record each principal was made from, so admission need not read it again. */
const records = new WeakMap<Principal, KeyRecord>();

/** The key record `principal` was authenticated from in this request, if it came from here. */
export function keyRecordOf(principal: Principal): KeyRecord | undefined {
  return records.get(principal);
}

export function principalOf(key: KeyRecord): Principal {
  const p: Principal = { kind: 'virtual-key', keyId: key.id, admin: key.admin };
  if (key.teamId !== undefined) p.teamId = key.teamId;
  if (key.models !== undefined) p.allowedModels = key.models;
  records.set(p, key);
  return p;
}

export interface VirtualKeysOptions {
  ledger: Ledger;
  pepper: Buffer;
  clock?: Clock;
  /** The gateway's master key: accepted as the `master` principal (admin). */
  masterKey?: string;
  /**
   * When the ledger cannot be read: `closed` (default) refuses with 503; `open` accepts keys
   * this process saw valid before the outage (revocations cannot happen while it lasts).
   */
  onStoreError?: 'closed' | 'open';
}

/** How many recently valid keys `open` mode remembers for an outage. */
const REMEMBERED_KEYS = 10_000;

/** Creates and rotates keys, and authenticates them (the gateway's Authenticator). */
export class VirtualKeys implements Authenticator {
  private readonly ledger: Ledger;
  private readonly pepper: Buffer;
  private readonly clock: Clock;
  private readonly masterHash: Buffer | undefined;
  private readonly onStoreError: 'closed' | 'open';
  /** Hash -> principal of keys seen valid (open mode only), oldest first. */
  private readonly remembered = new Map<string, Principal>();

  constructor(options: VirtualKeysOptions) {
    this.ledger = options.ledger;
    this.pepper = options.pepper;
    this.clock = options.clock ?? systemClock;
    this.onStoreError = options.onStoreError ?? 'closed';
    if (options.masterKey !== undefined) {
      registerSecret(options.masterKey);
      this.masterHash = Buffer.from(hashKey(options.masterKey, this.pepper), 'hex');
    }
  }

  /** Store a new key; the returned secret is the only copy there will ever be. */
  async create(input: Omit<NewKey, 'id'>): Promise<{ key: KeyRecord; secret: string }> {
    const { id, secret } = mintKey();
    const key = await this.ledger.createKey({ ...input, id }, hashKey(secret, this.pepper), this.clock.now());
    return { key, secret };
  }

  /** A new secret for the key; the old ones keep working for `graceMs` (0: they stop now). */
  async rotate(idOrName: string, graceMs = 0): Promise<{ key: KeyRecord; secret: string; oldRetiresAt: number }> {
    const existing = await this.ledger.getKey(idOrName);
    const { secret } = mintKey(existing?.id);
    const now = this.clock.now();
    const key = await this.ledger.rotateKey(existing?.id ?? idOrName, hashKey(secret, this.pepper), now, now + graceMs);
    return { key, secret, oldRetiresAt: now + graceMs };
  }

  async authenticate(credential: string): Promise<Principal | null> {
    // One hash serves both checks: the master key's comparison and the ledger lookup.
    const hash = hashKey(credential, this.pepper);
    if (this.masterHash) {
      // Compare hashes, so the comparison is constant-time whatever the lengths.
      if (timingSafeEqual(Buffer.from(hash, 'hex'), this.masterHash)) return { kind: 'master', keyId: 'master', admin: true };
    }
    if (!credential.startsWith(KEY_PREFIX)) return null;
    let key: KeyRecord | undefined;
    try {
      key = await this.ledger.keyBySecretHash(hash, this.clock.now());
    } catch {
      const known = this.onStoreError === 'open' ? this.remembered.get(hash) : undefined;
      if (known) return known;
      throw new AdmissionError(503, 'The key store cannot be reached, so the key cannot be checked. Try again shortly.', { scope: 'store', retryAfterMs: 1000 });
    }
    if (!key) {
      this.remembered.delete(hash);
      return null;
    }
    const principal = principalOf(key);
    if (this.onStoreError === 'open') {
      this.remembered.delete(hash);
      this.remembered.set(hash, principal);
      if (this.remembered.size > REMEMBERED_KEYS) this.remembered.delete(this.remembered.keys().next().value as string);
    }
    return principal;
  }
}
