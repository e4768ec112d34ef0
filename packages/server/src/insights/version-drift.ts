import type { InsightInput, InsightSettings, PromptGroup, PromptVersion, PromptVersionSummary, Store } from '@tokenwise/storage';
import { diffVersions, type VersionDiff } from './prompt-diff.js';
import { type MetricShift, metricShifts, type PromptMetrics, promptMetrics } from './prompt-metrics.js';
import type { NormalizedTool } from './prompt-template.js';
import { sha256, templateName } from './prompt-template.js';

/** Counts of what changed between two versions, for lists and emails; null when either text is no longer kept. */
export interface DiffSummary {
  instruction_lines_added: number;
  instruction_lines_removed: number;
  tools_added: string[];
  tools_removed: string[];
  tools_changed: string[];
}

/** Diff two stored versions; null when either text was pruned with its bodies. */
export function diffStoredVersions(before: PromptVersion, after: PromptVersion): VersionDiff | null {
  if (before.systemText === null || before.toolsJson === null || after.systemText === null || after.toolsJson === null) return null;
  return diffVersions(
    { system: before.systemText, tools: JSON.parse(before.toolsJson) as NormalizedTool[] },
    { system: after.systemText, tools: JSON.parse(after.toolsJson) as NormalizedTool[] },
  );
}

export function summarizeDiff(diff: VersionDiff | null): DiffSummary | null {
  if (diff === null) return null;
  return {
    instruction_lines_added: diff.instructions.addedLines,
    instruction_lines_removed: diff.instructions.removedLines,
    tools_added: diff.tools.added,
    tools_removed: diff.tools.removed,
    tools_changed: diff.tools.changed.map((tool) => tool.name),
  };
}

/**
 * Work out the insights of one template group from its versions, oldest first: each version after the
 * first raises a `version_change`, and each metric that shifted from the version before beyond the
 * workspace's threshold a `metric_shift`. Ids derive from the version and metric, so a later run updates
 * the same insights. A version that alternates with the one before at the same client version raises
 * neither (see `alternatesWith`).
 */
export async function groupInsights(store: Store, group: PromptGroup, settings: InsightSettings): Promise<InsightInput[]> {
  if (group.kind !== 'template') return [];
  const versions = await store.listPromptVersions(group.workspaceId, group.id);
  const insights: InsightInput[] = [];
  const name = templateName(group.tool, group.opening ?? '');

  for (let index = 1; index < versions.length; index += 1) {
    const previous = versions[index - 1]!;
    const current = versions[index]!;
    if (alternatesWith(previous, current)) continue;
    const [before, after] = await Promise.all([
      store.getPromptVersion(group.workspaceId, previous.version.id),
      store.getPromptVersion(group.workspaceId, current.version.id),
    ]);
    const diff = before && after ? summarizeDiff(diffStoredVersions(before, after)) : null;
    const beforeMetrics = promptMetrics(previous.sums);
    const afterMetrics = promptMetrics(current.sums);
    const observedAtMs = Date.parse(current.version.firstSeenAt);
    const common = {
      group_id: group.id,
      group_name: name,
      tool: group.tool,
      version_id: current.version.id,
      previous_version_id: previous.version.id,
      tool_version: current.version.toolVersion,
      previous_tool_version: previous.version.toolVersion,
    };

    insights.push({
      id: `in_${sha256(`version_change\n${current.version.id}`).slice(0, 24)}`,
      workspaceId: group.workspaceId,
      kind: 'version_change',
      groupId: group.id,
      versionId: current.version.id,
      observedAtMs,
      summary: versionChangeSummary(name, current, diff),
      details: JSON.stringify({ ...common, diff, before: beforeMetrics, after: afterMetrics }),
    });

    for (const shift of metricShifts(beforeMetrics, afterMetrics, settings.metricShiftPct)) {
      insights.push({
        id: `in_${sha256(`metric_shift\n${current.version.id}\n${shift.metric}`).slice(0, 24)}`,
        workspaceId: group.workspaceId,
        kind: 'metric_shift',
        groupId: group.id,
        versionId: current.version.id,
        observedAtMs,
        summary: metricShiftSummary(name, current, shift),
        details: JSON.stringify({
          ...common,
          metric: shift.metric,
          label: shift.label,
          metric_before: shift.before,
          metric_after: shift.after,
          change_pct: shift.change_pct,
          threshold_pct: settings.metricShiftPct,
          before: beforeMetrics,
          after: afterMetrics,
        }),
      });
    }
  }
  return insights;
}

/**
 * True when two versions come from the same client version and the older one was still sent after the newer
 * one appeared. A client release did not replace one prompt with the other then: the client sends both, for
 * example with a tool definition that varies between calls, so a "new version" insight would be false.
 */
function alternatesWith(previous: PromptVersionSummary, current: PromptVersionSummary): boolean {
  const sameClient = previous.version.toolVersion !== null && previous.version.toolVersion === current.version.toolVersion;
  const previousLast = previous.sums.lastCallAt === null ? Number.NaN : Date.parse(previous.sums.lastCallAt);
  return sameClient && previousLast > Date.parse(current.version.firstSeenAt);
}

function introducedBy(version: PromptVersionSummary): string {
  return version.version.toolVersion === null ? '' : ` with version ${version.version.toolVersion}`;
}

function versionChangeSummary(name: string, version: PromptVersionSummary, diff: DiffSummary | null): string {
  const head = `New prompt version of "${name}"${introducedBy(version)}`;
  if (diff === null) return `${head} (its text is no longer kept)`;
  const parts = [`${diff.instruction_lines_added} instruction lines added, ${diff.instruction_lines_removed} removed`];
  if (diff.tools_added.length > 0) parts.push(`tools added: ${diff.tools_added.join(', ')}`);
  if (diff.tools_removed.length > 0) parts.push(`tools removed: ${diff.tools_removed.join(', ')}`);
  if (diff.tools_changed.length > 0) parts.push(`tools changed: ${diff.tools_changed.join(', ')}`);
  return `${head}: ${parts.join('; ')}`;
}

function metricShiftSummary(name: string, version: PromptVersionSummary, shift: MetricShift): string {
  const direction = shift.after > shift.before ? 'rose' : 'fell';
  const by = shift.change_pct === null ? '' : ` ${Math.abs(shift.change_pct)}%`;
  return `${capitalize(shift.label)} of "${name}" ${direction}${by} (${formatMetric(shift.metric, shift.before)} to ${formatMetric(shift.metric, shift.after)}) after the prompt changed${introducedBy(version)}`;
}

export function formatMetric(metric: keyof PromptMetrics, value: number): string {
  switch (metric) {
    case 'cost_per_call_usd':
      return `$${value < 0.01 ? value.toFixed(4) : value.toFixed(3)}`;
    case 'cache_hit_ratio':
    case 'error_rate':
      return `${(value * 100).toFixed(1)}%`;
    case 'latency_ms':
      return `${Math.round(value)} ms`;
    default:
      return String(Math.round(value));
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
