/** SQL of the users module: users, sessions, API keys. */
import { type Queryable, sql } from '../platform/db.ts';

/** A user row as stored. */
export interface UserRow {
  id: number;
  email: string;
  name: string;
  password_hash: string | null;
  kind: 'internal' | 'external';
  is_admin: boolean;
  disabled: boolean;
  created_at: Date;
}

/** An API key row as stored (never with its secret). */
export interface ApiKeyRow {
  id: number;
  user_id: number;
  name: string;
  prefix: string;
  scope: 'read-only' | 'read-write';
  created_at: Date;
  last_used_at: Date | null;
  expires_at: Date | null;
  revoked_at: Date | null;
  /** Requests a minute this key may make; null: the global RATE_LIMIT_PER_MINUTE. */
  rate_limit_per_minute: number | null;
  /** An admin allowed this key to act on behalf of other users (X-Bugzot-On-Behalf-Of). */
  on_behalf_of: boolean;
}

/** A key with its owner, as admins list them. */
export interface ApiKeyWithOwner extends ApiKeyRow {
  owner_email: string;
  owner_name: string;
}

const userColumns = sql`u.id, u.email, u.name, u.password_hash, u.kind, u.is_admin, u.disabled, u.created_at`;

export async function findUserByEmail(db: Queryable, email: string): Promise<UserRow | undefined> {
  const rows = await db.query<UserRow>(
    sql`SELECT ${userColumns} FROM users u WHERE lower(u.email) = lower(${email})`,
  );
  return rows[0];
}

export async function findUserById(db: Queryable, id: number): Promise<UserRow | undefined> {
  const rows = await db.query<UserRow>(sql`SELECT ${userColumns} FROM users u WHERE u.id = ${id}`);
  return rows[0];
}

export async function insertUser(
  db: Queryable,
  u: { email: string; name: string; passwordHash: string | null; kind: string; isAdmin: boolean },
): Promise<UserRow | undefined> {
  const rows = await db.query<UserRow>(sql`
    INSERT INTO users AS u (email, name, password_hash, kind, is_admin)
    VALUES (${u.email}, ${u.name}, ${u.passwordHash}, ${u.kind}, ${u.isAdmin})
    ON CONFLICT DO NOTHING
    RETURNING ${userColumns}`);
  return rows[0];
}

export async function updateUser(
  db: Queryable,
  id: number,
  patch: { name?: string; kind?: string; isAdmin?: boolean; disabled?: boolean; passwordHash?: string },
): Promise<UserRow | undefined> {
  const rows = await db.query<UserRow>(sql`
    UPDATE users u SET
      name = COALESCE(${patch.name ?? null}, u.name),
      kind = COALESCE(${patch.kind ?? null}, u.kind),
      is_admin = COALESCE(${patch.isAdmin ?? null}::boolean, u.is_admin),
      disabled = COALESCE(${patch.disabled ?? null}::boolean, u.disabled),
      password_hash = COALESCE(${patch.passwordHash ?? null}, u.password_hash)
    WHERE u.id = ${id}
    RETURNING ${userColumns}`);
  return rows[0];
}

/** Users in id order, matching a substring of e-mail or name; `afterId` pages on. */
export async function listUsers(
  db: Queryable,
  opts: { query?: string; limit: number; afterId?: number },
): Promise<UserRow[]> {
  const q = opts.query ? `%${opts.query.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
  return db.query<UserRow>(sql`
    SELECT ${userColumns} FROM users u
    WHERE (${q}::text IS NULL OR u.email ILIKE ${q} OR u.name ILIKE ${q}) AND u.id > ${opts.afterId ?? 0}
    ORDER BY u.id LIMIT ${opts.limit}`);
}

/** Session + its user, if the session is live. */
export async function findSession(
  db: Queryable,
  tokenHash: string,
): Promise<(UserRow & { csrf_token: string; last_seen_at: Date }) | undefined> {
  const rows = await db.query<UserRow & { csrf_token: string; last_seen_at: Date }>(sql`
    SELECT ${userColumns}, s.csrf_token, s.last_seen_at FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.token_hash = ${tokenHash} AND s.expires_at > now()`);
  return rows[0];
}

export async function insertSession(
  db: Queryable,
  s: { tokenHash: string; userId: number; csrfToken: string; ttlHours: number },
): Promise<void> {
  await db.query(sql`
    INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at)
    VALUES (${s.tokenHash}, ${s.userId}, ${s.csrfToken}, now() + make_interval(hours => ${s.ttlHours}::int))`);
}

/** Slides the session's expiry forward. */
export async function touchSession(db: Queryable, tokenHash: string, ttlHours: number): Promise<void> {
  await db.query(sql`
    UPDATE sessions SET last_seen_at = now(), expires_at = now() + make_interval(hours => ${ttlHours}::int)
    WHERE token_hash = ${tokenHash}`);
}

export async function deleteSession(db: Queryable, tokenHash: string): Promise<void> {
  await db.query(sql`DELETE FROM sessions WHERE token_hash = ${tokenHash}`);
}

export async function deleteSessionsOfUser(db: Queryable, userId: number, keepTokenHash = ''): Promise<void> {
  await db.query(sql`DELETE FROM sessions WHERE user_id = ${userId} AND token_hash <> ${keepTokenHash}`);
}

export async function deleteExpiredSessions(db: Queryable): Promise<void> {
  await db.query(sql`DELETE FROM sessions WHERE expires_at <= now()`);
}

const keyColumns = sql`k.id, k.user_id, k.name, k.prefix, k.scope, k.created_at, k.last_used_at, k.expires_at,
  k.revoked_at, k.rate_limit_per_minute, k.on_behalf_of`;

/** A live key's own settings, next to its owner's row. */
export type LiveKeyRow = UserRow & {
  key_id: number;
  scope: ApiKeyRow['scope'];
  rate_limit_per_minute: number | null;
  on_behalf_of: boolean;
};

/** A live key and its user. */
export async function findApiKey(db: Queryable, keyHash: string): Promise<LiveKeyRow | undefined> {
  const rows = await db.query<LiveKeyRow>(sql`
    SELECT ${userColumns}, k.id AS key_id, k.scope, k.rate_limit_per_minute, k.on_behalf_of
    FROM api_keys k JOIN users u ON u.id = k.user_id
    WHERE k.key_hash = ${keyHash} AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`);
  return rows[0];
}

export async function insertApiKey(
  db: Queryable,
  k: {
    userId: number;
    name: string;
    prefix: string;
    keyHash: string;
    scope: string;
    expiresAt: Date | null;
    rateLimitPerMinute: number | null;
    onBehalfOf: boolean;
  },
): Promise<ApiKeyRow> {
  const rows = await db.query<ApiKeyRow>(sql`
    INSERT INTO api_keys AS k (user_id, name, prefix, key_hash, scope, expires_at, rate_limit_per_minute, on_behalf_of)
    VALUES (${k.userId}, ${k.name}, ${k.prefix}, ${k.keyHash}, ${k.scope}, ${k.expiresAt}, ${k.rateLimitPerMinute},
            ${k.onBehalfOf})
    RETURNING ${keyColumns}`);
  return rows[0]!;
}

/** Any user's keys with their owners (admins), newest first; `userId` narrows to one owner. */
export async function listAllApiKeys(
  db: Queryable,
  opts: { userId?: number | undefined; limit: number; beforeId?: number | undefined },
): Promise<ApiKeyWithOwner[]> {
  return db.query<ApiKeyWithOwner>(sql`
    SELECT ${keyColumns}, u.email AS owner_email, u.name AS owner_name
    FROM api_keys k JOIN users u ON u.id = k.user_id
    WHERE (${opts.userId ?? null}::int IS NULL OR k.user_id = ${opts.userId ?? null})
      AND k.id < ${opts.beforeId ?? 2147483647}
    ORDER BY k.id DESC LIMIT ${opts.limit}`);
}

/** One key with its owner, live or not. */
export async function findApiKeyById(db: Queryable, id: number): Promise<ApiKeyWithOwner | undefined> {
  const rows = await db.query<ApiKeyWithOwner>(sql`
    SELECT ${keyColumns}, u.email AS owner_email, u.name AS owner_name
    FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ${id}`);
  return rows[0];
}

/** Changes a key's settings (admins); `rateLimitPerMinute: null` returns it to the global limit. */
export async function updateApiKey(
  db: Queryable,
  id: number,
  patch: { rateLimitPerMinute?: number | null; onBehalfOf?: boolean },
): Promise<ApiKeyRow | undefined> {
  const setLimit = patch.rateLimitPerMinute !== undefined;
  const rows = await db.query<ApiKeyRow>(sql`
    UPDATE api_keys k SET
      rate_limit_per_minute = CASE WHEN ${setLimit} THEN ${patch.rateLimitPerMinute ?? null}::int
                                   ELSE k.rate_limit_per_minute END,
      on_behalf_of = COALESCE(${patch.onBehalfOf ?? null}::boolean, k.on_behalf_of)
    WHERE k.id = ${id}
    RETURNING ${keyColumns}`);
  return rows[0];
}

export async function listApiKeys(db: Queryable, userId: number): Promise<ApiKeyRow[]> {
  return db.query<ApiKeyRow>(
    sql`SELECT ${keyColumns} FROM api_keys k WHERE k.user_id = ${userId} ORDER BY k.id`,
  );
}

/** Revokes one of the user's own keys; false when there is no such live key. */
export async function revokeApiKey(
  db: Queryable,
  userId: number,
  keyId: number,
): Promise<ApiKeyRow | undefined> {
  const rows = await db.query<ApiKeyRow>(sql`
    UPDATE api_keys k SET revoked_at = now()
    WHERE k.id = ${keyId} AND k.user_id = ${userId} AND k.revoked_at IS NULL
    RETURNING ${keyColumns}`);
  return rows[0];
}

/** Revokes every live key of a user (the account was disabled). */
export async function revokeApiKeysOfUser(db: Queryable, userId: number): Promise<void> {
  await db.query(
    sql`UPDATE api_keys SET revoked_at = now() WHERE user_id = ${userId} AND revoked_at IS NULL`,
  );
}

export async function touchApiKey(db: Queryable, keyId: number): Promise<void> {
  await db.query(sql`UPDATE api_keys SET last_used_at = now() WHERE id = ${keyId}`);
}
