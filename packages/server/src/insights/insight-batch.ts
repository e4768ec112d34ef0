import type { CallRecord } from '@tokenwise/core';
import type {
  CallInsightInput,
  CallScoreInput,
  InsightBatch,
  InsightSettings,
  InsightSourceCall,
  PromptGroupInput,
  PromptGroupKind,
  PromptVersionInput,
  Store,
} from '@tokenwise/storage';
import { RETRY_WINDOW_MS, type ScoreFlag, scoreRecord } from './call-scorers.js';
import { extractPromptParts, extractReturnedToolResults, isObject, isPromptShape } from './prompt-parts.js';
import { groupOpening, promptTemplate, sha256 } from './prompt-template.js';

/** Derive a group's id from what defines it, so every run of the job and every process names it alike. */
export function promptGroupId(workspaceId: string, tool: string, kind: PromptGroupKind, templateKey: string | null): string {
  return `pg_${sha256(`${workspaceId}\n${tool}\n${kind}\n${templateKey ?? ''}`).slice(0, 24)}`;
}

export function promptVersionId(groupId: string, fingerprint: string): string {
  return `pv_${sha256(`${groupId}\n${fingerprint}`).slice(0, 24)}`;
}

/** One call's contribution to a batch, kept so later calls of the batch can find it. */
interface AnalyzedCall {
  record: CallRecord;
  startedAtMs: number;
  row: CallInsightInput;
}

/**
 * Turn stored calls into one batch of insight rows: each call's prompt group and version, and the flags
 * of the scorers. Lookups of earlier calls (retries, the call whose tool results failed) check the calls
 * earlier in this batch first, then the store.
 */
export async function analyzeBatch(
  store: Store,
  sources: readonly InsightSourceCall[],
  settingsOf: (workspaceId: string) => Promise<InsightSettings>,
): Promise<{ batch: InsightBatch; groupIds: Set<string> }> {
  const groups = new Map<string, PromptGroupInput>();
  const versions = new Map<string, PromptVersionInput>();
  const calls: CallInsightInput[] = [];
  const scores = new Map<string, CallScoreInput>();
  const analyzed: AnalyzedCall[] = [];

  const addScore = (callId: string, workspaceId: string, startedAtMs: number, flag: ScoreFlag) => {
    scores.set(`${callId}/${flag.scorer}`, {
      callId,
      workspaceId,
      scorer: flag.scorer,
      startedAtMs,
      passed: false,
      value: flag.value,
      detail: JSON.stringify(flag.detail),
    });
  };

  for (const source of sources) {
    const { record } = source;
    // Calls stored without a workspace (before workspaces existed) belong to no one's insights.
    if (record.workspace_id === null) continue;
    const workspaceId = record.workspace_id;
    const startedAtMs = Date.parse(record.started_at);
    const settings = await settingsOf(workspaceId);

    const prompt = readPrompt(record, source);
    let groupId: string | null = null;
    let versionId: string | null = null;
    if (prompt.kind !== 'none') {
      const templateKey = prompt.kind === 'template' ? prompt.template.templateKey : null;
      groupId = promptGroupId(workspaceId, record.tool, prompt.kind, templateKey);
      if (!groups.has(groupId)) {
        groups.set(groupId, {
          id: groupId,
          workspaceId,
          tool: record.tool,
          kind: prompt.kind,
          templateKey,
          opening: prompt.kind === 'template' ? groupOpening(prompt.template) : null,
        });
      }
    }
    if (prompt.kind === 'template' && groupId !== null) {
      const { template } = prompt;
      versionId = promptVersionId(groupId, template.fingerprint);
      const known = versions.get(versionId);
      if (!known || startedAtMs < known.firstSeenMs) {
        versions.set(versionId, {
          id: versionId,
          workspaceId,
          groupId,
          fingerprint: template.fingerprint,
          firstCallId: record.id,
          firstSeenMs: startedAtMs,
          toolVersion: record.tool_version,
          systemText: template.system,
          toolsJson: JSON.stringify(template.tools),
          toolCount: template.tools.length,
        });
      }
    }

    const requestSha256 = source.requestBody === null ? null : sha256(source.requestBody);
    const row: CallInsightInput = {
      callId: record.id,
      workspaceId,
      deviceId: record.device_id,
      sessionId: record.session_id,
      startedAtMs,
      groupId,
      versionId,
      requestSha256,
    };
    calls.push(row);

    for (const flag of scoreRecord(record, settings.latencyTargetMs)) addScore(record.id, workspaceId, startedAtMs, flag);

    if (requestSha256 !== null && isPromptShape(record.api_shape)) {
      const retryOf = await findRetried(store, analyzed, row);
      if (retryOf !== null) addScore(record.id, workspaceId, startedAtMs, { scorer: 'retry', value: null, detail: { retry_of: retryOf } });
    }

    if (prompt.kind === 'template' && groupId !== null && record.session_id !== null && record.api_shape !== null) {
      const results = extractReturnedToolResults(record.api_shape, prompt.body);
      if (results.failedTools.length > 0) {
        const previous = await findToolCaller(store, analyzed, row);
        if (previous !== null) {
          addScore(previous.callId, workspaceId, previous.startedAtMs, {
            scorer: 'tool_error',
            value: results.failedTools.length,
            detail: { next_call_id: record.id, failed_tools: results.failedTools },
          });
        }
      }
    }
    analyzed.push({ record, startedAtMs, row });
  }

  const last = sources.at(-1);
  return {
    batch: {
      groups: [...groups.values()],
      versions: [...versions.values()],
      calls,
      scores: [...scores.values()],
      cursor: last ? last.cursor : '0',
    },
    groupIds: new Set(calls.flatMap((call) => (call.groupId === null ? [] : [call.groupId]))),
  };
}

type ReadPrompt =
  | { kind: 'none' }
  | { kind: 'not_kept' | 'unreadable' }
  | { kind: 'template'; template: ReturnType<typeof promptTemplate>; body: Record<string, unknown> };

function readPrompt(record: CallRecord, source: InsightSourceCall): ReadPrompt {
  if (!isPromptShape(record.api_shape)) return { kind: 'none' };
  if (source.requestBody === null) return { kind: 'not_kept' };
  // NOTE: a body cut at the capture limit is not parsed, although its system prompt usually came first.
  if (source.requestTruncated) return { kind: 'unreadable' };
  let body: unknown;
  try {
    body = JSON.parse(source.requestBody);
  } catch {
    return { kind: 'unreadable' };
  }
  if (!isObject(body)) return { kind: 'unreadable' };
  const parts = extractPromptParts(record.api_shape, body);
  return { kind: 'template', template: promptTemplate(record.tool, parts, [record.model_requested, record.model_answered]), body };
}

/** Find the newest earlier call of the same device that sent the same body within `RETRY_WINDOW_MS`. */
async function findRetried(store: Store, analyzed: readonly AnalyzedCall[], row: CallInsightInput): Promise<string | null> {
  const fromMs = row.startedAtMs - RETRY_WINDOW_MS;
  for (let index = analyzed.length - 1; index >= 0; index -= 1) {
    const earlier = analyzed[index]!;
    if (
      earlier.row.workspaceId === row.workspaceId &&
      earlier.row.deviceId === row.deviceId &&
      earlier.row.requestSha256 === row.requestSha256 &&
      earlier.startedAtMs >= fromMs &&
      earlier.startedAtMs < row.startedAtMs
    ) {
      return earlier.record.id;
    }
  }
  return store.findRepeatedRequest({
    workspaceId: row.workspaceId,
    deviceId: row.deviceId,
    requestSha256: row.requestSha256!,
    fromMs,
    beforeMs: row.startedAtMs,
  });
}

/**
 * Find the call that requested the tool calls whose results `row` returns: the newest earlier call of the same
 * session and prompt group with tool calls. The group keeps a subagent's calls, which have their own
 * system prompt, apart from the main conversation's.
 */
async function findToolCaller(
  store: Store,
  analyzed: readonly AnalyzedCall[],
  row: CallInsightInput,
): Promise<{ callId: string; startedAtMs: number } | null> {
  let inBatch: AnalyzedCall | null = null;
  for (const earlier of analyzed) {
    const matches =
      earlier.row.workspaceId === row.workspaceId &&
      earlier.row.sessionId === row.sessionId &&
      earlier.row.groupId === row.groupId &&
      earlier.record.tool_calls > 0 &&
      earlier.startedAtMs < row.startedAtMs;
    if (matches && (inBatch === null || earlier.startedAtMs >= inBatch.startedAtMs)) inBatch = earlier;
  }
  const stored = await store.findPreviousToolCall({
    workspaceId: row.workspaceId,
    sessionId: row.sessionId!,
    groupId: row.groupId!,
    beforeMs: row.startedAtMs,
  });
  if (inBatch === null) return stored;
  if (stored !== null && stored.startedAtMs > inBatch.startedAtMs) return stored;
  return { callId: inBatch.record.id, startedAtMs: inBatch.startedAtMs };
}
