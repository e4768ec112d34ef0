import type {
  PageRequest,
  PromptGroup,
  PromptGroupSummary,
  PromptSums,
  ScoreCounts,
  ScoreGrouping,
  Store,
  StoredInsight,
  Workspace,
} from '@tokenwise/storage';
import { BODY_SCORERS, SCORERS } from './call-scorers.js';
import { diffVersions, type VersionDiff } from './prompt-diff.js';
import { promptMetrics } from './prompt-metrics.js';
import type { NormalizedTool } from './prompt-template.js';
import { templateName } from './prompt-template.js';
import { diffStoredVersions, summarizeDiff } from './version-drift.js';

/**
 * The insights as the API returns them (snake_case JSON, documented in docs/api.md), built from the store.
 * The API routes and the insights email both read through these functions, so both show the same numbers.
 * Every function takes the workspace it reads.
 */

const NOTES = {
  not_kept:
    'Prompts of these calls were not kept (privacy mode), so they are grouped by tool with metrics only: no prompt text, versions or diffs, and no retry or tool-error scores.',
  unreadable:
    'The request bodies of these calls could not be read (cut at the capture limit, or not JSON), so they are grouped by tool with metrics only.',
} as const;

export interface TimeRange {
  from?: Date;
  to?: Date;
}

/** Describe one page of the prompt groups of a workspace with a call in the range, the most expensive first. */
export async function describePromptGroups(
  store: Store,
  workspace: Workspace,
  range: TimeRange & { tools?: readonly string[] },
  page: PageRequest,
) {
  const summaries = await store.listPromptGroupsPage({ workspaceId: workspace.id, ...range }, page);
  const people = await peopleOfDevices(store, workspace.id);
  return {
    groups: summaries.items.map((summary) => describeGroupSummary(summary, people)),
    next_cursor: summaries.nextCursor,
    privacy: await describePrivacy(store, workspace),
    status: await describeJobStatus(store, workspace.id),
  };
}

/** Describe one group with its versions (oldest first, each with its metrics and what changed from the one before) and its insights. */
export async function describePromptGroup(store: Store, workspace: Workspace, groupId: string) {
  const group = await store.getPromptGroup(workspace.id, groupId);
  if (!group) return null;
  const [summary] = await store.listPromptGroups({ workspaceId: workspace.id, groupId });
  const people = await peopleOfDevices(store, workspace.id);
  const versions = await store.listPromptVersions(workspace.id, groupId);

  const described = [];
  for (let index = 0; index < versions.length; index += 1) {
    const current = versions[index]!;
    const previous = index > 0 ? versions[index - 1]! : null;
    let changes = null;
    if (previous) {
      const [before, after] = await Promise.all([
        store.getPromptVersion(workspace.id, previous.version.id),
        store.getPromptVersion(workspace.id, current.version.id),
      ]);
      changes = before && after ? summarizeDiff(diffStoredVersions(before, after)) : null;
    }
    described.push({
      id: current.version.id,
      number: index + 1,
      fingerprint: current.version.fingerprint,
      first_seen_at: current.version.firstSeenAt,
      first_call_id: current.version.firstCallId,
      last_call_at: current.sums.lastCallAt,
      tool_version: current.version.toolVersion,
      tool_count: current.version.toolCount,
      text_kept: current.textKept,
      previous_version_id: previous?.version.id ?? null,
      changes_from_previous: changes,
      ...describeSums(current.sums),
      metrics: promptMetrics(current.sums),
    });
  }
  const insights = await store.listInsights({ workspaceId: workspace.id, groupId, limit: 100 });
  return {
    group: summary ? describeGroupSummary(summary, people) : describeGroupSummary(emptySummary(group), people),
    versions: described,
    insights: insights.map(describeInsight),
  };
}

/**
 * The diff of a version against another of the same group (the one before it when `againstId` is null),
 * with both texts and the metrics of each side. Null when the group or a version is not in the workspace.
 */
export async function describeVersionDiff(store: Store, workspaceId: string, groupId: string, versionId: string, againstId: string | null) {
  const versions = await store.listPromptVersions(workspaceId, groupId);
  const index = versions.findIndex((entry) => entry.version.id === versionId);
  if (index < 0) return null;
  const otherIndex = againstId === null ? index - 1 : versions.findIndex((entry) => entry.version.id === againstId);
  if (againstId !== null && otherIndex < 0) return null;

  const current = versions[index]!;
  const other = otherIndex >= 0 ? versions[otherIndex]! : null;
  const after = await store.getPromptVersion(workspaceId, versionId);
  const before = other ? await store.getPromptVersion(workspaceId, other.version.id) : null;
  let diff: VersionDiff | null = null;
  if (after && after.systemText !== null && after.toolsJson !== null) {
    // The first version is diffed against nothing, so the whole of it reads as added.
    diff = before
      ? diffStoredVersions(before, after)
      : diffVersions({ system: '', tools: [] }, { system: after.systemText, tools: JSON.parse(after.toolsJson) as NormalizedTool[] });
  }
  const side = (entry: typeof current | null, number: number) =>
    entry === null
      ? null
      : {
          id: entry.version.id,
          number: number + 1,
          tool_version: entry.version.toolVersion,
          first_seen_at: entry.version.firstSeenAt,
          metrics: promptMetrics(entry.sums),
        };
  return {
    before: side(other, otherIndex),
    after: side(current, index),
    texts: {
      before: before === null ? null : { system: before.systemText, tools: before.toolsJson === null ? null : tools(before.toolsJson) },
      after: after === null ? null : { system: after.systemText, tools: after.toolsJson === null ? null : tools(after.toolsJson) },
    },
    diff: diff === null ? null : describeDiff(diff),
    note: diff === null ? 'The text of one of these versions is no longer kept: it goes with the request bodies of its calls.' : null,
  };
}

/** List the calls of a group (or of one version), newest first, each with its scores. */
export async function describeGroupCalls(
  store: Store,
  workspaceId: string,
  groupId: string,
  options: { versionId: string | null; limit: number; cursor?: string },
) {
  const page = await store.listPromptGroupCalls(workspaceId, groupId, options.versionId, { limit: options.limit, cursor: options.cursor });
  const ids = page.calls.map((call) => call.record.id);
  const [scores, rows] = await Promise.all([store.listCallScores(workspaceId, ids), store.callInsightsOf(workspaceId, ids)]);
  const versionOf = new Map(rows.map((row) => [row.callId, row.versionId]));
  return {
    calls: page.calls.map((call) => ({
      ...call.record,
      prompt_version_id: versionOf.get(call.record.id) ?? null,
      scores: scores.filter((score) => score.callId === call.record.id).map(describeScore),
    })),
    next_cursor: page.nextCursor,
  };
}

/** The scores of listed calls: the failed checks of each, and for each its prompt group and version. */
export async function describeCallScores(store: Store, workspaceId: string, callIds: readonly string[]) {
  const [scores, rows] = await Promise.all([store.listCallScores(workspaceId, callIds), store.callInsightsOf(workspaceId, callIds)]);
  const rowOf = new Map(rows.map((row) => [row.callId, row]));
  return {
    calls: callIds.map((callId) => {
      const row = rowOf.get(callId);
      return {
        call_id: callId,
        scored: row !== undefined,
        prompt_group_id: row?.groupId ?? null,
        prompt_version_id: row?.versionId ?? null,
        scores: scores.filter((score) => score.callId === callId).map(describeScore),
      };
    }),
  };
}

/** Failure counts and rates per scorer, per group/session/tool/model, and per time bucket. */
export async function describeScoreSummary(
  store: Store,
  workspaceId: string,
  query: { from: Date; to: Date; groupBy: ScoreGrouping; bucketMs: number; limit: number },
) {
  const summary = await store.scoreSummary({ workspaceId, ...query });
  let labels = new Map<string, string>();
  if (query.groupBy === 'group') {
    const groups = await store.listPromptGroups({ workspaceId, from: query.from, to: query.to });
    labels = new Map(groups.map((entry) => [entry.group.id, groupName(entry.group)]));
  }
  return {
    from: query.from.toISOString(),
    to: query.to.toISOString(),
    bucket_ms: query.bucketMs,
    group_by: query.groupBy,
    scorers: SCORERS.map((id) => ({ id, needs_body: BODY_SCORERS.includes(id) })),
    totals: describeCounts(summary.totals),
    groups: summary.groups.map((group) => ({
      key: group.key,
      label: group.key === null ? null : (labels.get(group.key) ?? group.key),
      ...describeCounts(group),
    })),
    trend: summary.trend.map((bucket) => ({
      bucket: bucket.bucket,
      start: new Date(query.from.getTime() + bucket.bucket * query.bucketMs).toISOString(),
      ...describeCounts(bucket),
    })),
  };
}

/** List one page of the insights of a workspace, newest first. */
export async function describeInsights(store: Store, workspaceId: string, query: { from?: Date }, page: PageRequest) {
  const insights = await store.listInsightsPage({ workspaceId, ...query }, page);
  return {
    insights: insights.items.map(describeInsight),
    next_cursor: insights.nextCursor,
    status: await describeJobStatus(store, workspaceId),
  };
}

export function describeInsight(insight: StoredInsight) {
  return {
    id: insight.id,
    kind: insight.kind,
    group_id: insight.groupId,
    version_id: insight.versionId,
    observed_at: insight.observedAt,
    created_at: insight.createdAt,
    updated_at: insight.updatedAt,
    summary: insight.summary,
    details: insight.details,
  };
}

/**
 * Report whether the insights job has read every call of the workspace. Only this workspace's calls
 * count: the job's cursor runs over the calls of every workspace, so showing it would tell each member
 * how many calls the whole server stores.
 */
export async function describeJobStatus(store: Store, workspaceId: string) {
  const processed = await store.insightCursor();
  const unread = await store.listCalls({ workspaceId, limit: 1, ...(processed === null ? {} : { after: processed }) });
  return { up_to_date: unread.length === 0 };
}

/** Describe which calls of the workspace keep no prompt, and why. */
async function describePrivacy(store: Store, workspace: Workspace) {
  const devices = await store.listDevices(workspace.id);
  const privateDevices = devices.filter((device) => device.privacyMode).length;
  const privacyMode = !workspace.keepBodies;
  let note: string | null = null;
  if (privacyMode) {
    note = 'Privacy mode is on for this workspace: new calls keep no prompt, so they are grouped by tool with metrics only.';
  } else if (privateDevices > 0) {
    note = `${privateDevices} device${privateDevices === 1 ? ' is' : 's are'} in privacy mode: their calls are grouped by tool with metrics only.`;
  }
  return { privacy_mode: privacyMode, private_devices: privateDevices, note };
}

function describeGroupSummary(summary: PromptGroupSummary, people: Map<string, { user_id: string; name: string }>) {
  const { group, sums } = summary;
  const seen = new Map<string, { user_id: string; name: string }>();
  for (const deviceId of summary.deviceIds) {
    const person = people.get(deviceId);
    if (person) seen.set(person.user_id, person);
  }
  return {
    id: group.id,
    kind: group.kind,
    tool: group.tool,
    name: groupName(group),
    opening: group.opening,
    versions: summary.versions,
    ...describeSums(sums),
    first_call_at: sums.firstCallAt,
    last_call_at: sums.lastCallAt,
    device_ids: summary.deviceIds,
    people: [...seen.values()].sort((a, b) => a.name.localeCompare(b.name)),
    metrics: promptMetrics(sums),
    note: group.kind === 'template' ? null : NOTES[group.kind],
  };
}

export function groupName(group: PromptGroup): string {
  if (group.kind === 'not_kept') return `${group.tool}: prompts not kept (privacy mode)`;
  if (group.kind === 'unreadable') return `${group.tool}: prompts not readable`;
  return templateName(group.tool, group.opening ?? '');
}

function describeSums(sums: PromptSums) {
  return {
    calls: sums.calls,
    errors: sums.errors,
    api_usd: sums.apiUsd,
    api_equivalent_usd: sums.apiEquivalentUsd,
    cost_usd: Math.round((sums.apiUsd + sums.apiEquivalentUsd) * 1e9) / 1e9,
    tokens: {
      input: sums.inputTokens,
      output: sums.outputTokens,
      cache_read: sums.cacheReadTokens,
      cache_write: sums.cacheWriteTokens,
    },
  };
}

function describeCounts(counts: ScoreCounts) {
  return {
    calls: counts.calls,
    body_calls: counts.bodyCalls,
    failed: Object.fromEntries(SCORERS.map((id) => [id, counts.failed[id] ?? 0])),
    // Body scorers could check only the calls that kept their request body.
    rates: Object.fromEntries(
      SCORERS.map((id) => {
        const base = BODY_SCORERS.includes(id) ? counts.bodyCalls : counts.calls;
        return [id, base > 0 ? (counts.failed[id] ?? 0) / base : null];
      }),
    ),
  };
}

function describeScore(score: { scorer: string; passed: boolean; value: number | null; detail: Record<string, unknown> }) {
  return { scorer: score.scorer, passed: score.passed, value: score.value, detail: score.detail };
}

function describeDiff(diff: VersionDiff) {
  const hunks = (text: VersionDiff['instructions']) =>
    text.hunks.map((hunk) => ({
      old_start: hunk.oldStart,
      old_lines: hunk.oldLines,
      new_start: hunk.newStart,
      new_lines: hunk.newLines,
      lines: hunk.lines,
    }));
  return {
    instructions: {
      added_lines: diff.instructions.addedLines,
      removed_lines: diff.instructions.removedLines,
      hunks: hunks(diff.instructions),
    },
    tools: {
      added: diff.tools.added,
      removed: diff.tools.removed,
      unchanged: diff.tools.unchanged,
      changed: diff.tools.changed.map((tool) => ({
        name: tool.name,
        description_changed: tool.descriptionChanged,
        schema_changed: tool.schemaChanged,
        hunks: hunks(tool.diff),
      })),
    },
  };
}

function tools(json: string): { name: string; definition: unknown }[] {
  return (JSON.parse(json) as NormalizedTool[]).map((tool) => ({ name: tool.name, definition: JSON.parse(tool.definition) as unknown }));
}

async function peopleOfDevices(store: Store, workspaceId: string): Promise<Map<string, { user_id: string; name: string }>> {
  const [devices, members] = await Promise.all([store.listDevices(workspaceId), store.listMembers(workspaceId)]);
  const names = new Map(members.map((member) => [member.userId, member.user.name || member.user.email]));
  const people = new Map<string, { user_id: string; name: string }>();
  for (const device of devices) {
    if (device.userId === null) continue;
    people.set(device.id, { user_id: device.userId, name: names.get(device.userId) ?? device.userId });
  }
  return people;
}

function emptySummary(group: PromptGroup): PromptGroupSummary {
  return {
    group,
    versions: 0,
    deviceIds: [],
    sums: {
      calls: 0,
      errors: 0,
      apiUsd: 0,
      apiEquivalentUsd: 0,
      pricedCalls: 0,
      inputTokens: 0,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      outputTokens: 0,
      tokenCalls: 0,
      cacheRatioReadTokens: 0,
      cacheRatioInputTokens: 0,
      latencyMsSum: 0,
      latencyCalls: 0,
      firstCallAt: null,
      lastCallAt: null,
    },
  };
}

export type { ScoreGrouping };
