/**
 * Accounts over HTTP: password sign-in and its session cookie, sign-out, disabled accounts, sign-in
 * throttling, password storage, API keys (shown once, stored hashed, revocable, expiring, read-only),
 * the Authorization header, CSRF and cross-site checks for cookie sessions, and who may create, change
 * and list users.
 *
 * One app for the whole file, with LOGIN_MAX_ATTEMPTS=3 (so throttling is cheap to reach) and
 * TRUST_PROXY=127.0.0.1 (the address `inject` comes from), so X-Forwarded-Proto can be tested without a
 * second app. Throttling tests use their own client addresses so the other tests' failures do not count.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { sql } from '../src/platform/db.ts';
import { startTestApp, type TestApp, type TestUser } from './helpers/app.ts';

const PASSWORD = 'correct horse battery';
const LOGIN = '/api/v1/session';

let t: TestApp;
let admin: TestUser;
let dev: TestUser;
let alice: TestUser;

before(async () => {
  t = await startTestApp({ LOGIN_MAX_ATTEMPTS: '3', TRUST_PROXY: '127.0.0.1' });
  admin = await t.user({ admin: true, name: 'Admin' });
  dev = await t.user({ kind: 'internal', name: 'Dev' });
  alice = await t.user({ kind: 'external', name: 'Alice' });
});
after(() => t.close());

type Res = Awaited<ReturnType<TestApp['request']>>;

function signIn(
  email: string,
  password: string,
  extra: { headers?: Record<string, string>; remoteAddress?: string } = {},
) {
  return t.request({ method: 'POST', url: LOGIN, payload: { email, password }, ...extra });
}

/** The raw Set-Cookie header of the session cookie. */
function rawSessionCookie(res: Res): string {
  const header = res.headers['set-cookie'];
  const all = header === undefined ? [] : [header].flat();
  const found = all.find((c) => c.startsWith('bugzot_session='));
  assert.ok(found, `no bugzot_session cookie in ${JSON.stringify(header)}`);
  return found;
}

/** A Cookie request header carrying the session of a sign-in answer. */
function sessionHeader(res: Res): string {
  const cookie = res.cookies.find((c) => c.name === 'bugzot_session');
  assert.ok(cookie?.value, 'sign-in set no session cookie');
  return `bugzot_session=${cookie.value}`;
}

/** Attributes of a Set-Cookie header, lower-cased, without the name=value pair. */
function attributes(setCookie: string): string[] {
  return setCookie
    .split(';')
    .slice(1)
    .map((a) => a.trim().toLowerCase());
}

async function signedInSession(user: TestUser) {
  const res = await signIn(user.email, PASSWORD);
  assert.equal(res.statusCode, 200, res.body);
  return { cookie: sessionHeader(res), csrf: res.data.csrf_token as string };
}

async function count(table: 'users' | 'api_keys' | 'sessions'): Promise<number> {
  const query = {
    users: sql`SELECT count(*)::int AS n FROM users`,
    api_keys: sql`SELECT count(*)::int AS n FROM api_keys`,
    sessions: sql`SELECT count(*)::int AS n FROM sessions`,
  }[table];
  return (await t.db.query<{ n: number }>(query))[0]!.n;
}

function assertError(res: Res, status: number, code?: string) {
  assert.equal(res.statusCode, status, res.body);
  assert.equal(typeof res.data?.error?.message, 'string', res.body);
  if (code) assert.equal(res.data.error.code, code, res.body);
}

// --- Sign-in and the session cookie -------------------------------------------------------------------

test('signing in with the right password answers 200 with an HttpOnly, SameSite=Lax, Path=/ session cookie', async () => {
  const res = await signIn(alice.email, PASSWORD);
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.data.user.id, alice.id);
  assert.equal(typeof res.data.csrf_token, 'string');
  const attrs = attributes(rawSessionCookie(res));
  assert.ok(attrs.includes('httponly'), `not HttpOnly: ${attrs}`);
  assert.ok(attrs.includes('samesite=lax'), `not SameSite=Lax: ${attrs}`);
  assert.ok(attrs.includes('path=/'), `not Path=/: ${attrs}`);
  assert.ok(!attrs.includes('secure'), `Secure over plain http would never be sent back: ${attrs}`);
});

test('the e-mail address is matched without regard to case at sign-in', async () => {
  const res = await signIn(alice.email.toUpperCase(), PASSWORD);
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.data.user.id, alice.id);
});

test('behind a trusted proxy, a sign-in that came over https sets a Secure cookie', async () => {
  const res = await signIn(alice.email, PASSWORD, { headers: { 'x-forwarded-proto': 'https' } });
  assert.equal(res.statusCode, 200, res.body);
  assert.ok(attributes(rawSessionCookie(res)).includes('secure'));
});

test('X-Forwarded-Proto from a peer that is not a trusted proxy is ignored', async () => {
  const res = await signIn(alice.email, PASSWORD, {
    headers: { 'x-forwarded-proto': 'https' },
    remoteAddress: '203.0.113.77',
  });
  assert.equal(res.statusCode, 200, res.body);
  assert.ok(!attributes(rawSessionCookie(res)).includes('secure'));
});

test('the session cookie authenticates GET /api/v1/me, which hands back the CSRF token', async () => {
  const session = await signedInSession(alice);
  const me = await t.request({ method: 'GET', url: '/api/v1/me', headers: { cookie: session.cookie } });
  assert.equal(me.statusCode, 200, me.body);
  assert.equal(me.data.id, alice.id);
  assert.equal(me.data.auth, 'session');
  assert.equal(me.data.csrf_token, session.csrf);
});

test('GET /api/v1/me without credentials answers 401', async () => {
  assertError(await t.request({ method: 'GET', url: '/api/v1/me' }), 401, 'unauthenticated');
});

test('a made-up session cookie answers 401', async () => {
  const res = await t.request({
    method: 'GET',
    url: '/api/v1/me',
    headers: { cookie: 'bugzot_session=forged' },
  });
  assertError(res, 401, 'unauthenticated');
});

test('a wrong password and an unknown e-mail both answer 401 with the same message', async () => {
  const sessions = await count('sessions');
  const wrongPassword = await signIn(alice.email, 'not the password');
  const unknownEmail = await signIn('nobody@example.test', PASSWORD);
  assertError(wrongPassword, 401, 'unauthenticated');
  assertError(unknownEmail, 401, 'unauthenticated');
  assert.deepEqual(unknownEmail.data, wrongPassword.data);
  assert.equal(wrongPassword.headers['set-cookie'], undefined);
  assert.equal(await count('sessions'), sessions);
});

test('signing out ends the session: the cookie is cleared and no longer works', async () => {
  const { cookie } = await signedInSession(alice);
  const sessionsBefore = await count('sessions');
  const out = await t.request({ method: 'DELETE', url: LOGIN, headers: { cookie } });
  assert.equal(out.statusCode, 204, out.body);
  const cleared = rawSessionCookie(out);
  assert.match(cleared, /^bugzot_session=;/);
  assert.ok(attributes(cleared).some((a) => a === 'max-age=0' || a.startsWith('expires=thu, 01 jan 1970')));
  assert.equal(await count('sessions'), sessionsBefore - 1);
  const me = await t.request({ method: 'GET', url: '/api/v1/me', headers: { cookie } });
  assertError(me, 401, 'unauthenticated');
});

// --- Disabled accounts --------------------------------------------------------------------------------

test('a disabled user cannot sign in, and their sessions and API keys stop working at once', async () => {
  const carol = await t.user({ name: 'Carol' });
  const { cookie } = await signedInSession(carol);
  // Both credentials are used first, so a cached resolution would show here.
  assert.equal((await t.request({ method: 'GET', url: '/api/v1/me', headers: { cookie } })).statusCode, 200);
  assert.equal((await t.request({ method: 'GET', url: '/api/v1/me', as: carol })).statusCode, 200);

  const disable = await t.request({
    method: 'PATCH',
    url: `/api/v1/users/${carol.id}`,
    payload: { disabled: true },
    as: admin,
  });
  assert.equal(disable.statusCode, 200, disable.body);
  assert.equal(disable.data.disabled, true);

  assertError(
    await t.request({ method: 'GET', url: '/api/v1/me', headers: { cookie } }),
    401,
    'unauthenticated',
  );
  assertError(await t.request({ method: 'GET', url: '/api/v1/me', as: carol }), 401, 'unauthenticated');
  const again = await signIn(carol.email, PASSWORD);
  assertError(again, 401, 'unauthenticated');
  // Same answer as a wrong password: a disabled account is not confirmed to exist.
  assert.equal(again.data.error.message, 'Wrong e-mail address or password.');
  const left = await t.db.query<{ n: number }>(
    sql`SELECT count(*)::int AS n FROM sessions WHERE user_id = ${carol.id}`,
  );
  assert.equal(left[0]!.n, 0);
});

test('an external user cannot look up a disabled user by id', {}, async () => {
  const gone = await t.user({ name: 'Gone' });
  const off = await t.request({
    method: 'PATCH',
    url: `/api/v1/users/${gone.id}`,
    payload: { disabled: true },
    as: admin,
  });
  assert.equal(off.statusCode, 200, off.body);
  assertError(
    await t.request({ method: 'GET', url: `/api/v1/users/${gone.id}`, as: alice }),
    404,
    'not_found',
  );
});

// --- Throttling ---------------------------------------------------------------------------------------

test('after LOGIN_MAX_ATTEMPTS failed sign-ins for an address, even the right password answers 429', async () => {
  const dave = await t.user({ name: 'Dave' });
  const from = { remoteAddress: '198.51.100.10' };
  for (let i = 0; i < 3; i++)
    assertError(await signIn(dave.email, `wrong ${i}`, from), 401, 'unauthenticated');
  assertError(await signIn(dave.email, PASSWORD, from), 429, 'rate_limited');
  // The count is per account, so changing address or case does not get around it.
  assertError(
    await signIn(dave.email.toUpperCase(), PASSWORD, { remoteAddress: '198.51.100.11' }),
    429,
    'rate_limited',
  );
  // Another account from the same address is not locked out by Dave's failures.
  const erin = await t.user({ name: 'Erin' });
  assert.equal((await signIn(erin.email, PASSWORD, from)).statusCode, 200);
});

test('concurrent failed sign-ins cannot get more than LOGIN_MAX_ATTEMPTS guesses checked', async () => {
  const zed = await t.user({ name: 'Zed' });
  const burst = await Promise.all(
    Array.from({ length: 12 }, (_, i) => signIn(zed.email, `wrong ${i}`, { remoteAddress: '198.51.100.40' })),
  );
  const checked = burst.filter((r) => r.statusCode === 401).length;
  assert.ok(checked <= 3, `${checked} passwords were checked, though the limit is 3`);
  assert.ok(burst.every((r) => r.statusCode === 401 || r.statusCode === 429));
});

test('many failures from one client address are throttled, and a spoofed X-Forwarded-For does not reset it', async () => {
  // The per-address budget is five times the per-account one: 15 here, spread over unknown accounts.
  const attacker = '203.0.113.66';
  for (let i = 0; i < 15; i++) {
    const res = await signIn(`guess${i}@example.test`, 'guess', {
      remoteAddress: attacker,
      headers: { 'x-forwarded-for': `192.0.2.${i + 1}` },
    });
    assertError(res, 401, 'unauthenticated');
  }
  const frank = await t.user({ name: 'Frank' });
  const blocked = await signIn(frank.email, PASSWORD, {
    remoteAddress: attacker,
    headers: { 'x-forwarded-for': '192.0.2.200' },
  });
  assertError(blocked, 429, 'rate_limited');
  assert.equal((await signIn(frank.email, PASSWORD, { remoteAddress: '198.51.100.99' })).statusCode, 200);
});

// --- Password storage ---------------------------------------------------------------------------------

test('passwords are stored as argon2id hashes, never in clear', async () => {
  const rows = await t.db.query<{ password_hash: string }>(
    sql`SELECT password_hash FROM users WHERE id = ${alice.id}`,
  );
  const stored = rows[0]!.password_hash;
  assert.match(stored, /^\$argon2id\$/);
  assert.ok(!stored.includes(PASSWORD));
});

// --- API keys -----------------------------------------------------------------------------------------

async function newKey(as: TestUser, payload: Record<string, unknown>) {
  const res = await t.request({ method: 'POST', url: '/api/v1/api-keys', payload, as });
  assert.equal(res.statusCode, 201, res.body);
  const key = res.data.key as string;
  return { id: res.data.id as number, key, auth: { authorization: `Bearer ${key}` }, data: res.data };
}

test('POST /api/v1/api-keys shows the new key once; it starts with bzk_ and works as a bearer token', async () => {
  const created = await newKey(alice, { name: 'laptop' });
  assert.match(created.key, /^bzk_[A-Za-z0-9_-]{20,}$/);
  assert.equal(created.data.scope, 'read-write');
  assert.ok(created.key.startsWith(created.data.prefix));
  const me = await t.request({ method: 'GET', url: '/api/v1/me', headers: created.auth });
  assert.equal(me.statusCode, 200, me.body);
  assert.equal(me.data.id, alice.id);
  assert.equal(me.data.auth, 'api-key');
});

test('GET /api/v1/api-keys lists the keys without their secrets', async () => {
  const created = await newKey(alice, { name: 'listed' });
  const list = await t.request({ method: 'GET', url: '/api/v1/api-keys', as: alice });
  assert.equal(list.statusCode, 200, list.body);
  const listed = list.data.api_keys.find((k: { id: number }) => k.id === created.id);
  assert.ok(listed, 'the new key is not listed');
  assert.equal(listed.name, 'listed');
  assert.ok(!('key' in listed));
  assert.ok(!list.body.includes(created.key), 'a listing shows a secret');
  assert.ok(!list.body.includes(created.key.slice(12)), 'a listing shows part of a secret beyond its prefix');
});

test('the database stores only the SHA-256 hex of an API key, never the key', async () => {
  const created = await newKey(alice, { name: 'hashed' });
  const rows = await t.db.query<Record<string, unknown>>(sql`SELECT * FROM api_keys`);
  const mine = rows.find((r) => r['id'] === created.id)!;
  assert.equal(mine['key_hash'], createHash('sha256').update(created.key).digest('hex'));
  const secret = created.key.slice('bzk_'.length);
  const dump = JSON.stringify(rows);
  assert.ok(!dump.includes(created.key) && !dump.includes(secret), 'api_keys holds the key itself');
});

test('a revoked API key answers 401 at once, even right after it was used', async () => {
  const created = await newKey(alice, { name: 'to revoke' });
  assert.equal(
    (await t.request({ method: 'GET', url: '/api/v1/me', headers: created.auth })).statusCode,
    200,
  );
  const revoke = await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${created.id}`, as: alice });
  assert.equal(revoke.statusCode, 204, revoke.body);
  assertError(
    await t.request({ method: 'GET', url: '/api/v1/me', headers: created.auth }),
    401,
    'unauthenticated',
  );
});

test("users cannot revoke somebody else's API key (404)", async () => {
  const created = await newKey(alice, { name: 'not yours' });
  const res = await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${created.id}`, as: dev });
  assertError(res, 404, 'not_found');
  assert.equal(
    (await t.request({ method: 'GET', url: '/api/v1/me', headers: created.auth })).statusCode,
    200,
  );
});

test('an expired API key answers 401', async () => {
  const created = await newKey(alice, {
    name: 'short-lived',
    expires_at: new Date(Date.now() + 3600_000).toISOString(),
  });
  await t.db.query(
    sql`UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = ${created.id}`,
  );
  assertError(
    await t.request({ method: 'GET', url: '/api/v1/me', headers: created.auth }),
    401,
    'unauthenticated',
  );
});

test('an API key cannot be created already expired (400 naming expires_at)', async () => {
  const keys = await count('api_keys');
  const res = await t.request({
    method: 'POST',
    url: '/api/v1/api-keys',
    payload: { name: 'stale', expires_at: '2000-01-01T00:00:00Z' },
    as: alice,
  });
  assertError(res, 400);
  assert.equal(res.data.error.field, 'expires_at');
  assert.equal(await count('api_keys'), keys);
});

test('a read-only API key may read but not POST or PATCH (403)', async () => {
  const ro = await newKey(alice, { name: 'read only', scope: 'read-only' });
  assert.equal(ro.data.scope, 'read-only');
  assert.equal((await t.request({ method: 'GET', url: '/api/v1/me', headers: ro.auth })).statusCode, 200);
  assert.equal(
    (await t.request({ method: 'GET', url: '/api/v1/api-keys', headers: ro.auth })).statusCode,
    200,
  );

  const keys = await count('api_keys');
  const post = await t.request({
    method: 'POST',
    url: '/api/v1/api-keys',
    payload: { name: 'escalate' },
    headers: ro.auth,
  });
  assertError(post, 403, 'forbidden');
  assert.equal(await count('api_keys'), keys);

  const patch = await t.request({
    method: 'PATCH',
    url: `/api/v1/users/${alice.id}`,
    payload: { name: 'Renamed by a read-only key' },
    headers: ro.auth,
  });
  assertError(patch, 403, 'forbidden');
  const rows = await t.db.query<{ name: string }>(sql`SELECT name FROM users WHERE id = ${alice.id}`);
  assert.equal(rows[0]!.name, 'Alice');

  const del = await t.request({ method: 'DELETE', url: `/api/v1/api-keys/${ro.id}`, headers: ro.auth });
  assertError(del, 403, 'forbidden');
});

test('a malformed or unknown Authorization header answers 401', async () => {
  const headers = [
    'Basic YWxpY2U6cGFzc3dvcmQ=',
    'Bearer',
    'Bearer ',
    `Bearer ${alice.key} extra`,
    alice.key,
    'Bearer bzk_unknownunknownunknownunknown',
    'Bearer not-a-bugzot-key',
    `Bearer bzk_${'a'.repeat(300)}`,
  ];
  for (const authorization of headers) {
    const res = await t.request({ method: 'GET', url: '/api/v1/me', headers: { authorization } });
    assertError(res, 401, 'unauthenticated');
  }
});

test('a bad Authorization header is refused even next to a valid session cookie', async () => {
  const { cookie } = await signedInSession(alice);
  const res = await t.request({
    method: 'GET',
    url: '/api/v1/me',
    headers: { cookie, authorization: 'Basic eDp5' },
  });
  assertError(res, 401, 'unauthenticated');
});

// --- CSRF and cross-site requests ---------------------------------------------------------------------

test('a session-cookie POST of a non-JSON body without X-CSRF-Token answers 403 csrf_failed', async () => {
  const { cookie } = await signedInSession(alice);
  const keys = await count('api_keys');
  for (const contentType of [
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'text/plain',
  ]) {
    const res = await t.request({
      method: 'POST',
      url: '/api/v1/api-keys',
      headers: { cookie, 'content-type': contentType },
      payload: 'name=from-a-form',
    });
    assertError(res, 403, 'csrf_failed');
  }
  assert.equal(await count('api_keys'), keys);
});

test('a wrong X-CSRF-Token is refused like a missing one', async () => {
  const { cookie } = await signedInSession(alice);
  const res = await t.request({
    method: 'POST',
    url: '/api/v1/api-keys',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': 'guessed' },
    payload: 'name=x',
  });
  assertError(res, 403, 'csrf_failed');
});

test('with the right X-CSRF-Token a form POST passes the CSRF check (and is then refused as 415)', async () => {
  const { cookie, csrf } = await signedInSession(alice);
  const res = await t.request({
    method: 'POST',
    url: '/api/v1/api-keys',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': csrf },
    payload: 'name=x',
  });
  assertError(res, 415, 'unsupported_media_type');
});

test('a same-site JSON POST with the session cookie needs no CSRF token', async () => {
  const { cookie } = await signedInSession(alice);
  const plain = await t.request({
    method: 'POST',
    url: '/api/v1/api-keys',
    headers: { cookie },
    payload: { name: 'json' },
  });
  assert.equal(plain.statusCode, 201, plain.body);
  const sameOrigin = await t.request({
    method: 'POST',
    url: '/api/v1/api-keys',
    headers: { cookie, host: 'bugzot.example', origin: 'http://bugzot.example' },
    payload: { name: 'same origin' },
  });
  assert.equal(sameOrigin.statusCode, 201, sameOrigin.body);
});

test('a cross-site Origin with the session cookie answers 403, JSON or not', async () => {
  const { cookie, csrf } = await signedInSession(alice);
  const keys = await count('api_keys');
  for (const origin of ['https://evil.example', 'null', 'http://bugzot.example.evil.example', 'not a url']) {
    const res = await t.request({
      method: 'POST',
      url: '/api/v1/api-keys',
      headers: { cookie, host: 'bugzot.example', origin, 'x-csrf-token': csrf },
      payload: { name: 'cross-site' },
    });
    assertError(res, 403, 'forbidden');
  }
  const patch = await t.request({
    method: 'PATCH',
    url: `/api/v1/users/${alice.id}`,
    headers: { cookie, host: 'bugzot.example', origin: 'https://evil.example' },
    payload: { name: 'Pwned' },
  });
  assertError(patch, 403, 'forbidden');
  assert.equal(await count('api_keys'), keys);
});

test('an API-key request is not subject to the Origin check (a key is not an ambient credential)', async () => {
  const res = await t.request({
    method: 'POST',
    url: '/api/v1/api-keys',
    headers: { origin: 'https://ci.example' },
    payload: { name: 'from ci' },
    as: alice,
  });
  assert.equal(res.statusCode, 201, res.body);
});

// --- Managing users -----------------------------------------------------------------------------------

const newUser = (email: string, extra: Record<string, unknown> = {}) => ({
  email,
  name: 'New Person',
  password: 'a long enough password',
  kind: 'external',
  ...extra,
});

test('only admins may create users: external and internal non-admins get 403', async () => {
  const users = await count('users');
  for (const as of [alice, dev]) {
    const res = await t.request({
      method: 'POST',
      url: '/api/v1/users',
      payload: newUser('sneaky@example.test'),
      as,
    });
    assertError(res, 403, 'forbidden');
  }
  assert.equal(await count('users'), users);
});

test('an admin creates a user (201) who can then sign in', async () => {
  const res = await t.request({
    method: 'POST',
    url: '/api/v1/users',
    payload: newUser('grace@example.test'),
    as: admin,
  });
  assert.equal(res.statusCode, 201, res.body);
  assert.equal(res.data.email, 'grace@example.test');
  assert.equal(res.data.kind, 'external');
  assert.equal(res.data.is_admin, false);
  assert.ok(!('password_hash' in res.data) && !res.body.includes('a long enough password'));
  assert.equal((await signIn('grace@example.test', 'a long enough password')).statusCode, 200);
});

test('creating a user whose e-mail differs only in case from an existing one answers 409 naming email', async () => {
  const users = await count('users');
  const res = await t.request({
    method: 'POST',
    url: '/api/v1/users',
    payload: newUser(alice.email.toUpperCase()),
    as: admin,
  });
  assertError(res, 409);
  assert.equal(res.data.error.field, 'email');
  assert.equal(await count('users'), users);
});

test('a password under 10 characters is refused with 400 naming password', async () => {
  const users = await count('users');
  const res = await t.request({
    method: 'POST',
    url: '/api/v1/users',
    payload: newUser('short@example.test', { password: 'short' }),
    as: admin,
  });
  assertError(res, 400);
  assert.equal(res.data.error.field, 'password');
  assert.equal(await count('users'), users);
});

test('users may change their own name', async () => {
  const henry = await t.user({ name: 'Henry' });
  const res = await t.request({
    method: 'PATCH',
    url: `/api/v1/users/${henry.id}`,
    payload: { name: 'Hank' },
    as: henry,
  });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal(res.data.name, 'Hank');
  const rows = await t.db.query<{ name: string }>(sql`SELECT name FROM users WHERE id = ${henry.id}`);
  assert.equal(rows[0]!.name, 'Hank');
});

test('a new name shows in GET /api/v1/me at once, though the credential was cached with the old one', async () => {
  const ivy = await t.user({ name: 'Ivy' });
  assert.equal((await t.request({ method: 'GET', url: '/api/v1/me', as: ivy })).data.name, 'Ivy');
  const res = await t.request({
    method: 'PATCH',
    url: `/api/v1/users/${ivy.id}`,
    payload: { name: 'Ivy B' },
    as: ivy,
  });
  assert.equal(res.statusCode, 200, res.body);
  assert.equal((await t.request({ method: 'GET', url: '/api/v1/me', as: ivy })).data.name, 'Ivy B');
});

test('users may not make themselves admin (403), and nothing changes', async () => {
  for (const payload of [{ is_admin: true }, { name: 'Still Alice', is_admin: true }, { kind: 'internal' }]) {
    const res = await t.request({ method: 'PATCH', url: `/api/v1/users/${alice.id}`, payload, as: alice });
    assertError(res, 403, 'forbidden');
  }
  const rows = await t.db.query<{ name: string; is_admin: boolean; kind: string }>(
    sql`SELECT name, is_admin, kind FROM users WHERE id = ${alice.id}`,
  );
  assert.deepEqual({ ...rows[0] }, { name: 'Alice', is_admin: false, kind: 'external' });
});

test("users may not change somebody else's account (403)", async () => {
  const res = await t.request({
    method: 'PATCH',
    url: `/api/v1/users/${dev.id}`,
    payload: { name: 'Renamed' },
    as: alice,
  });
  assertError(res, 403, 'forbidden');
  const rows = await t.db.query<{ name: string }>(sql`SELECT name FROM users WHERE id = ${dev.id}`);
  assert.equal(rows[0]!.name, 'Dev');
});

test('GET /api/v1/users is for staff: external users get 403, internal users 200', async () => {
  assertError(await t.request({ method: 'GET', url: '/api/v1/users', as: alice }), 403, 'forbidden');
  const res = await t.request({ method: 'GET', url: '/api/v1/users', as: dev });
  assert.equal(res.statusCode, 200, res.body);
  const ids = res.data.users.map((u: { id: number }) => u.id);
  assert.ok(ids.includes(alice.id) && ids.includes(admin.id));
});

// --- Changing one's own password ----------------------------------------------------------------------

test('changing your own password needs the current one and ends your other sessions', async () => {
  const pat = await t.user({ name: 'Pat' });
  const here = await signedInSession(pat);
  const elsewhere = await signedInSession(pat);
  const change = (payload: object) =>
    t.request({ method: 'PATCH', url: `/api/v1/users/${pat.id}`, headers: { cookie: here.cookie }, payload });
  assertError(await change({ password: 'a brand new password' }), 400);
  assertError(await change({ password: 'a brand new password', current_password: 'wrong one' }), 400);
  const ok = await change({ password: 'a brand new password', current_password: PASSWORD });
  assert.equal(ok.statusCode, 200, ok.body);
  // This session goes on; the other one is over; the new password signs in, the old one does not.
  assert.equal(
    (await t.request({ method: 'GET', url: '/api/v1/me', headers: { cookie: here.cookie } })).statusCode,
    200,
  );
  assert.equal(
    (await t.request({ method: 'GET', url: '/api/v1/me', headers: { cookie: elsewhere.cookie } })).statusCode,
    401,
  );
  assert.equal((await signIn(pat.email, 'a brand new password')).statusCode, 200);
  assert.equal((await signIn(pat.email, PASSWORD)).statusCode, 401);
});
