/**
 * Acting on behalf of another user: a key an admin marked `on_behalf_of` may send
 * `X-Bugzot-On-Behalf-Of: <user id or e-mail>`, and the request then runs as that user (their visibility,
 * their permissions, the key's own scope on top). The rules (docs/integration.md):
 * - any other credential sending the header is refused (403), a request without credentials is a 401;
 * - the user acted for must exist and be active, and is never an admin (no key reaches admin rights);
 * - internal users may be acted for only by keys of internal owners (an external bot must not reach
 *   confidential data through a staff account).
 * The real actor (the key's owner and the key) is recorded beside every change the request writes: each
 * transaction of the request sets `bugzot.via_user_id` / `bugzot.via_key_id`, which the via_* columns of
 * bug_changes, comments, bug_events and attachments take as their default (migrations/008_api_keys.sql).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyRequest } from 'fastify';
import { type Db, sql } from '../platform/db.ts';
import { AppError, invalid, unauthenticated } from '../platform/errors.ts';
import * as repo from './repository.ts';
import { type Credential, toViewer, type UsersDeps } from './service.ts';

/** The request header naming the user a request acts for. */
export const ON_BEHALF_HEADER = 'x-bugzot-on-behalf-of';

const refused = (message: string) => new AppError(403, 'on_behalf_refused', message);

/**
 * The credential a request acting for `target` (the header's value) runs with; 403 when the credential
 * may not act for that user, 400 when the value names no user at all.
 */
export async function actOnBehalf(
  deps: UsersDeps,
  cred: Credential | undefined,
  target: string,
): Promise<Credential> {
  if (!cred)
    throw unauthenticated(`${ON_BEHALF_HEADER} needs an API key allowed to act on behalf of others.`);
  if (cred.via !== 'api-key' || !cred.onBehalfOf || cred.keyId === undefined) {
    throw refused(`This credential may not act on behalf of other users (${ON_BEHALF_HEADER}).`);
  }
  const value = target.trim();
  const byId = /^[1-9][0-9]{0,9}$/.test(value);
  if (!byId && !/^[^\s@]+@[^\s@]+$/.test(value)) {
    throw invalid(`${ON_BEHALF_HEADER} must be a user id or an e-mail address`, ON_BEHALF_HEADER);
  }
  const cacheKey = `o:${cred.keyId}:${value.toLowerCase()}`;
  const cached = deps.credentials.get(cacheKey);
  if (cached) return cached;
  const epoch = deps.bus.epoch;
  const user =
    byId && Number(value) <= 2147483647
      ? await repo.findUserById(deps.db, Number(value))
      : byId
        ? undefined
        : await repo.findUserByEmail(deps.db, value);
  if (!user || user.disabled) refusedFor(value, 'there is no active user');
  if (user.is_admin) refusedFor(value, 'admins cannot be acted for');
  if (user.kind === 'internal' && !cred.viewer.isInternal) {
    refusedFor(value, 'internal users can be acted for only by keys of internal users');
  }
  if (user.id === cred.viewer.id) return cred;
  const owner = cred.viewer;
  const delegated: Credential = {
    viewer: toViewer(user),
    via: 'api-key',
    // The key's own scope still applies: a read-only key stays read-only for whomever it acts.
    scope: cred.scope,
    keyId: cred.keyId,
    rateLimitPerMinute: cred.rateLimitPerMinute ?? null,
    onBehalfOf: true,
    actor: { id: owner.id, email: owner.email, name: owner.name, keyId: cred.keyId },
  };
  if (deps.bus.epoch === epoch) deps.credentials.set(cacheKey, delegated);
  return delegated;
}

function refusedFor(value: string, why: string): never {
  throw refused(`Cannot act on behalf of ${JSON.stringify(value.slice(0, 254))}: ${why}.`);
}

/** The request being served, for writes that must know who really made it. */
const current = new AsyncLocalStorage<FastifyRequest>();

/**
 * Runs the rest of a request (its handler and what it awaits) with the request known to `actingDb`.
 * Registered as a callback-style preHandler, so that the handler itself is called inside `run`.
 */
export function withActingRequest(request: FastifyRequest, done: () => void): void {
  if (request.credential?.actor) current.run(request, done);
  else done();
}

/**
 * The database as the app uses it: a transaction begun while serving a request that acts on behalf of
 * another user first records the real actor in two transaction-local settings (see the file comment).
 * Everything else is passed through untouched.
 */
export function actingDb(db: Db): Db {
  const transaction = <T>(fn: Parameters<Db['transaction']>[0]) => {
    // Read now, in the caller's context: the driver may call `fn` from a context of its own.
    const actor = current.getStore()?.credential?.actor;
    if (!actor) return db.transaction(fn) as Promise<T>;
    return db.transaction(async (tx) => {
      await tx.query(sql`
        SELECT set_config('bugzot.via_user_id', ${String(actor.id)}, true),
               set_config('bugzot.via_key_id', ${String(actor.keyId)}, true)`);
      return fn(tx);
    }) as Promise<T>;
  };
  // Methods are bound once, not on every call (db.query is on every request's path).
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'transaction') return transaction;
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      let fn = bound.get(prop);
      if (fn === undefined) {
        fn = value.bind(target);
        bound.set(prop, fn);
      }
      return fn;
    },
  });
}
