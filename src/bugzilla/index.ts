/** The Bugzilla 5.0 REST compatibility layer: existing Bugzilla clients and scripts against Bugzot. */
export { redactUrl } from './auth.ts';
export { BUGZILLA_VERSION, type BugzillaDeps, bugzillaRoutes } from './routes.ts';
