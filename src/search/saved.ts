/** Saved searches: a named query, private or shared with everyone; only its owner changes it. */
import type { UserViewer } from '../access/index.ts';
import { isUniqueViolation, type Queryable } from '../platform/db.ts';
import { AppError, conflict, invalid, notFound } from '../platform/errors.ts';
import { parseQuery, QueryError } from './query.ts';
import * as repo from './repository.ts';

/** A saved search as shown to a user, with whether they may change it. */
export type SavedSearch = repo.SavedSearchRow & { mine: boolean };

const withMine = (viewer: UserViewer, r: repo.SavedSearchRow): SavedSearch => ({
  ...r,
  mine: r.owner_id === viewer.id,
});

/** The viewer's saved searches and the shared ones of others. */
export async function listSavedSearches(db: Queryable, viewer: UserViewer): Promise<SavedSearch[]> {
  return (await repo.listSaved(db, viewer.id)).map((r) => withMine(viewer, r));
}

/** One saved search the viewer may read; 404 otherwise (another's private one looks absent). */
export async function getSavedSearch(db: Queryable, viewer: UserViewer, id: number): Promise<SavedSearch> {
  const row = await repo.getSaved(db, viewer.id, id);
  if (!row) throw notFound('Saved search', id);
  return withMine(viewer, row);
}

function cleanName(name: string): string {
  const n = name.replace(/\s+/g, ' ').trim();
  if (!n) throw invalid('name must not be blank', 'name');
  if (n.length > 100) throw invalid('name has at most 100 characters', 'name');
  return n;
}

/** A query must parse before it is kept, so a saved search always runs; its errors name the `query` field. */
function checkedQuery(query: string): string {
  const q = query.trim();
  if (!q) throw invalid('query must not be blank', 'query');
  try {
    parseQuery(q);
  } catch (err) {
    if (err instanceof QueryError) {
      throw new AppError(400, err.code, err.message, 'query', err.details);
    }
    throw err;
  }
  return q;
}

/** Saves a query under a name (unique among the viewer's own). */
export async function saveSearch(
  db: Queryable,
  viewer: UserViewer,
  input: { name: string; query: string; shared?: boolean | undefined },
): Promise<SavedSearch> {
  const name = cleanName(input.name);
  const query = checkedQuery(input.query);
  try {
    const id = await repo.insertSaved(db, { ownerId: viewer.id, name, query, shared: input.shared ?? false });
    return getSavedSearch(db, viewer, id);
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict(`you already have a saved search named "${name}"`, 'name');
    throw err;
  }
}

/** Changes one of the viewer's own saved searches; another's answers 404 (or 403 when shared with them). */
export async function updateSavedSearch(
  db: Queryable,
  viewer: UserViewer,
  id: number,
  input: { name?: string | undefined; query?: string | undefined; shared?: boolean | undefined },
): Promise<SavedSearch> {
  const current = await getSavedSearch(db, viewer, id);
  if (!current.mine) throw new AppError(403, 'forbidden', 'Only its owner may change a saved search.');
  const changes = {
    name: input.name === undefined ? undefined : cleanName(input.name),
    query: input.query === undefined ? undefined : checkedQuery(input.query),
    shared: input.shared,
  };
  try {
    if (!(await repo.updateSaved(db, viewer.id, id, changes))) throw notFound('Saved search', id);
  } catch (err) {
    if (isUniqueViolation(err))
      throw conflict(`you already have a saved search named "${changes.name}"`, 'name');
    throw err;
  }
  return getSavedSearch(db, viewer, id);
}

/** Deletes one of the viewer's own saved searches. */
export async function deleteSavedSearch(db: Queryable, viewer: UserViewer, id: number): Promise<void> {
  const current = await getSavedSearch(db, viewer, id);
  if (!current.mine) throw new AppError(403, 'forbidden', 'Only its owner may delete a saved search.');
  await repo.deleteSaved(db, viewer.id, id);
}
