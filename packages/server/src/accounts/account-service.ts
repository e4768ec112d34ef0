import { TokenwiseError } from '@tokenwise/core';
import type { Invite, Membership, PasswordReset, Role, Store, User, Workspace } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { findLocalWorkspace } from '../local-setup.js';
import { digestsEqual, hashToken } from '../tokens.js';
import { createAttemptLimiter } from './attempt-limiter.js';
import { checkNewPassword, hashForUnknownUser, hashPassword, MAX_PASSWORD_LENGTH, verifyPassword } from './passwords.js';
import { generateSecret } from './secrets.js';

/** Settings key of the SHA-256 of the one-time setup code, present until the first account exists. */
const SETUP_CODE_SETTING = 'setup_code_sha256';
/** Bodies of a workspace made in the web UI are kept this many days unless its owner changes it. */
export const DEFAULT_BODY_RETENTION_DAYS = 30;
export const INVITE_LIFETIME_HOURS = 72;
export const MAX_INVITE_LIFETIME_HOURS = 30 * 24;
const PASSWORD_RESET_LIFETIME_MS = 24 * 3_600_000;
/** Failed sign-ins allowed per email and per client address within the window, before a pause. */
const SIGN_IN_FAILURES_PER_EMAIL = 10;
const SIGN_IN_FAILURES_PER_CLIENT = 50;
const SIGN_IN_WINDOW_MS = 15 * 60_000;
const MAX_NAME_LENGTH = 100;
const MAX_EMAIL_LENGTH = 254;

export type SignInResult = { ok: true; user: User } | { ok: false; retryAfterS: number };

export interface NewAccount {
  email: string;
  name: string;
  password: string;
}

/**
 * The account rules of the server, apart from HTTP: the one-time setup, sign-in with its rate limit,
 * invites, password resets and new workspaces. Errors are `invalid_argument` with a message for the person.
 */
export function createAccountService(options: { store: Store; logger: Logger; clock?: () => Date }) {
  const { store, logger } = options;
  const clock = options.clock ?? (() => new Date());
  const emailLimiter = createAttemptLimiter({ maxFailures: SIGN_IN_FAILURES_PER_EMAIL, windowMs: SIGN_IN_WINDOW_MS });
  const clientLimiter = createAttemptLimiter({ maxFailures: SIGN_IN_FAILURES_PER_CLIENT, windowMs: SIGN_IN_WINDOW_MS });
  let setupDone = false;

  async function needsSetup(): Promise<boolean> {
    if (setupDone) return false;
    setupDone = (await store.countUsers()) > 0;
    return !setupDone;
  }

  async function validateAccount(input: NewAccount): Promise<{ email: string; name: string; passwordHash: string }> {
    const email = input.email.trim().toLowerCase();
    if (email.length > MAX_EMAIL_LENGTH || !/^[^\s@]+@[^\s@]+$/.test(email)) {
      throw new TokenwiseError('invalid_argument', 'invalid email address: expected name@example.com');
    }
    const name = checkName(input.name, 'name');
    const problem = checkNewPassword(input.password, email);
    if (problem) throw new TokenwiseError('invalid_argument', problem);
    if (await store.findUserByEmail(email)) {
      throw new TokenwiseError('invalid_argument', `an account with the email ${email} exists already: sign in instead`);
    }
    return { email, name, passwordHash: await hashPassword(input.password) };
  }

  async function checkSetupCode(code: string): Promise<boolean> {
    const expected = await store.getSetting(SETUP_CODE_SETTING);
    return expected !== null && expected !== '' && digestsEqual(hashToken(code), expected);
  }

  /** Accept an open invite for an existing account. */
  async function acceptInvite(invite: Invite, user: User): Promise<Membership> {
    if (invite.email !== null && invite.email !== user.email) {
      throw new TokenwiseError('invalid_argument', `this invite is for ${invite.email}: sign in with that account`);
    }
    const membership = await store.acceptInvite(invite.id, {
      userId: user.id,
      now: clock(),
      newWorkspace: { name: `${user.name}'s workspace`.slice(0, MAX_NAME_LENGTH), bodyRetentionDays: DEFAULT_BODY_RETENTION_DAYS },
    });
    if (!membership) throw new TokenwiseError('invalid_argument', 'this invite was used, revoked or has expired: ask for a new one');
    logger.info({ user_id: user.id, workspace_id: membership.workspaceId, invite_id: invite.id }, 'invite accepted');
    return (await store.getMembership(membership.workspaceId, user.id)) ?? membership;
  }

  return {
    needsSetup,

    /**
     * Make a new one-time setup code while no account exists, replacing any earlier one, and return it;
     * null once an account exists. Each start prints the link with the code it returns.
     */
    async prepareSetupCode(): Promise<string | null> {
      return store.withLock('setup', async () => {
        if (!(await needsSetup())) return null;
        const code = generateSecret('setupCode');
        await store.setSetting(SETUP_CODE_SETTING, hashToken(code));
        return code;
      });
    },

    checkSetupCode,

    /** Create the owner account with a valid setup code and make it the owner of the local workspace. */
    async completeSetup(code: string, input: NewAccount): Promise<User> {
      return store.withLock('setup', async () => {
        if (!(await needsSetup()) || !(await checkSetupCode(code))) {
          throw new TokenwiseError('invalid_argument', 'this setup link was used already or replaced by a newer one: sign in instead');
        }
        const user = await store.createUser(await validateAccount(input));
        await store.setSetting(SETUP_CODE_SETTING, '');
        setupDone = true;

        const workspace = (await findLocalWorkspace(store)) ?? (await store.createWorkspace({ name: 'local' }));
        await store.addMembership({ workspaceId: workspace.id, userId: user.id, role: 'owner' });
        logger.info({ user_id: user.id, workspace_id: workspace.id }, 'owner account created');
        return user;
      });
    },

    /**
     * Check an email and password. An unknown email and a wrong password get the same response after the
     * same work; too many failures per email or per client pause further tries with `retryAfterS`.
     */
    async signIn(email: string, password: string, clientKey: string): Promise<SignInResult> {
      const emailKey = email.trim().toLowerCase();
      const retryAfterS = Math.max(emailLimiter.retryAfterS(emailKey), clientLimiter.retryAfterS(clientKey));
      if (retryAfterS > 0) return { ok: false, retryAfterS };

      const user = emailKey.length <= MAX_EMAIL_LENGTH ? await store.findUserByEmail(emailKey) : null;
      const matches = await verifyPassword(password.slice(0, MAX_PASSWORD_LENGTH + 1), user?.passwordHash ?? (await hashForUnknownUser()));
      if (user && matches) {
        emailLimiter.reset(emailKey);
        return { ok: true, user };
      }
      emailLimiter.fail(emailKey);
      clientLimiter.fail(clientKey);
      logger.info({ client: clientKey }, 'sign-in failed');
      return { ok: false, retryAfterS: 0 };
    },

    async createWorkspace(userId: string, name: string): Promise<Workspace> {
      const workspace = await store.createWorkspace({
        name: checkName(name, 'workspace name'),
        bodyRetentionDays: DEFAULT_BODY_RETENTION_DAYS,
      });
      await store.addMembership({ workspaceId: workspace.id, userId, role: 'owner' });
      return workspace;
    },

    async createInvite(input: {
      workspaceId: string | null;
      role: Role;
      email: string | null;
      createdByUserId: string | null;
      lifetimeHours?: number;
    }): Promise<{ invite: Invite; token: string }> {
      const hours = input.lifetimeHours ?? INVITE_LIFETIME_HOURS;
      if (!Number.isInteger(hours) || hours < 1 || hours > MAX_INVITE_LIFETIME_HOURS) {
        throw new TokenwiseError(
          'invalid_argument',
          `invalid invite lifetime ${hours}: expected whole hours from 1 to ${MAX_INVITE_LIFETIME_HOURS}`,
        );
      }
      const token = generateSecret('invite');
      const invite = await store.createInvite({
        workspaceId: input.workspaceId,
        role: input.role,
        email: input.email,
        tokenSha256: hashToken(token),
        createdByUserId: input.createdByUserId,
        expiresAt: new Date(clock().getTime() + hours * 3_600_000).toISOString(),
      });
      return { invite, token };
    },

    /** Return the invite of a link when it can still be accepted; null when unknown, used, revoked or expired. */
    async findOpenInvite(token: string): Promise<Invite | null> {
      const invite = await store.findInviteByHash(hashToken(token));
      if (!invite || invite.acceptedAt !== null || invite.revokedAt !== null || invite.expiresAt <= clock().toISOString()) return null;
      return invite;
    },

    acceptInvite,

    /** Create an account from an open invite and accept it. */
    async registerWithInvite(invite: Invite, input: NewAccount): Promise<{ user: User; membership: Membership }> {
      if (invite.email !== null && invite.email !== input.email.trim().toLowerCase()) {
        throw new TokenwiseError('invalid_argument', `this invite is for ${invite.email}: use that email address`);
      }
      const user = await store.createUser(await validateAccount(input));
      try {
        return { user, membership: await acceptInvite(invite, user) };
      } catch (error) {
        // The invite was used up between the check and now; the fresh account would have no workspace.
        await store.deleteUser(user.id, []);
        throw error;
      }
    },

    async createPasswordReset(userId: string, createdByUserId: string | null): Promise<{ reset: PasswordReset; token: string }> {
      const token = generateSecret('passwordReset');
      const reset = await store.createPasswordReset({
        userId,
        tokenSha256: hashToken(token),
        createdByUserId,
        expiresAt: new Date(clock().getTime() + PASSWORD_RESET_LIFETIME_MS).toISOString(),
      });
      logger.info({ user_id: userId, created_by: createdByUserId }, 'password reset link created');
      return { reset, token };
    },

    async findOpenReset(token: string): Promise<PasswordReset | null> {
      const reset = await store.findPasswordResetByHash(hashToken(token));
      if (!reset || reset.usedAt !== null || reset.expiresAt <= clock().toISOString()) return null;
      return reset;
    },

    /** Set a new password through a reset link; every session of the account ends. */
    async resetPassword(reset: PasswordReset, password: string): Promise<User> {
      const user = await store.getUser(reset.userId);
      if (!user) throw new TokenwiseError('invalid_argument', 'this reset link belongs to a deleted account');
      const problem = checkNewPassword(password, user.email);
      if (problem) throw new TokenwiseError('invalid_argument', problem);
      if (!(await store.usePasswordReset(reset.id, await hashPassword(password), clock()))) {
        throw new TokenwiseError('invalid_argument', 'this reset link was used or has expired: ask for a new one');
      }
      logger.info({ user_id: user.id }, 'password reset');
      return (await store.getUser(user.id)) ?? user;
    },

    async checkPassword(user: User, password: string): Promise<boolean> {
      return verifyPassword(password, user.passwordHash);
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;

/** Check a display name: 1 to 100 printable characters, trimmed. */
export function checkName(value: unknown, what: string): string {
  const name = typeof value === 'string' ? value.trim() : '';
  if (name === '' || name.length > MAX_NAME_LENGTH || /\p{Cc}/u.test(name)) {
    throw new TokenwiseError('invalid_argument', `invalid ${what}: expected 1 to ${MAX_NAME_LENGTH} printable characters`);
  }
  return name;
}
