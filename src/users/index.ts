/** The users module: accounts, sessions, API keys, and the authentication hook. */
export { authPlugin, SESSION_COOKIE } from './auth.ts';
export { hashPassword } from './passwords.ts';
export { usersRoutes } from './routes.ts';
export {
  authenticate,
  CredentialCache,
  type UsersDeps,
  createApiKey,
  createUser,
  hasUsers,
  presentUser,
  purgeExpiredSessions,
  toViewer,
  type UserRow,
} from './service.ts';
