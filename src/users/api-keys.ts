/**
 * Admins' side of API keys: list anyone's keys, allow a key to act on behalf of other users, set a key's
 * own rate limit (above API_KEY_RATE_LIMIT_MAX if need be). Owners create and revoke keys in service.ts.
 */
import type { UserViewer, Viewer } from '../access/index.ts';
import { conflict, forbidden, notFound } from '../platform/errors.ts';
import * as repo from './repository.ts';
import { checkKeyRateLimit, type UsersDeps } from './service.ts';

function requireAdmin(viewer: Viewer): UserViewer {
  if (viewer.kind !== 'user' || !viewer.isAdmin) {
    throw forbidden('Only admins may manage the API keys of other users.');
  }
  return viewer;
}

/** Every user's keys (admins), newest first; `userId` narrows to one owner. */
export function listAllApiKeys(
  deps: UsersDeps,
  viewer: Viewer,
  opts: { userId?: number | undefined; limit: number; beforeId?: number | undefined },
) {
  requireAdmin(viewer);
  return repo.listAllApiKeys(deps.db, opts);
}

/**
 * Changes a live key's settings (admins): `onBehalfOf` allows or forbids acting on behalf of others,
 * `rateLimitPerMinute` sets its own limit (null: back to the global one). Effective at once everywhere.
 */
export async function updateApiKeyAsAdmin(
  deps: UsersDeps,
  viewer: Viewer,
  keyId: number,
  patch: { onBehalfOf?: boolean | undefined; rateLimitPerMinute?: number | null | undefined },
): Promise<repo.ApiKeyWithOwner> {
  const admin = requireAdmin(viewer);
  checkKeyRateLimit(admin, patch.rateLimitPerMinute, undefined);
  const topic = `key:${keyId}`;
  const row = await deps.db.transaction(async (tx) => {
    const key = await repo.findApiKeyById(tx, keyId);
    if (!key) throw notFound('API key', keyId);
    if (key.revoked_at) throw conflict(`API key ${keyId} is revoked; create a new one`, 'id');
    const updated = await repo.updateApiKey(tx, keyId, {
      ...(patch.onBehalfOf !== undefined ? { onBehalfOf: patch.onBehalfOf } : {}),
      ...(patch.rateLimitPerMinute !== undefined ? { rateLimitPerMinute: patch.rateLimitPerMinute } : {}),
    });
    await deps.bus.publish(tx, topic);
    return { ...key, ...updated! };
  });
  await deps.bus.apply(topic);
  return row;
}
