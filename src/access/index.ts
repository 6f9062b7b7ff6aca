/** The access module: who is asking (Viewer) and what they may see (the SQL predicates). */
export { anonymous, isAdmin, isStaff, signedIn, type UserViewer, type Viewer } from './viewer.ts';
export {
  type BugVisibilityFacts,
  canSeeBug,
  visibleBugs,
  visibleComments,
  visibleProducts,
  visibleVersions,
} from './visibility.ts';
