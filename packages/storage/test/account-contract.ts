import { createHash } from 'node:crypto';
import type { CallRecord } from '@tokenwise/core';
import type { Store } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sampleBodies, sparseRecord } from './sample-calls.js';
import type { StoreHandle } from './store-contract.js';

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

const HOUR_MS = 3_600_000;
const inHours = (hours: number) => new Date(Date.now() + hours * HOUR_MS).toISOString();

/**
 * The account half of the store contract: people, memberships, sessions, invites, password resets, device
 * pairing, devices and deletion. Each store's test file runs it next to `describeStoreContract`.
 */
export function describeAccountContract(name: string, createStore: () => Promise<StoreHandle>): void {
  describe(`${name}: account contract`, () => {
    let handle: StoreHandle;
    let store: Store;

    beforeEach(async () => {
      handle = await createStore();
      store = handle.store;
    });

    afterEach(async () => {
      await store.close();
      await handle.cleanup?.();
    });

    const newUser = (email = 'Ada@Example.com') => store.createUser({ email, name: 'Ada', passwordHash: 'scrypt$hash' });

    function call(id: string, overrides: Partial<CallRecord> = {}): CallRecord {
      return sparseRecord({ id: `0190a1b2-0000-7000-8000-${id.padStart(12, '0')}`, ...overrides });
    }

    describe('users', () => {
      it('creates a user with a lowercase email', async () => {
        const user = await newUser();

        expect(user.email).toBe('ada@example.com');
        expect(await store.getUser(user.id)).toStrictEqual(user);
        expect(await store.findUserByEmail(' ADA@example.COM ')).toStrictEqual(user);
        expect(await store.countUsers()).toBe(1);
      });

      it('rejects a second account for one email', async () => {
        await newUser();

        await expect(newUser('ada@example.com')).rejects.toThrow(/an account with the email ada@example.com exists already/);
      });

      it('ends sessions when the password changes', async () => {
        const user = await newUser();
        await store.createSession({ userId: user.id, tokenSha256: sha256('s1'), expiresAt: inHours(1), userAgent: null });

        await store.setUserPassword(user.id, 'scrypt$new');

        expect((await store.getUser(user.id))?.passwordHash).toBe('scrypt$new');
        expect(await store.findSessionByHash(sha256('s1'))).toBeNull();
      });

      it('deletes a user with what is only theirs', async () => {
        const user = await newUser();
        const other = await newUser('bob@example.com');
        const own = await store.createWorkspace({ name: 'own' });
        const shared = await store.createWorkspace({ name: 'shared' });
        await store.addMembership({ workspaceId: own.id, userId: user.id, role: 'owner' });
        await store.addMembership({ workspaceId: shared.id, userId: user.id, role: 'member' });
        await store.addMembership({ workspaceId: shared.id, userId: other.id, role: 'owner' });
        const device = await store.createDevice({ workspaceId: shared.id, name: 'laptop', userId: user.id });
        await store.createApiToken({ workspaceId: shared.id, userId: user.id, name: 'script', tokenSha256: sha256('api') });
        await store.createSession({ userId: user.id, tokenSha256: sha256('s'), expiresAt: inHours(1), userAgent: 'test' });

        await store.deleteUser(user.id, [own.id]);

        expect(await store.getUser(user.id)).toBeNull();
        expect(await store.getWorkspace(own.id)).toBeNull();
        expect(await store.getWorkspace(shared.id)).not.toBeNull();
        expect((await store.listMembers(shared.id)).map((member) => member.userId)).toEqual([other.id]);
        expect((await store.getDevice(device.id))?.userId).toBeNull();
        expect(await store.findApiTokenByHash(sha256('api'))).toBeNull();
        expect(await store.findSessionByHash(sha256('s'))).toBeNull();
      });
    });

    describe('memberships', () => {
      it('lists workspaces of a person and people of a workspace', async () => {
        const user = await newUser();
        const workspace = await store.createWorkspace({ name: 'team' });
        const membership = await store.addMembership({ workspaceId: workspace.id, userId: user.id, role: 'owner' });

        expect(await store.getMembership(workspace.id, user.id)).toStrictEqual(membership);
        expect(await store.listMembershipsOfUser(user.id)).toStrictEqual([{ ...membership, workspace }]);
        expect(await store.listMembers(workspace.id)).toStrictEqual([
          { ...membership, user: { id: user.id, email: user.email, name: user.name } },
        ]);
      });

      it('changes a role and removes a member', async () => {
        const user = await newUser();
        const workspace = await store.createWorkspace({ name: 'team' });
        await store.addMembership({ workspaceId: workspace.id, userId: user.id, role: 'member' });

        expect(await store.setMembershipRole(workspace.id, user.id, 'owner')).toBe(true);
        expect((await store.getMembership(workspace.id, user.id))?.role).toBe('owner');
        expect(await store.removeMembership(workspace.id, user.id)).toBe(true);
        expect(await store.getMembership(workspace.id, user.id)).toBeNull();
        expect(await store.removeMembership(workspace.id, user.id)).toBe(false);
      });
    });

    describe('sessions', () => {
      it('finds a session by hash, touches and deletes it', async () => {
        const user = await newUser();
        const session = await store.createSession({ userId: user.id, tokenSha256: sha256('s'), expiresAt: inHours(1), userAgent: 'curl' });

        expect(await store.findSessionByHash(sha256('s'))).toStrictEqual(session);
        await store.touchSession(session.id, new Date('2026-12-04T12:00:00.000Z'));
        expect((await store.findSessionByHash(sha256('s')))?.lastSeenAt).toBe('2026-12-04T12:00:00.000Z');
        await store.deleteSession(session.id);
        expect(await store.findSessionByHash(sha256('s'))).toBeNull();
      });
    });

    describe('invites', () => {
      const invite = (workspaceId: string | null, expiresAt = inHours(24)) =>
        store.createInvite({
          workspaceId,
          role: 'member',
          email: null,
          tokenSha256: sha256(`invite-${expiresAt}`),
          createdByUserId: null,
          expiresAt,
        });
      const newWorkspace = { name: 'mine', bodyRetentionDays: 30 };

      it('makes the person a member once', async () => {
        const workspace = await store.createWorkspace({ name: 'team' });
        const created = await invite(workspace.id);
        const user = await newUser();

        const membership = await store.acceptInvite(created.id, { userId: user.id, now: new Date(), newWorkspace });

        expect(membership).toMatchObject({ workspaceId: workspace.id, userId: user.id, role: 'member' });
        expect(await store.getMembership(workspace.id, user.id)).toStrictEqual(membership);
        expect((await store.findInviteByHash(created.tokenSha256))?.acceptedByUserId).toBe(user.id);
        expect(await store.acceptInvite(created.id, { userId: user.id, now: new Date(), newWorkspace })).toBeNull();
      });

      it('gives a workspace of their own without a workspace', async () => {
        const created = await invite(null);
        const user = await newUser();

        const membership = await store.acceptInvite(created.id, { userId: user.id, now: new Date(), newWorkspace });

        expect(membership?.role).toBe('owner');
        expect(await store.getWorkspace(membership!.workspaceId)).toMatchObject({ name: 'mine', bodyRetentionDays: 30, keepBodies: true });
      });

      it('rejects an expired or revoked invite', async () => {
        const workspace = await store.createWorkspace({ name: 'team' });
        const expired = await invite(workspace.id, inHours(-1));
        const revoked = await invite(workspace.id);
        expect(await store.revokeInvite(revoked.id)).toBe(true);
        const user = await newUser();

        expect(await store.acceptInvite(expired.id, { userId: user.id, now: new Date(), newWorkspace })).toBeNull();
        expect(await store.acceptInvite(revoked.id, { userId: user.id, now: new Date(), newWorkspace })).toBeNull();
        expect(await store.getMembership(workspace.id, user.id)).toBeNull();
        expect((await store.listInvites(workspace.id)).map((item) => item.id).sort()).toEqual([expired.id, revoked.id].sort());
      });
    });

    describe('password resets', () => {
      it('sets the password once and ends sessions', async () => {
        const user = await newUser();
        await store.createSession({ userId: user.id, tokenSha256: sha256('s'), expiresAt: inHours(1), userAgent: null });
        const reset = await store.createPasswordReset({
          userId: user.id,
          tokenSha256: sha256('r'),
          createdByUserId: null,
          expiresAt: inHours(1),
        });

        expect(await store.findPasswordResetByHash(sha256('r'))).toStrictEqual(reset);
        expect(await store.usePasswordReset(reset.id, 'scrypt$reset', new Date())).toBe(true);
        expect((await store.getUser(user.id))?.passwordHash).toBe('scrypt$reset');
        expect(await store.findSessionByHash(sha256('s'))).toBeNull();
        expect(await store.usePasswordReset(reset.id, 'scrypt$again', new Date())).toBe(false);
        expect((await store.getUser(user.id))?.passwordHash).toBe('scrypt$reset');
      });

      it('rejects an expired reset', async () => {
        const user = await newUser();
        const reset = await store.createPasswordReset({
          userId: user.id,
          tokenSha256: sha256('r'),
          createdByUserId: null,
          expiresAt: inHours(-1),
        });

        expect(await store.usePasswordReset(reset.id, 'scrypt$late', new Date())).toBe(false);
        expect((await store.getUser(user.id))?.passwordHash).toBe('scrypt$hash');
      });
    });

    describe('device codes', () => {
      const newCode = (expiresAt = inHours(0.25)) =>
        store.createDeviceCode({
          deviceCodeSha256: sha256('device-code'),
          userCode: 'BCDFGHJK',
          deviceName: 'laptop',
          os: 'linux',
          intervalS: 5,
          expiresAt,
        });
      const issued = (workspaceId: string) => ({
        device: { workspaceId, name: 'laptop', os: 'linux', userId: null },
        routeToken: { name: 'laptop', tokenSha256: sha256('twr_paired') },
      });

      it('finds a code by either code', async () => {
        const code = await newCode();

        expect(code.status).toBe('pending');
        expect(await store.findDeviceCodeByHash(sha256('device-code'))).toStrictEqual(code);
        expect(await store.findDeviceCodeByUserCode('BCDFGHJK')).toStrictEqual(code);
        expect(await store.findDeviceCodeByUserCode('BCDFGHJX')).toBeNull();
      });

      it('records polls and the interval', async () => {
        const code = await newCode();
        await store.recordDeviceCodePoll(code.id, new Date('2026-12-04T12:00:00.000Z'), 10);

        expect(await store.findDeviceCodeByHash(sha256('device-code'))).toMatchObject({
          lastPolledAt: '2026-12-04T12:00:00.000Z',
          intervalS: 10,
        });
      });

      it('decides a code once and issues its token once', async () => {
        const workspace = await store.createWorkspace({ name: 'team' });
        const user = await newUser();
        const code = await newCode();

        expect(await store.issueDeviceCode(code.id, issued(workspace.id))).toBeNull();
        expect(await store.decideDeviceCode(code.id, { status: 'approved', workspaceId: workspace.id, userId: user.id }, new Date())).toBe(
          true,
        );
        expect(await store.decideDeviceCode(code.id, { status: 'denied', workspaceId: null, userId: user.id }, new Date())).toBe(false);

        const [first, second] = await Promise.all([
          store.issueDeviceCode(code.id, issued(workspace.id)),
          store.issueDeviceCode(code.id, issued(workspace.id)),
        ]);
        const winner = first ?? second;
        expect([first, second].filter((result) => result !== null)).toHaveLength(1);
        expect(await store.getDevice(winner!.device.id)).toStrictEqual(winner!.device);
        expect(await store.findRouteTokenByHash(sha256('twr_paired'))).toMatchObject({
          id: winner!.routeTokenId,
          deviceId: winner!.device.id,
        });
        expect(await store.findDeviceCodeByHash(sha256('device-code'))).toMatchObject({ status: 'issued', deviceId: winner!.device.id });
      });

      it('never approves an expired code', async () => {
        const user = await newUser();
        const code = await newCode(inHours(-1));

        expect(await store.decideDeviceCode(code.id, { status: 'approved', workspaceId: null, userId: user.id }, new Date())).toBe(false);
      });
    });

    describe('workspaces and devices', () => {
      it('changes workspace settings', async () => {
        const workspace = await store.createWorkspace({ name: 'team', bodyRetentionDays: 30 });

        const changed = await store.updateWorkspace(workspace.id, { name: 'renamed', keepBodies: false, bodyRetentionDays: null });

        expect(changed).toStrictEqual({ ...workspace, name: 'renamed', keepBodies: false, bodyRetentionDays: null });
        expect(await store.getWorkspace(workspace.id)).toStrictEqual(changed);
        await expect(store.updateWorkspace(workspace.id, { bodyRetentionDays: 0 })).rejects.toThrow(/invalid body retention 0/);
      });

      it('lists, changes and revokes devices', async () => {
        const workspace = await store.createWorkspace({ name: 'team' });
        const device = await store.createDevice({ workspaceId: workspace.id, name: 'laptop', os: 'darwin' });
        const token = await store.createRouteToken({
          workspaceId: workspace.id,
          deviceId: device.id,
          name: 'laptop',
          tokenSha256: sha256('t'),
        });

        expect(device).toMatchObject({ os: 'darwin', privacyMode: false, revokedAt: null, lastSeenAt: null });
        expect(await store.listDevices(workspace.id)).toStrictEqual([device]);
        expect(await store.updateDevice(device.id, { privacyMode: true })).toStrictEqual({ ...device, privacyMode: true });

        expect(await store.revokeDevice(device.id)).toEqual([token.id]);
        expect((await store.getDevice(device.id))?.revokedAt).toEqual(expect.any(String));
        expect((await store.findRouteTokenByHash(sha256('t')))?.revokedAt).toEqual(expect.any(String));
        expect(await store.revokeDevice(device.id)).toEqual([]);
      });

      it('records when a device was last seen', async () => {
        const workspace = await store.createWorkspace({ name: 'team' });
        const device = await store.createDevice({ workspaceId: workspace.id, name: 'laptop' });
        const token = await store.createRouteToken({
          workspaceId: workspace.id,
          deviceId: device.id,
          name: 'laptop',
          tokenSha256: sha256('t'),
        });

        await store.touchRouteToken(token.id, new Date('2026-12-04T13:00:00.000Z'));

        expect((await store.getDevice(device.id))?.lastSeenAt).toBe('2026-12-04T13:00:00.000Z');
      });

      it('deletes a device with its calls', async () => {
        const workspace = await store.createWorkspace({ name: 'team' });
        const device = await store.createDevice({ workspaceId: workspace.id, name: 'laptop' });
        const other = await store.createDevice({ workspaceId: workspace.id, name: 'desktop' });
        await store.createRouteToken({ workspaceId: workspace.id, deviceId: device.id, name: 'laptop', tokenSha256: sha256('t') });
        await store.insertCalls([
          { record: call('1', { workspace_id: workspace.id, device_id: device.id }), bodies: sampleBodies() },
          { record: call('2', { workspace_id: workspace.id, device_id: other.id }), bodies: null },
        ]);

        expect(await store.deleteDevice(device.id, { withCalls: true })).toBe(true);

        expect(await store.getDevice(device.id)).toBeNull();
        expect(await store.findRouteTokenByHash(sha256('t'))).toBeNull();
        expect((await store.listCalls({ limit: 10 })).map((listed) => listed.record.device_id)).toEqual([other.id]);
        expect(await store.deleteDevice(device.id, { withCalls: true })).toBe(false);
      });

      it('deletes a workspace and nothing of another', async () => {
        const doomed = await store.createWorkspace({ name: 'doomed' });
        const kept = await store.createWorkspace({ name: 'kept' });
        const user = await newUser();
        for (const workspace of [doomed, kept]) {
          await store.addMembership({ workspaceId: workspace.id, userId: user.id, role: 'owner' });
          const device = await store.createDevice({ workspaceId: workspace.id, name: workspace.name });
          await store.createRouteToken({ workspaceId: workspace.id, deviceId: device.id, name: 't', tokenSha256: sha256(workspace.name) });
        }
        await store.insertCalls([
          { record: call('1', { workspace_id: doomed.id }), bodies: sampleBodies() },
          { record: call('2', { workspace_id: kept.id }), bodies: sampleBodies() },
        ]);

        expect(await store.deleteWorkspace(doomed.id)).toBe(true);

        expect(await store.getWorkspace(doomed.id)).toBeNull();
        expect(await store.listDevices(doomed.id)).toEqual([]);
        expect(await store.findRouteTokenByHash(sha256('doomed'))).toBeNull();
        expect((await store.listMembershipsOfUser(user.id)).map((membership) => membership.workspaceId)).toEqual([kept.id]);
        expect(await store.getCall(call('1').id)).toBeNull();
        expect((await store.getCall(call('2').id))?.bodies).not.toBeNull();
        expect(await store.deleteWorkspace(doomed.id)).toBe(false);
      });
    });

    describe('calls by workspace', () => {
      it('lists by workspace, device, session and time', async () => {
        await store.insertCalls([
          {
            record: call('1', { workspace_id: 'a', device_id: 'd1', session_id: 's1', started_at: '2026-12-04T10:00:00.000Z' }),
            bodies: null,
          },
          {
            record: call('2', { workspace_id: 'a', device_id: 'd2', session_id: 's2', started_at: '2026-12-04T11:00:00.000Z' }),
            bodies: null,
          },
          {
            record: call('3', { workspace_id: 'b', device_id: 'd3', session_id: 's1', started_at: '2026-12-04T12:00:00.000Z' }),
            bodies: null,
          },
        ]);
        const ids = async (query: Parameters<Store['listCalls']>[0]) =>
          (await store.listCalls(query)).map((listed) => listed.record.id.slice(-1));

        expect(await ids({ limit: 10, workspaceId: 'a' })).toEqual(['2', '1']);
        expect(await ids({ limit: 10, workspaceId: 'a', deviceId: 'd1' })).toEqual(['1']);
        expect(await ids({ limit: 10, workspaceId: 'a', sessionId: 's1' })).toEqual(['1']);
        expect(await ids({ limit: 10, until: new Date('2026-12-04T11:00:00.000Z') })).toEqual(['1']);
        expect(await ids({ limit: 10, workspaceId: 'a', after: '0' })).toEqual(['1', '2']);
      });

      it('deletes calls by filter within one workspace only', async () => {
        await store.insertCalls([
          { record: call('1', { workspace_id: 'a', session_id: 's1' }), bodies: sampleBodies() },
          { record: call('2', { workspace_id: 'a', session_id: 's2' }), bodies: sampleBodies() },
          { record: call('3', { workspace_id: 'b', session_id: 's1' }), bodies: sampleBodies() },
          { record: call('4', { workspace_id: 'a', device_id: 'd9' }), bodies: null },
        ]);

        expect(await store.deleteCalls({ workspaceId: 'a', sessionId: 's1' })).toBe(1);
        expect(await store.deleteCalls({ workspaceId: 'a', ids: [call('3').id] })).toBe(0);
        expect(await store.deleteCalls({ workspaceId: 'a', deviceIds: ['d9'] })).toBe(1);
        expect(await store.deleteCalls({ workspaceId: 'a', ids: [] })).toBe(0);
        expect(await store.getCall(call('1').id)).toBeNull();
        expect((await store.getCall(call('3').id))?.bodies).not.toBeNull();
        expect(await store.deleteCalls({ workspaceId: 'a', since: new Date(0) })).toBe(1);
        expect((await store.listCalls({ limit: 10 })).map((listed) => listed.record.workspace_id)).toEqual(['b']);
      });

      it('deletes bodies past their workspace retention', async () => {
        const short = await store.createWorkspace({ name: 'short', bodyRetentionDays: 7 });
        const forever = await store.createWorkspace({ name: 'forever' });
        const now = new Date('2026-12-20T00:00:00.000Z');
        await store.insertCalls([
          { record: call('1', { workspace_id: short.id, started_at: '2026-12-01T00:00:00.000Z' }), bodies: sampleBodies() },
          { record: call('2', { workspace_id: short.id, started_at: '2026-12-19T00:00:00.000Z' }), bodies: sampleBodies() },
          { record: call('3', { workspace_id: forever.id, started_at: '2020-01-01T00:00:00.000Z' }), bodies: sampleBodies() },
        ]);

        expect(await store.deleteExpiredBodies(now)).toBe(1);

        expect(await store.getCall(call('1').id)).toMatchObject({ bodies: null });
        expect((await store.getCall(call('2').id))?.bodies).not.toBeNull();
        expect((await store.getCall(call('3').id))?.bodies).not.toBeNull();
      });
    });

    describe('expired credentials', () => {
      it('purges expired sessions, codes, invites and resets', async () => {
        const user = await newUser();
        await store.createSession({ userId: user.id, tokenSha256: sha256('old'), expiresAt: inHours(-1), userAgent: null });
        await store.createSession({ userId: user.id, tokenSha256: sha256('new'), expiresAt: inHours(1), userAgent: null });
        await store.createDeviceCode({
          deviceCodeSha256: sha256('c'),
          userCode: 'BCDFGHJK',
          deviceName: 'x',
          os: null,
          intervalS: 5,
          expiresAt: inHours(-1),
        });
        await store.createInvite({
          workspaceId: null,
          role: 'member',
          email: null,
          tokenSha256: sha256('i'),
          createdByUserId: null,
          expiresAt: inHours(-1),
        });
        await store.createPasswordReset({ userId: user.id, tokenSha256: sha256('r'), createdByUserId: null, expiresAt: inHours(-1) });

        expect(await store.purgeExpiredCredentials(new Date())).toBe(4);

        expect(await store.findSessionByHash(sha256('new'))).not.toBeNull();
        expect(await store.findSessionByHash(sha256('old'))).toBeNull();
        expect(await store.findDeviceCodeByUserCode('BCDFGHJK')).toBeNull();
      });
    });

    describe('API tokens of a person', () => {
      it('keeps the person and lists their active tokens', async () => {
        const user = await newUser();
        const workspace = await store.createWorkspace({ name: 'team' });
        const kept = await store.createApiToken({ workspaceId: workspace.id, userId: user.id, name: 'ci', tokenSha256: sha256('a1') });
        const revoked = await store.createApiToken({ workspaceId: workspace.id, userId: user.id, name: 'old', tokenSha256: sha256('a2') });
        await store.createApiToken({ workspaceId: workspace.id, name: 'local owner', tokenSha256: sha256('a3') });
        await store.revokeApiToken(revoked.id);

        expect(kept.userId).toBe(user.id);
        expect(await store.findApiTokenByHash(sha256('a1'))).toStrictEqual(kept);
        expect(await store.listUserApiTokens(user.id)).toStrictEqual([kept]);
        expect((await store.findApiTokenByHash(sha256('a3')))?.userId).toBeNull();
      });
    });
  });
}
