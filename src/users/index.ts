/** The users module: accounts, sessions, API keys, and the authentication hook. */
export { authPlugin, SESSION_COOKIE } from './auth.ts';
export { hashPassword } from './passwords.ts';
export { usersRoutes } from './routes.ts';
export {
  authenticate,
  CredentialCache,
  createApiKey,
  createUser,
  hasUsers,
  presentUser,
  purgeExpiredSessions,
  toViewer,
  type UserRow,
  type UsersDeps,
} from './service.ts';
