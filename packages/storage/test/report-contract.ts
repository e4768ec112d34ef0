import type { CallRecord } from '@tokenwise/core';
import { type InsightsEmailClaim, JUDGE_TOOL, type Store } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fullRecord, sampleBodies } from './sample-calls.js';
import type { StoreHandle } from './store-contract.js';

const T0 = Date.parse('2026-12-07T00:00:00.000Z');
const HOUR = 3_600_000;
const WEEK_START = '2026-11-30T00:00:00.000Z';
const WEEK_END = '2026-12-07T00:00:00.000Z';

let serial = 0;

/** Bodies with text on both sides, which the judge needs. */
function judgeableBodies() {
  const text = '{"type":"message","content":[{"type":"text","text":"hi"}]}';
  return sampleBodies({
    response: { text, bytes: text.length, truncated: false, content_type: 'application/json', encoding_error: null },
  });
}

function call(workspaceId: string, overrides: Partial<CallRecord> & { at: number }): CallRecord {
  serial += 1;
  const { at, ...rest } = overrides;
  return fullRecord({
    id: `0190a1b2-0000-7000-9000-${String(serial).padStart(12, '0')}`,
    started_at: new Date(T0 + at).toISOString(),
    workspace_id: workspaceId,
    status: 'success',
    error: null,
    stop_reason: 'end_turn',
    stop_reason_normalized: 'end',
    ...rest,
  });
}

/** The insights email's and the LLM judge's store methods, which every `Store` must answer alike. */
export function describeReportContract(name: string, createStore: () => Promise<StoreHandle>): void {
  describe(`${name}: insights email and judge`, () => {
    let handle: StoreHandle;
    let store: Store;
    let workspaceId: string;

    beforeEach(async () => {
      handle = await createStore();
      store = handle.store;
      workspaceId = (await store.createWorkspace({ name: 'team' })).id;
    });

    afterEach(async () => {
      await store.close();
      await handle.cleanup?.();
    });

    function claim(overrides: Partial<InsightsEmailClaim> = {}): InsightsEmailClaim {
      return {
        workspaceId,
        userId: 'user-1',
        frequency: 'weekly',
        periodStart: WEEK_START,
        periodEnd: WEEK_END,
        now: new Date(T0),
        leaseMs: 30 * 60_000,
        maxAttempts: 3,
        ...overrides,
      };
    }

    describe('email settings', () => {
      it('defaults a workspace to weekly', async () => {
        expect(await store.getInsightsEmailSettings(workspaceId)).toEqual({
          workspaceId,
          frequency: 'weekly',
          updatedAt: null,
          updatedBy: null,
        });
      });

      it('stores and replaces the workspace frequency', async () => {
        await store.setInsightsEmailFrequency(workspaceId, 'off', 'owner-1');
        await store.setInsightsEmailFrequency(workspaceId, 'daily', 'owner-2');

        expect(await store.getInsightsEmailSettings(workspaceId)).toMatchObject({ frequency: 'daily', updatedBy: 'owner-2' });
      });

      it('rejects an unknown frequency', async () => {
        await expect(store.setInsightsEmailFrequency(workspaceId, 'hourly' as never, null)).rejects.toThrow(
          /invalid frequency "hourly": expected weekly, daily, off/,
        );
      });

      it('stores, replaces and clears a person preference', async () => {
        const ada = await store.createUser({ email: 'ada@example.com', name: 'Ada', passwordHash: 'x' });
        const bob = await store.createUser({ email: 'bob@example.com', name: 'Bob', passwordHash: 'x' });
        await store.setInsightsEmailPreference(workspaceId, ada.id, 'daily');
        await store.setInsightsEmailPreference(workspaceId, ada.id, 'off');
        await store.setInsightsEmailPreference(workspaceId, bob.id, 'weekly');
        await store.setInsightsEmailPreference(workspaceId, bob.id, null);

        const preferences = await store.listInsightsEmailPreferences(workspaceId);
        expect(preferences).toHaveLength(1);
        expect(preferences[0]).toMatchObject({ workspaceId, userId: ada.id, frequency: 'off' });
      });

      it('drops the preferences of a deleted account', async () => {
        const ada = await store.createUser({ email: 'ada@example.com', name: 'Ada', passwordHash: 'x' });
        await store.addMembership({ workspaceId, userId: ada.id, role: 'member' });
        await store.setInsightsEmailPreference(workspaceId, ada.id, 'daily');

        await store.deleteUser(ada.id, []);

        expect(await store.listInsightsEmailPreferences(workspaceId)).toEqual([]);
      });
    });

    describe('email sends', () => {
      it('lets only the first claim of a period win', async () => {
        expect(await store.claimInsightsEmailSend(claim())).toBe(true);
        expect(await store.claimInsightsEmailSend(claim({ now: new Date(T0 + 1000) }))).toBe(false);
        expect(await store.claimInsightsEmailSend(claim({ userId: 'user-2' }))).toBe(true);
        expect(await store.claimInsightsEmailSend(claim({ frequency: 'daily' }))).toBe(true);
      });

      it('lets one of several simultaneous claims win', async () => {
        const results = await Promise.all(Array.from({ length: 6 }, () => store.claimInsightsEmailSend(claim())));

        expect(results.filter(Boolean)).toHaveLength(1);
      });

      it('never claims a sent or skipped period again', async () => {
        await store.claimInsightsEmailSend(claim());
        await store.finishInsightsEmailSend(claim(), { status: 'sent', messageId: '<m1@test>', error: null, now: new Date(T0) });
        await store.claimInsightsEmailSend(claim({ userId: 'user-2' }));
        await store.finishInsightsEmailSend(claim({ userId: 'user-2' }), {
          status: 'skipped',
          messageId: null,
          error: null,
          now: new Date(T0),
        });

        const later = new Date(T0 + 48 * HOUR);
        expect(await store.claimInsightsEmailSend(claim({ now: later }))).toBe(false);
        expect(await store.claimInsightsEmailSend(claim({ userId: 'user-2', now: later }))).toBe(false);
      });

      it('retries a failed send up to the attempt limit', async () => {
        const fail = () =>
          store.finishInsightsEmailSend(claim(), { status: 'failed', messageId: null, error: 'refused', now: new Date(T0) });
        expect(await store.claimInsightsEmailSend(claim({ maxAttempts: 2 }))).toBe(true);
        await fail();
        expect(await store.claimInsightsEmailSend(claim({ maxAttempts: 2 }))).toBe(true);
        await fail();

        expect(await store.claimInsightsEmailSend(claim({ maxAttempts: 2 }))).toBe(false);
        const [send] = await store.listInsightsEmailSends(workspaceId, 10);
        expect(send).toMatchObject({ status: 'failed', attempts: 2, error: 'refused' });
      });

      it('takes over a claim older than the lease', async () => {
        await store.claimInsightsEmailSend(claim());

        expect(await store.claimInsightsEmailSend(claim({ now: new Date(T0 + 29 * 60_000) }))).toBe(false);
        expect(await store.claimInsightsEmailSend(claim({ now: new Date(T0 + 31 * 60_000) }))).toBe(true);
      });

      it('lists sends with their outcome, the latest period first', async () => {
        const earlier = claim({ periodStart: '2026-11-23T00:00:00.000Z', periodEnd: WEEK_START });
        await store.claimInsightsEmailSend(earlier);
        await store.finishInsightsEmailSend(earlier, { status: 'sent', messageId: '<m0@test>', error: null, now: new Date(T0) });
        await store.claimInsightsEmailSend(claim());

        const sends = await store.listInsightsEmailSends(workspaceId, 10);
        expect(sends.map((send) => [send.periodStart, send.status, send.messageId])).toEqual([
          [WEEK_START, 'sending', null],
          ['2026-11-23T00:00:00.000Z', 'sent', '<m0@test>'],
        ]);
        expect(sends[1]).toMatchObject({ periodEnd: WEEK_START, attempts: 1, claimedAt: new Date(T0).toISOString() });
      });

      it('deletes sends and settings with their workspace', async () => {
        await store.claimInsightsEmailSend(claim());
        await store.setInsightsEmailFrequency(workspaceId, 'daily', null);

        expect(await store.deleteWorkspace(workspaceId)).toBe(true);
        expect(await store.listInsightsEmailSends(workspaceId, 10)).toEqual([]);
        expect((await store.getInsightsEmailSettings(workspaceId)).frequency).toBe('weekly');
      });
    });

    it('counts outcomes per tool', async () => {
      await store.insertCalls(
        [
          call(workspaceId, { at: 0 }),
          call(workspaceId, { at: 1, stop_reason: 'refusal', stop_reason_normalized: 'refusal' }),
          call(workspaceId, { at: 2, status: 'error', stop_reason: null, stop_reason_normalized: null }),
          call(workspaceId, { at: 3, tool: 'codex', stop_reason_normalized: 'content_filter' }),
          call(workspaceId, { at: 4, tool: 'codex', status: 'aborted' }),
          call(workspaceId, { at: 5, tool: 'codex', status: 'truncated' }),
          call(workspaceId, { at: 6, tool: 'codex' }),
          call('other-workspace', { at: 7, status: 'error' }),
          call(workspaceId, { at: 2 * HOUR, status: 'error' }),
        ].map((record) => ({ record, bodies: null })),
      );

      const outcomes = await store.callOutcomesByTool({ workspaceId, from: new Date(T0), to: new Date(T0 + HOUR) });

      expect(outcomes).toEqual([
        { tool: 'codex', calls: 4, errors: 0, refusals: 1, truncated: 1, aborted: 1 },
        { tool: 'claude-code', calls: 3, errors: 1, refusals: 1, truncated: 0, aborted: 0 },
      ]);
    });

    describe('judge', () => {
      const settings = (overrides: Partial<Parameters<Store['saveJudgeSettings']>[0]> = {}) => ({
        workspaceId,
        enabled: true,
        route: 'anthropic',
        model: 'claude-haiku-4-5',
        rubric: 'Did the answer follow the instructions?',
        sampleRate: 0.25,
        passScore: 6,
        deviceId: 'judge-device',
        scanFromMs: T0,
        updatedBy: 'owner-1',
        ...overrides,
      });

      it('has no settings until saved', async () => {
        expect(await store.getJudgeSettings(workspaceId)).toBeNull();
        expect(await store.listEnabledJudgeSettings()).toEqual([]);
      });

      it('stores, replaces and lists settings', async () => {
        await store.saveJudgeSettings(settings({ enabled: false }));
        const saved = await store.saveJudgeSettings(settings({ model: 'claude-sonnet-4-5' }));

        expect(await store.getJudgeSettings(workspaceId)).toEqual(saved);
        expect(saved).toMatchObject({ enabled: true, model: 'claude-sonnet-4-5', sampleRate: 0.25, passScore: 6 });
        expect((await store.listEnabledJudgeSettings()).map((entry) => entry.workspaceId)).toEqual([workspaceId]);
      });

      it('rejects a sample rate above 1 and a pass score above 10', async () => {
        await expect(store.saveJudgeSettings(settings({ sampleRate: 1.5 }))).rejects.toThrow(/invalid sample rate 1.5/);
        await expect(store.saveJudgeSettings(settings({ passScore: 11 }))).rejects.toThrow(/invalid pass score 11/);
      });

      it('moves the scan position only forward', async () => {
        await store.saveJudgeSettings(settings());
        await store.advanceJudgeScan(workspaceId, T0 + 5000);
        await store.advanceJudgeScan(workspaceId, T0 + 1000);

        expect((await store.getJudgeSettings(workspaceId))?.scanFromMs).toBe(T0 + 5000);
      });

      it('lists calls with bodies as candidates, oldest first', async () => {
        const bodies = judgeableBodies();
        const eligible = call(workspaceId, { at: 2000 });
        const truncated = call(workspaceId, { at: 1000, status: 'truncated' });
        await store.insertCalls([
          { record: eligible, bodies },
          { record: truncated, bodies },
          { record: call(workspaceId, { at: 3000 }), bodies: null },
          { record: call(workspaceId, { at: 3500 }), bodies: sampleBodies() },
          { record: call(workspaceId, { at: 4000, status: 'error' }), bodies },
          { record: call(workspaceId, { at: 5000, tool: JUDGE_TOOL as CallRecord['tool'] }), bodies },
          { record: call(workspaceId, { at: HOUR }), bodies },
          { record: call('other-workspace', { at: 6000 }), bodies },
        ]);

        const candidates = await store.listJudgeCandidates({ workspaceId, fromMs: T0, toMs: T0 + HOUR, staleBeforeMs: T0, limit: 10 });

        expect(candidates).toEqual([
          { callId: truncated.id, startedAtMs: T0 + 1000, deviceId: 'dev-1' },
          { callId: eligible.id, startedAtMs: T0 + 2000, deviceId: 'dev-1' },
        ]);
      });

      it('claims a call once and hands over a stale claim', async () => {
        const record = call(workspaceId, { at: 0 });
        await store.insertCalls([{ record, bodies: judgeableBodies() }]);
        const judgeClaim = {
          callId: record.id,
          workspaceId,
          callStartedAtMs: T0,
          route: 'anthropic',
          model: 'claude-haiku-4-5',
          now: new Date(T0 + HOUR),
          leaseMs: 10 * 60_000,
        };
        const list = (now: number) =>
          store.listJudgeCandidates({ workspaceId, fromMs: T0, toMs: T0 + HOUR, staleBeforeMs: now - 600_000, limit: 10 });

        const first = await Promise.all([store.claimJudgeScore(judgeClaim), store.claimJudgeScore(judgeClaim)]);
        expect(first.filter(Boolean)).toHaveLength(1);
        expect(await list(T0 + HOUR)).toEqual([]);
        expect((await list(T0 + 2 * HOUR)).map((candidate) => candidate.callId)).toEqual([record.id]);
        expect(await store.claimJudgeScore({ ...judgeClaim, now: new Date(T0 + 2 * HOUR) })).toBe(true);

        await store.finishJudgeScore(record.id, {
          status: 'scored',
          score: 4,
          reason: 'ignored the instructions',
          responseId: 'msg_1',
          error: null,
          now: new Date(T0 + 2 * HOUR),
        });
        expect(await store.claimJudgeScore({ ...judgeClaim, now: new Date(T0 + 30 * HOUR) })).toBe(false);
        const [score] = await store.listJudgeScores({ workspaceId, order: 'newest', limit: 10 });
        expect(score).toMatchObject({ callId: record.id, status: 'scored', score: 4, reason: 'ignored the instructions', attempts: 2 });
      });

      it('lists scores lowest first and sums them up', async () => {
        const records = [0, 1, 2, 3].map((index) => call(workspaceId, { at: index * 1000 }));
        await store.insertCalls(records.map((record) => ({ record, bodies: judgeableBodies() })));
        const outcomes: [number | null, 'scored' | 'failed'][] = [
          [9, 'scored'],
          [3, 'scored'],
          [null, 'failed'],
          [5.5, 'scored'],
        ];
        for (const [index, record] of records.entries()) {
          const [score, status] = outcomes[index]!;
          await store.claimJudgeScore({
            callId: record.id,
            workspaceId,
            callStartedAtMs: Date.parse(record.started_at),
            route: 'anthropic',
            model: 'm',
            now: new Date(T0),
            leaseMs: 1000,
          });
          await store.finishJudgeScore(record.id, {
            status,
            score,
            reason: status === 'scored' ? `reason ${index}` : null,
            responseId: null,
            error: status === 'failed' ? 'no score in the answer' : null,
            now: new Date(T0),
          });
        }

        const lowest = await store.listJudgeScores({ workspaceId, order: 'lowest', limit: 10 });
        expect(lowest.map((score) => score.score)).toEqual([3, 5.5, 9, null]);
        const failing = await store.listJudgeScores({ workspaceId, order: 'lowest', below: 6, limit: 10 });
        expect(failing.map((score) => score.callId)).toEqual([records[1]!.id, records[3]!.id]);
        const summary = await store.judgeScoreSummary({ workspaceId, from: new Date(T0), to: new Date(T0 + HOUR), passScore: 6 });
        expect(summary).toEqual({ scored: 3, failedJudgings: 1, failing: 2, averageScore: 5.8333 });
      });

      it('deletes a score with its call and clears its reason with the bodies', async () => {
        const kept = call(workspaceId, { at: 0 });
        const deleted = call(workspaceId, { at: 1 });
        await store.insertCalls([kept, deleted].map((record) => ({ record, bodies: judgeableBodies() })));
        for (const record of [kept, deleted]) {
          await store.claimJudgeScore({
            callId: record.id,
            workspaceId,
            callStartedAtMs: T0,
            route: 'a',
            model: 'm',
            now: new Date(T0),
            leaseMs: 1,
          });
          await store.finishJudgeScore(record.id, {
            status: 'scored',
            score: 7,
            reason: 'fine',
            responseId: null,
            error: null,
            now: new Date(T0),
          });
        }

        await store.deleteCalls({ workspaceId, ids: [deleted.id] });
        await store.updateWorkspace(workspaceId, { bodyRetentionDays: 1 });
        await store.deleteExpiredBodies(new Date(T0 + 48 * HOUR));

        const scores = await store.listJudgeScores({ workspaceId, order: 'newest', limit: 10 });
        expect(scores.map((score) => [score.callId, score.score, score.reason])).toEqual([[kept.id, 7, null]]);
      });
    });
  });
}
