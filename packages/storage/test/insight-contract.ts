import type { CallBodies, CallRecord } from '@tokenwise/core';
import type { CallInsightInput, CallScoreInput, InsightBatch, PromptGroupInput, PromptVersionInput, Store } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fullRecord, sampleBodies } from './sample-calls.js';
import type { StoreHandle } from './store-contract.js';

const T0 = Date.parse('2026-12-01T00:00:00.000Z');
const DAY = 86_400_000;

let serial = 0;

function call(atMs: number, overrides: Partial<CallRecord> = {}): CallRecord {
  serial += 1;
  return fullRecord({
    id: `0190a1b2-0000-7000-9000-${String(serial).padStart(12, '0')}`,
    started_at: new Date(T0 + atMs).toISOString(),
    workspace_id: 'ws-a',
    device_id: 'dev-1',
    session_id: 'session-1',
    status: 'success',
    ...overrides,
  });
}

function bodies(text: string): CallBodies {
  return sampleBodies({ request: { text, bytes: text.length, truncated: false, content_type: 'application/json', encoding_error: null } });
}

const GROUP: PromptGroupInput = {
  id: 'pg-1',
  workspaceId: 'ws-a',
  tool: 'claude-code',
  kind: 'template',
  templateKey: 'a'.repeat(64),
  opening: 'You are Claude Code.',
};

function version(id: string, firstCall: CallRecord, toolVersion: string): PromptVersionInput {
  return {
    id,
    workspaceId: 'ws-a',
    groupId: GROUP.id,
    fingerprint: id.padEnd(64, '0'),
    firstCallId: firstCall.id,
    firstSeenMs: Date.parse(firstCall.started_at),
    toolVersion,
    systemText: `system of ${id}`,
    toolsJson: '[]',
    toolCount: 0,
  };
}

function insightRow(record: CallRecord, versionId: string | null, groupId: string | null = GROUP.id): CallInsightInput {
  return {
    callId: record.id,
    workspaceId: record.workspace_id!,
    deviceId: record.device_id,
    sessionId: record.session_id,
    startedAtMs: Date.parse(record.started_at),
    groupId,
    versionId,
    requestSha256: versionId === null ? null : `sha-${record.id}`,
  };
}

function flag(record: CallRecord, scorer: string): CallScoreInput {
  return {
    callId: record.id,
    workspaceId: 'ws-a',
    scorer,
    startedAtMs: Date.parse(record.started_at),
    passed: false,
    value: null,
    detail: '{"why":"test"}',
  };
}

/** The prompt groups, versions, scores and insights every `Store` must keep alike. */
export function describeInsightContract(name: string, createStore: () => Promise<StoreHandle>): void {
  describe(`${name}: insights`, () => {
    let handle: StoreHandle;
    let store: Store;
    let before: CallRecord[];
    let after: CallRecord[];
    let batch: InsightBatch;

    beforeEach(async () => {
      handle = await createStore();
      store = handle.store;
      // Three days of the first version, then two of a second one that costs more per call.
      before = [0, 1, 2].map((day) => call(day * DAY, { cost: { ...fullRecord().cost, usd: 0.01, basis: 'exact' } }));
      after = [3, 4].map((day) =>
        call(day * DAY, { status: day === 4 ? 'error' : 'success', cost: { ...fullRecord().cost, usd: 0.03, basis: 'exact' } }),
      );
      await store.insertCalls([...before, ...after].map((record) => ({ record, bodies: bodies(`{"call":"${record.id}"}`) })));
      batch = {
        groups: [GROUP],
        versions: [version('v1', before[0]!, '2.1.197'), version('v2', after[0]!, '2.1.198')],
        calls: [...before.map((record) => insightRow(record, 'v1')), ...after.map((record) => insightRow(record, 'v2'))],
        scores: [flag(after[1]!, 'provider_error')],
        cursor: '5',
      };
    });

    afterEach(async () => {
      await store.close();
      await handle.cleanup?.();
    });

    it('reads calls after a cursor with their request bodies', async () => {
      const private_ = call(5 * DAY);
      await store.insertCalls([{ record: private_, bodies: null }]);

      const first = await store.readInsightSources(null, 2);
      const rest = await store.readInsightSources(first.at(-1)!.cursor, 100);

      expect(first.map((source) => source.record.id)).toEqual([before[0]!.id, before[1]!.id]);
      expect(first[0]!.requestBody).toBe(`{"call":"${before[0]!.id}"}`);
      expect(first[0]!.record).toEqual(before[0]);
      expect(rest.map((source) => source.record.id)).toEqual([before[2]!.id, ...after.map((record) => record.id), private_.id]);
      expect(rest.at(-1)!.requestBody).toBeNull();
    });

    it('sums each group and version', async () => {
      await store.saveInsightBatch(batch);

      const [summary] = await store.listPromptGroups({ workspaceId: 'ws-a' });
      const versions = await store.listPromptVersions('ws-a', GROUP.id);

      expect(summary!.group).toMatchObject({ id: 'pg-1', tool: 'claude-code', kind: 'template', opening: 'You are Claude Code.' });
      expect(summary!.sums).toMatchObject({ calls: 5, errors: 1, apiUsd: 0.09, pricedCalls: 5 });
      expect(summary!.sums.firstCallAt).toBe(before[0]!.started_at);
      expect(summary!.sums.lastCallAt).toBe(after[1]!.started_at);
      expect(summary!.versions).toBe(2);
      expect(summary!.deviceIds).toEqual(['dev-1']);
      expect(versions.map((entry) => [entry.version.id, entry.version.toolVersion, entry.sums.calls, entry.sums.apiUsd])).toEqual([
        ['v1', '2.1.197', 3, 0.03],
        ['v2', '2.1.198', 2, 0.06],
      ]);
      expect(versions[0]!.sums.latencyCalls).toBe(3);
      expect(versions[0]!.textKept).toBe(true);
      expect(await store.insightCursor()).toBe('5');
    });

    it('changes nothing when a batch is stored twice', async () => {
      await store.saveInsightBatch(batch);
      await store.saveInsightBatch(batch);

      expect((await store.listPromptGroups({ workspaceId: 'ws-a' }))[0]!.sums.calls).toBe(5);
      expect(await store.listCallScores('ws-a', [after[1]!.id])).toHaveLength(1);
    });

    it('moves a version start to an earlier call of a later batch', async () => {
      await store.saveInsightBatch(batch);
      const earlier = call(-DAY);
      await store.insertCalls([{ record: earlier, bodies: null }]);

      await store.saveInsightBatch({
        ...batch,
        versions: [version('v1', earlier, '2.1.196')],
        calls: [insightRow(earlier, 'v1')],
        cursor: '6',
      });

      const v1 = await store.getPromptVersion('ws-a', 'v1');
      expect(v1).toMatchObject({
        firstCallId: earlier.id,
        firstSeenAt: earlier.started_at,
        toolVersion: '2.1.196',
        systemText: 'system of v1',
      });
    });

    it('limits groups to a time range', async () => {
      await store.saveInsightBatch(batch);

      const [summary] = await store.listPromptGroups({ workspaceId: 'ws-a', from: new Date(T0 + 3 * DAY) });

      expect(summary!.sums.calls).toBe(2);
      expect(summary!.versions).toBe(1);
      expect(await store.listPromptGroups({ workspaceId: 'ws-b' })).toEqual([]);
      expect(await store.listPromptGroups({ workspaceId: 'ws-a', tools: ['codex'] })).toEqual([]);
      expect(await store.listPromptGroups({ workspaceId: 'ws-a', groupId: 'pg-other' })).toEqual([]);
    });

    it('pages the calls of a group and of a version', async () => {
      await store.saveInsightBatch(batch);

      const first = await store.listPromptGroupCalls('ws-a', GROUP.id, null, { limit: 3 });
      const second = await store.listPromptGroupCalls('ws-a', GROUP.id, null, { limit: 3, cursor: first.nextCursor! });
      const v2 = await store.listPromptGroupCalls('ws-a', GROUP.id, 'v2', { limit: 10 });

      expect([...first.calls, ...second.calls].map((listed) => listed.record.id)).toEqual(
        [...before, ...after].map((record) => record.id).reverse(),
      );
      expect(second.nextCursor).toBeNull();
      expect(v2.calls.map((listed) => listed.record.id)).toEqual([after[1]!.id, after[0]!.id]);
      expect(await store.listPromptGroupCalls('ws-b', GROUP.id, null, { limit: 10 })).toEqual({ calls: [], nextCursor: null });
    });

    it('finds a repeated request and the previous tool call', async () => {
      await store.saveInsightBatch(batch);

      const repeated = await store.findRepeatedRequest({
        workspaceId: 'ws-a',
        deviceId: 'dev-1',
        requestSha256: `sha-${before[1]!.id}`,
        fromMs: T0,
        beforeMs: T0 + 2 * DAY,
      });
      const otherDevice = await store.findRepeatedRequest({
        workspaceId: 'ws-a',
        deviceId: 'dev-2',
        requestSha256: `sha-${before[1]!.id}`,
        fromMs: T0,
        beforeMs: T0 + 2 * DAY,
      });
      const toolCall = await store.findPreviousToolCall({
        workspaceId: 'ws-a',
        sessionId: 'session-1',
        groupId: GROUP.id,
        beforeMs: T0 + 2 * DAY,
      });

      expect(repeated).toBe(before[1]!.id);
      expect(otherDevice).toBeNull();
      // fullRecord asks for tool calls, so the newest earlier call of the session is the one.
      expect(toolCall).toEqual({ callId: before[1]!.id, startedAtMs: Date.parse(before[1]!.started_at) });
    });

    it('summarizes scores by tool with a daily trend', async () => {
      await store.saveInsightBatch({
        ...batch,
        scores: [flag(after[1]!, 'provider_error'), flag(after[1]!, 'slow'), flag(before[0]!, 'slow')],
      });

      const summary = await store.scoreSummary({
        workspaceId: 'ws-a',
        from: new Date(T0),
        to: new Date(T0 + 7 * DAY),
        groupBy: 'tool',
        bucketMs: DAY,
        limit: 10,
      });

      expect(summary.totals).toEqual({ calls: 5, bodyCalls: 5, failed: { provider_error: 1, slow: 2 } });
      expect(summary.groups).toEqual([{ key: fullRecord().tool, calls: 5, bodyCalls: 5, failed: { provider_error: 1, slow: 2 } }]);
      expect(summary.trend.map((bucket) => [bucket.bucket, bucket.calls, bucket.failed])).toEqual([
        [0, 1, { slow: 1 }],
        [1, 1, {}],
        [2, 1, {}],
        [3, 1, {}],
        [4, 1, { provider_error: 1, slow: 1 }],
      ]);
    });

    it('reads the scores of listed calls in their workspace only', async () => {
      await store.saveInsightBatch(batch);

      const scores = await store.listCallScores('ws-a', [after[1]!.id, before[0]!.id]);

      expect(scores).toEqual([
        {
          callId: after[1]!.id,
          scorer: 'provider_error',
          passed: false,
          value: null,
          detail: { why: 'test' },
          startedAt: after[1]!.started_at,
        },
      ]);
      expect(await store.listCallScores('ws-b', [after[1]!.id])).toEqual([]);
      expect(await store.callInsightsOf('ws-a', [after[0]!.id])).toEqual([{ callId: after[0]!.id, groupId: GROUP.id, versionId: 'v2' }]);
    });

    it('skips the rows of a call deleted meanwhile', async () => {
      await store.deleteCalls({ workspaceId: 'ws-a', ids: [after[1]!.id] });

      await store.saveInsightBatch(batch);

      expect(await store.listCallScores('ws-a', [after[1]!.id])).toEqual([]);
      expect(await store.callInsightsOf('ws-a', [after[1]!.id])).toEqual([]);
    });

    it('deletes call rows with their calls and everything with the workspace', async () => {
      const workspace = await store.createWorkspace({ name: 'w' });
      const record = call(0, { workspace_id: workspace.id });
      await store.insertCalls([{ record, bodies: null }]);
      const group = { ...GROUP, id: 'pg-w', workspaceId: workspace.id };
      await store.saveInsightBatch({
        groups: [group],
        versions: [{ ...version('vw', record, '1'), workspaceId: workspace.id, groupId: group.id }],
        calls: [{ ...insightRow(record, 'vw', group.id), workspaceId: workspace.id }],
        scores: [{ ...flag(record, 'slow'), workspaceId: workspace.id }],
        cursor: '9',
      });
      await store.upsertInsights([
        {
          id: 'i-w',
          workspaceId: workspace.id,
          kind: 'version_change',
          groupId: group.id,
          versionId: 'vw',
          observedAtMs: T0,
          summary: 's',
          details: '{}',
        },
      ]);

      await store.deleteCalls({ workspaceId: workspace.id, ids: [record.id] });
      expect(await store.listCallScores(workspace.id, [record.id])).toEqual([]);
      expect(await store.callInsightsOf(workspace.id, [record.id])).toEqual([]);

      await store.deleteWorkspace(workspace.id);
      expect(await store.getPromptGroup(workspace.id, group.id)).toBeNull();
      expect(await store.getPromptVersion(workspace.id, 'vw')).toBeNull();
      expect(await store.listInsights({ workspaceId: workspace.id, limit: 10 })).toEqual([]);
    });

    it('forgets version texts once no call keeps its body', async () => {
      const workspace = await store.createWorkspace({ name: 'w', bodyRetentionDays: 1 });
      const record = call(0, { workspace_id: workspace.id });
      await store.insertCalls([{ record, bodies: bodies('{}') }]);
      await store.saveInsightBatch({
        groups: [{ ...GROUP, id: 'pg-r', workspaceId: workspace.id }],
        versions: [{ ...version('vr', record, '1'), workspaceId: workspace.id, groupId: 'pg-r' }],
        calls: [{ ...insightRow(record, 'vr', 'pg-r'), workspaceId: workspace.id }],
        scores: [],
        cursor: '9',
      });

      expect(await store.pruneVersionTexts()).toBe(0);
      await store.deleteExpiredBodies(new Date(T0 + 3 * DAY));

      expect(await store.pruneVersionTexts()).toBe(1);
      expect(await store.getPromptVersion(workspace.id, 'vr')).toMatchObject({ systemText: null, toolsJson: null });
      expect((await store.listPromptVersions(workspace.id, 'pg-r'))[0]!.textKept).toBe(false);
    });

    it('upserts insights and lists them newest first', async () => {
      const base = { workspaceId: 'ws-a', groupId: GROUP.id, versionId: 'v2', details: '{"n":1}' };
      await store.upsertInsights([
        { ...base, id: 'i-1', kind: 'version_change', observedAtMs: T0 + DAY, summary: 'new version' },
        { ...base, id: 'i-2', kind: 'metric_shift', observedAtMs: T0 + 2 * DAY, summary: 'cost up 50%' },
      ]);
      await store.upsertInsights([
        { ...base, id: 'i-2', kind: 'metric_shift', observedAtMs: T0 + 2 * DAY, summary: 'cost up 80%', details: '{"n":2}' },
      ]);

      const listed = await store.listInsights({ workspaceId: 'ws-a', limit: 10 });
      const recent = await store.listInsights({ workspaceId: 'ws-a', from: new Date(T0 + 2 * DAY), limit: 10 });

      expect(listed.map((insight) => [insight.id, insight.summary, insight.details])).toEqual([
        ['i-2', 'cost up 80%', { n: 2 }],
        ['i-1', 'new version', { n: 1 }],
      ]);
      expect(recent.map((insight) => insight.id)).toEqual(['i-2']);

      await store.replaceGroupInsights('ws-a', GROUP.id, [
        { ...base, id: 'i-1', kind: 'version_change', observedAtMs: T0 + DAY, summary: 'kept' },
      ]);
      expect((await store.listInsights({ workspaceId: 'ws-a', limit: 10 })).map((insight) => [insight.id, insight.summary])).toEqual([
        ['i-1', 'kept'],
      ]);
      expect(await store.listInsights({ workspaceId: 'ws-b', limit: 10 })).toEqual([]);
    });

    it('keeps settings per workspace with defaults', async () => {
      expect(await store.getInsightSettings('ws-a')).toEqual({ latencyTargetMs: 30_000, metricShiftPct: 25, updatedAt: null });

      await store.setInsightSettings('ws-a', { latencyTargetMs: 5000, metricShiftPct: 10 });

      expect(await store.getInsightSettings('ws-a')).toMatchObject({ latencyTargetMs: 5000, metricShiftPct: 10 });
      expect((await store.getInsightSettings('ws-b')).latencyTargetMs).toBe(30_000);
      await expect(store.setInsightSettings('ws-a', { latencyTargetMs: 0, metricShiftPct: 10 })).rejects.toThrow(
        /invalid latency target 0/,
      );
    });
  });
}
