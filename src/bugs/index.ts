/** The bugs module: filing, reading, changing bugs; comments; history; the workflow. */
export { bugsRoutes } from './routes.ts';
export { addComment, fileBug, getBug, listBugs, updateBug } from './service.ts';
export { workflow } from './workflow.ts';
