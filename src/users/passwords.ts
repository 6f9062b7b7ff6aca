/** Password hashing with argon2id (OWASP-recommended parameters). */
import { hash, verify } from '@node-rs/argon2';

// @node-rs/argon2 uses argon2id by default (its Algorithm enum is a const enum we cannot import here);
// a test checks that hashes start with $argon2id$.
const options = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

/** Hashes a password with argon2id. */
export function hashPassword(password: string): Promise<string> {
  return hash(password, options);
}

/** A hash of a random password, checked against when the account does not exist, so timing does not tell. */
let dummyHash: Promise<string> | undefined;

/** Verifies a password; `stored` undefined still spends the same time and returns false. */
export async function verifyPassword(stored: string | null | undefined, password: string): Promise<boolean> {
  if (!stored) {
    dummyHash ??= hashPassword(`dummy-${Math.random()}`);
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}
