/**
 * Accounts: users, password sign-in, server-side sessions and API keys. Sessions and keys are looked up
 * by the SHA-256 of a 256-bit random token; the token itself is never stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { isStaff, type UserViewer, type Viewer } from '../access/index.ts';
import type { Db } from '../platform/db.ts';
import {
  conflict,
  forbidden,
  invalid,
  notFound,
  unauthenticated,
  unprocessable,
} from '../platform/errors.ts';
import type { Invalidation } from '../platform/invalidation.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import * as repo from './repository.ts';
import type { LoginThrottle } from './throttle.ts';

export type { ApiKeyRow, ApiKeyWithOwner, UserRow } from './repository.ts';

/** What the users module needs from the app. */
export interface UsersDeps {
  db: Db;
  sessionTtlHours: number;
  credentials: CredentialCache;
  bus: Invalidation;
  throttle: LoginThrottle;
  /** The highest own rate limit a non-admin may give a key (API_KEY_RATE_LIMIT_MAX). */
  apiKeyRateLimitMax?: number;
}

/** API_KEY_RATE_LIMIT_MAX's default, for callers that built their deps without it. */
export const DEFAULT_API_KEY_RATE_LIMIT_MAX = 1200;

/** The prefix every API key starts with, so a leaked key is recognisable by secret scanners. */
export const API_KEY_PREFIX = 'bzk_';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const randomToken = () => randomBytes(32).toString('base64url');

/** Turns a stored user into the Viewer the access rules take. */
export function toViewer(u: repo.UserRow): UserViewer {
  return Object.freeze({
    kind: 'user',
    id: u.id,
    name: u.name,
    email: u.email,
    isInternal: u.kind === 'internal',
    isAdmin: u.is_admin,
  });
}

/** The public face of a user: what other users see. */
export function presentUser(u: repo.UserRow, viewer: Viewer) {
  const self = viewer.kind === 'user' && viewer.id === u.id;
  const staff = viewer.kind === 'user' && (viewer.isInternal || viewer.isAdmin);
  return {
    id: u.id,
    name: u.name,
    ...(self || staff ? { email: u.email, kind: u.kind, is_admin: u.is_admin, disabled: u.disabled } : {}),
  };
}

const MIN_PASSWORD = 10;

function checkPassword(password: string) {
  if (password.length < MIN_PASSWORD)
    throw invalid(`password must be at least ${MIN_PASSWORD} characters`, 'password');
  if (password.length > 1024) throw invalid('password must be at most 1024 characters', 'password');
}

/** Creates a user; a duplicate e-mail address (in any case) is a 409. */
export async function createUser(
  db: Db,
  input: { email: string; name: string; password: string; kind: 'internal' | 'external'; isAdmin?: boolean },
): Promise<repo.UserRow> {
  const email = input.email.trim();
  if (!/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 254)
    throw invalid('email must be an e-mail address (at most 254 characters)', 'email');
  if (input.name.trim().length > 120) throw invalid('name must be at most 120 characters', 'name');
  checkPassword(input.password);
  const passwordHash = await hashPassword(input.password);
  const row = await repo.insertUser(db, {
    email,
    name: input.name.trim() || email,
    passwordHash,
    kind: input.kind,
    isAdmin: input.isAdmin ?? false,
  });
  if (!row) throw conflict(`a user with e-mail ${email} already exists`, 'email');
  return row;
}

/** Whether any account exists yet (first start). */
export async function hasUsers(db: Db): Promise<boolean> {
  return (await repo.listUsers(db, { limit: 1 })).length > 0;
}

/** Looks a user up by id for a viewer; externals see only names, and only of active users. */
export async function getUser(db: Db, viewer: Viewer, id: number): Promise<repo.UserRow> {
  const u = await repo.findUserById(db, id);
  if (!u || viewer.kind !== 'user' || (u.disabled && !isStaff(viewer))) throw notFound('User', id);
  return u;
}

/** An active (not disabled) user by e-mail address, any case: whom a form names as assignee. */
export async function findActiveUserByEmail(db: Db, email: string): Promise<repo.UserRow | undefined> {
  const u = await repo.findUserByEmail(db, email.trim());
  return u && !u.disabled ? u : undefined;
}

/** Lists users matching a substring (staff only: customers must not enumerate the directory). */
export async function listUsers(
  db: Db,
  viewer: Viewer,
  opts: { query?: string; limit: number; afterId?: number },
) {
  if (viewer.kind !== 'user' || !(viewer.isInternal || viewer.isAdmin)) {
    throw forbidden('Only staff may list users.');
  }
  return repo.listUsers(db, opts);
}

/**
 * Admin-only changes to an account (kind, admin flag, disabled); disabling it ends its sessions and
 * revokes its API keys at once. Users may change only their own name and password.
 */
export async function updateUser(
  deps: UsersDeps,
  viewer: Viewer,
  id: number,
  patch: {
    name?: string;
    kind?: 'internal' | 'external';
    isAdmin?: boolean;
    disabled?: boolean;
    password?: string;
  },
  opts: { currentPassword?: string | undefined; keepSessionToken?: string | undefined } = {},
): Promise<repo.UserRow> {
  const self = viewer.kind === 'user' && viewer.id === id;
  const admin = viewer.kind === 'user' && viewer.isAdmin;
  if (
    !admin &&
    !(self && patch.kind === undefined && patch.isAdmin === undefined && patch.disabled === undefined)
  ) {
    throw forbidden('Only admins may change other accounts, kinds, admin rights or disable accounts.');
  }
  // An admin who disabled or demoted themselves could not undo it: another admin must.
  if (self && admin && (patch.disabled === true || patch.isAdmin === false)) {
    throw forbidden('You may not disable your own account or take away your own admin rights.');
  }
  if (patch.password !== undefined) {
    checkPassword(patch.password);
    // Changing one's own password needs the current one: a session left open must not be enough.
    if (self) {
      const current = await repo.findUserById(deps.db, id);
      if (!(await verifyPassword(current?.password_hash, opts.currentPassword ?? ''))) {
        throw invalid('current_password is missing or wrong', 'current_password');
      }
    }
  }
  const passwordHash = patch.password === undefined ? undefined : await hashPassword(patch.password);
  // Names appear inside cached bugs: a rename invalidates them all; any change drops the user's credentials.
  const topics = [`user:${id}`, ...(patch.name !== undefined ? ['all'] : [])];
  const row = await deps.db.transaction(async (tx) => {
    const updated = await repo.updateUser(tx, id, {
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.kind !== undefined ? { kind: patch.kind } : {}),
      ...(patch.isAdmin !== undefined ? { isAdmin: patch.isAdmin } : {}),
      ...(patch.disabled !== undefined ? { disabled: patch.disabled } : {}),
      ...(passwordHash !== undefined ? { passwordHash } : {}),
    });
    if (!updated) throw notFound('User', id);
    // Disabling ends every session; a new password ends every other session (not the one that set it).
    // Disabling also revokes the account's API keys (re-enabling does not bring them back).
    if (patch.disabled) {
      await repo.deleteSessionsOfUser(tx, id);
      await repo.revokeApiKeysOfUser(tx, id);
    } else if (passwordHash !== undefined) {
      await repo.deleteSessionsOfUser(tx, id, opts.keepSessionToken ? sha256(opts.keepSessionToken) : '');
    }
    await deps.bus.publish(tx, ...topics);
    return updated;
  });
  for (const t of topics) await deps.bus.apply(t);
  return row;
}

/** Checks an e-mail and password; undefined for a wrong pair or a disabled account. */
export async function authenticate(
  db: Db,
  email: string,
  password: string,
): Promise<repo.UserRow | undefined> {
  const user = await repo.findUserByEmail(db, email);
  const ok = await verifyPassword(user?.password_hash, password);
  return ok && user && !user.disabled ? user : undefined;
}

/** Who a credential belongs to, as resolved for one request. */
export interface Credential {
  viewer: UserViewer;
  via: 'session' | 'api-key';
  scope: 'read-only' | 'read-write';
  csrfToken?: string;
  keyId?: number;
  /** The key's own requests-a-minute limit; null/absent: the global one. */
  rateLimitPerMinute?: number | null;
  /** The key may act on behalf of other users (an admin allowed it). */
  onBehalfOf?: boolean;
  /**
   * Set when the request acts on behalf of another user: `viewer` is that user, `actor` the key's
   * owner, who really made the request (recorded beside each change as via_user_id / via_key_id).
   */
  actor?: { id: number; email: string; name: string; keyId: number };
}

/**
 * Resolved credentials (session or API key -> viewer), so that hot API paths do not pay a lookup per
 * request. Logout, revocation and account changes are published on the invalidation bus and dropped by
 * every process; entries also expire after a minute as a safety net.
 */
export class CredentialCache {
  private readonly entries = new LRUCache<string, Credential>({ max: 20_000, ttl: 60_000 });

  constructor(bus: Invalidation) {
    bus.on((topic) => {
      if (topic === 'all') this.entries.clear();
      else if (topic.startsWith('user:')) {
        const id = Number(topic.slice(5));
        this.forget((c) => c.viewer.id === id || c.actor?.id === id);
      } else if (topic.startsWith('key:')) this.forget((c) => c.keyId === Number(topic.slice(4)));
      else if (topic.startsWith('session:')) this.entries.delete(`s:${topic.slice(8)}`);
    });
  }

  get(key: string) {
    return this.entries.get(key);
  }

  set(key: string, cred: Credential) {
    this.entries.set(key, cred);
  }

  private forget(match: (c: Credential) => boolean) {
    for (const [k, v] of this.entries.entries()) if (match(v)) this.entries.delete(k);
  }
}

/**
 * Signs in with e-mail and password, throttled per address and e-mail (429 past the limit): the user and
 * a new session, or a 401 that does not say which of the two was wrong.
 */
export async function signIn(deps: UsersDeps, input: { email: string; password: string; ip: string }) {
  await deps.throttle.attempt(input.email, input.ip);
  const user = await authenticate(deps.db, input.email, input.password);
  if (!user) throw unauthenticated('Wrong e-mail address or password.');
  await deps.throttle.succeed(input.email, input.ip);
  return { user, ...(await startSession(deps, user.id)) };
}

/** Starts a session; returns the cookie token (shown to the browser only) and its CSRF token. */
export async function startSession(deps: UsersDeps, userId: number) {
  const token = randomToken();
  const csrfToken = randomToken();
  await repo.insertSession(deps.db, {
    tokenHash: sha256(token),
    userId,
    csrfToken,
    ttlHours: deps.sessionTtlHours,
  });
  return { token, csrfToken };
}

/** Resolves a session cookie; slides its expiry at most every five minutes. */
export async function resolveSession(deps: UsersDeps, token: string): Promise<Credential | undefined> {
  const hash = sha256(token);
  const epoch = deps.bus.epoch;
  const cached = deps.credentials.get(`s:${hash}`);
  if (cached) return cached;
  const row = await repo.findSession(deps.db, hash);
  if (!row || row.disabled) return undefined;
  if (Date.now() - row.last_seen_at.getTime() > 5 * 60_000) {
    await repo.touchSession(deps.db, hash, deps.sessionTtlHours);
  }
  const cred: Credential = {
    viewer: toViewer(row),
    via: 'session',
    scope: 'read-write',
    csrfToken: row.csrf_token,
  };
  if (deps.bus.epoch === epoch) deps.credentials.set(`s:${hash}`, cred);
  return cred;
}

/** Ends a session. */
export async function endSession(deps: UsersDeps, token: string): Promise<void> {
  const hash = sha256(token);
  await deps.db.transaction(async (tx) => {
    await repo.deleteSession(tx, hash);
    await deps.bus.publish(tx, `session:${hash}`);
  });
  await deps.bus.apply(`session:${hash}`);
}

/**
 * Creates an API key for the viewer; the returned `key` is shown once and never again. A key's own rate
 * limit may be at most `maxRateLimitPerMinute` unless the viewer is an admin; only admins may create a
 * key that acts on behalf of other users.
 */
export async function createApiKey(
  db: Db,
  viewer: UserViewer,
  input: {
    name: string;
    scope: 'read-only' | 'read-write';
    expiresAt: Date | null;
    rateLimitPerMinute?: number | null | undefined;
    onBehalfOf?: boolean | undefined;
  },
  opts: { maxRateLimitPerMinute?: number | undefined } = {},
) {
  if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) {
    throw invalid('expires_at must be in the future', 'expires_at');
  }
  checkKeyRateLimit(viewer, input.rateLimitPerMinute, opts.maxRateLimitPerMinute);
  if (input.onBehalfOf && !viewer.isAdmin) {
    throw forbidden('Only admins may allow a key to act on behalf of other users.');
  }
  const secret = randomToken();
  const key = `${API_KEY_PREFIX}${secret}`;
  const row = await repo.insertApiKey(db, {
    userId: viewer.id,
    name: input.name,
    prefix: key.slice(0, API_KEY_PREFIX.length + 6),
    keyHash: sha256(key),
    scope: input.scope,
    expiresAt: input.expiresAt,
    rateLimitPerMinute: input.rateLimitPerMinute ?? null,
    onBehalfOf: input.onBehalfOf ?? false,
  });
  return { key, row };
}

/** Hard bounds of a key's own limit (the database checks them too). */
const KEY_LIMIT_BOUNDS = { min: 1, max: 1_000_000 };

/** Refuses a key rate limit out of bounds, or above `max` for a non-admin (422 naming the field). */
export function checkKeyRateLimit(
  viewer: UserViewer,
  limit: number | null | undefined,
  max: number | undefined,
) {
  if (limit === null || limit === undefined) return;
  if (!Number.isInteger(limit) || limit < KEY_LIMIT_BOUNDS.min || limit > KEY_LIMIT_BOUNDS.max) {
    throw invalid(
      `rate_limit_per_minute must be a whole number from ${KEY_LIMIT_BOUNDS.min} to ${KEY_LIMIT_BOUNDS.max}`,
      'rate_limit_per_minute',
    );
  }
  const cap = max ?? DEFAULT_API_KEY_RATE_LIMIT_MAX;
  if (!viewer.isAdmin && limit > cap) {
    throw unprocessable(
      `rate_limit_per_minute may be at most ${cap}; ask an admin for a higher limit`,
      'rate_limit_per_minute',
    );
  }
}

/** Lists the viewer's own API keys (never their secrets). */
export function listApiKeys(deps: UsersDeps, viewer: UserViewer) {
  return repo.listApiKeys(deps.db, viewer.id);
}

/** Revokes one of the viewer's keys; effective at once in this process. */
export async function revokeApiKey(deps: UsersDeps, viewer: UserViewer, keyId: number) {
  const row = await deps.db.transaction(async (tx) => {
    const revoked = await repo.revokeApiKey(tx, viewer.id, keyId);
    if (!revoked) throw notFound('API key', keyId);
    await deps.bus.publish(tx, `key:${keyId}`);
    return revoked;
  });
  await deps.bus.apply(`key:${keyId}`);
  return row;
}

const lastTouched = new LRUCache<number, number>({ max: 10_000 });

/** Resolves a bearer API key; records its last use at most once a minute. */
export async function resolveApiKey(deps: UsersDeps, key: string): Promise<Credential | undefined> {
  if (!key.startsWith(API_KEY_PREFIX) || key.length > 200) return undefined;
  const hash = sha256(key);
  let cred = deps.credentials.get(`k:${hash}`);
  if (!cred) {
    const epoch = deps.bus.epoch;
    const row = await repo.findApiKey(deps.db, hash);
    if (!row || row.disabled) return undefined;
    cred = {
      viewer: toViewer(row),
      via: 'api-key',
      scope: row.scope,
      keyId: row.key_id,
      rateLimitPerMinute: row.rate_limit_per_minute,
      onBehalfOf: row.on_behalf_of,
    };
    if (deps.bus.epoch === epoch) deps.credentials.set(`k:${hash}`, cred);
  }
  const keyId = cred.keyId!;
  const now = Date.now();
  if (now - (lastTouched.get(keyId) ?? 0) > 60_000) {
    lastTouched.set(keyId, now);
    await repo.touchApiKey(deps.db, keyId);
  }
  return cred;
}

/** Removes expired sessions (run periodically). */
export function purgeExpiredSessions(db: Db) {
  return repo.deleteExpiredSessions(db);
}
