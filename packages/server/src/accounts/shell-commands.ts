import type { Store, User } from '@tokenwise/storage';
import pino from 'pino';
import { createAccountService } from './account-service.js';

/**
 * Create a one-time password reset link for the account of `email`, for `tokenwise users reset-password`
 * on the server's shell. Returns null when no account has that email.
 */
export async function createPasswordResetLink(
  store: Store,
  email: string,
  baseUrl: string,
): Promise<{ user: User; url: string; expiresAt: string } | null> {
  const user = await store.findUserByEmail(email);
  if (!user) return null;
  const accounts = createAccountService({ store, logger: pino({ level: 'silent' }) });
  const { reset, token } = await accounts.createPasswordReset(user.id, null);
  return { user, url: `${baseUrl.replace(/\/+$/, '')}/reset-password?token=${token}`, expiresAt: reset.expiresAt };
}
