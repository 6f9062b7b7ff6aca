/** The bugs module: filing, reading, changing bugs; comments; history; the workflow. */

export { BugCache } from './cache.ts';
export { bugsRoutes } from './routes.ts';
export {
  addComment,
  allowedActions,
  type BugsContext,
  bugHistory,
  fileBug,
  getBug,
  listBugs,
  listComments,
  statusCounts,
} from './service.ts';
export { updateBug } from './update.ts';
export { workflow } from './workflow.ts';
export type { FullBugRow } from './repository.ts';
