/** The bugs module: filing, reading, changing bugs; comments; history; the workflow. */
export { bugsRoutes } from './routes.ts';
export { BugCache } from './cache.ts';
export { addComment, type BugsContext, fileBug, getBug, listBugs, updateBug } from './service.ts';
export { workflow } from './workflow.ts';
