import { AppError } from '../platform/errors.ts';

/**
 * The Viewer: who is asking. Every function that reads bug data takes one as its first argument.
 */

/** A signed-in user as the access rules see them. */
export interface UserViewer {
  readonly kind: 'user';
  readonly id: number;
  readonly name: string;
  readonly email: string;
  readonly isInternal: boolean;
  readonly isAdmin: boolean;
}

/** Somebody who has not signed in. */
export interface AnonymousViewer {
  readonly kind: 'anonymous';
}

/** Who is asking: a user, or nobody in particular. */
export type Viewer = UserViewer | AnonymousViewer;

/** The one anonymous viewer. */
export const anonymous: AnonymousViewer = Object.freeze({ kind: 'anonymous' });

/** Staff (internal users and admins) see every product, version, bug and private comment. */
export function isStaff(viewer: Viewer): boolean {
  return viewer.kind === 'user' && (viewer.isInternal || viewer.isAdmin);
}

/** Admins manage products, versions, components and users. */
export function isAdmin(viewer: Viewer): boolean {
  return viewer.kind === 'user' && viewer.isAdmin;
}

/** The signed-in user, or a 401 for routes reached without one (the auth hook normally stops those first). */
export function signedIn(viewer: Viewer): UserViewer {
  if (viewer.kind !== 'user') throw new AppError(401, 'unauthenticated', 'Sign in first.');
  return viewer;
}
