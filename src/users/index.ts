/** The users module: accounts, sessions, API keys, and the authentication hook. */
export { listAllApiKeys, updateApiKeyAsAdmin } from './api-keys.ts';
export { authPlugin, SESSION_COOKIE, setSessionCookie } from './auth.ts';
export { actingDb, ON_BEHALF_HEADER } from './on-behalf.ts';
export { hashPassword } from './passwords.ts';
export { usersRoutes } from './routes.ts';
export {
  type ApiKeyRow,
  type ApiKeyWithOwner,
  authenticate,
  type Credential,
  CredentialCache,
  createApiKey,
  createUser,
  endSession,
  findActiveUserByEmail,
  getUser,
  hasUsers,
  listApiKeys,
  listUsers,
  presentUser,
  purgeExpiredSessions,
  resolveApiKey,
  resolveSession,
  revokeApiKey,
  signIn,
  toViewer,
  type UserRow,
  type UsersDeps,
  updateUser,
} from './service.ts';
export { LoginThrottle } from './throttle.ts';
