import type { InsightSettings, Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { analyzeBatch } from './insight-batch.js';
import { groupInsights } from './version-drift.js';

/** Time between two runs of the insights job, in ms. */
export const INSIGHTS_INTERVAL_MS = 60_000;
/** Calls read and stored per transaction. */
const BATCH_SIZE = 200;
/** Batches per run at most, so one run of a large backlog does not hold the store for long; the next run goes on. */
const MAX_BATCHES_PER_RUN = 50;

export interface InsightsRunResult {
  /** Calls looked at in this run. */
  calls: number;
  /** Prompt groups whose insights were recomputed. */
  groups: number;
}

export interface InsightsJob {
  /** Run now, after a run in progress; resolves when done. Failures are logged and resolve with the calls done so far. */
  runOnce(): Promise<InsightsRunResult>;
  close(): Promise<void>;
}

/**
 * Start the background job that derives prompt groups, versions, call scores and insights from stored calls. It
 * reads the calls stored after its cursor, in storage order, and stores each batch's results together with
 * the new cursor in one transaction, so a crash repeats at most one batch, which changes nothing. Runs hold
 * the store lock `insights`, so app processes sharing one PostgreSQL database take turns. It never runs on
 * the proxy's path: the proxy only stores calls.
 */
export function startInsightsJob(options: { store: Store; logger: Logger; intervalMs?: number }): InsightsJob {
  const { store, logger } = options;
  let running: Promise<InsightsRunResult> | null = null;
  let closed = false;

  async function run(): Promise<InsightsRunResult> {
    const result: InsightsRunResult = { calls: 0, groups: 0 };
    if (closed) return result;
    try {
      await store.withLock('insights', async () => {
        const settings = new Map<string, Promise<InsightSettings>>();
        const settingsOf = (workspaceId: string) => {
          let found = settings.get(workspaceId);
          if (!found) {
            found = store.getInsightSettings(workspaceId);
            settings.set(workspaceId, found);
          }
          return found;
        };
        const touched = new Set<string>();
        const workspaceOfGroup = new Map<string, string>();

        for (let batches = 0; batches < MAX_BATCHES_PER_RUN && !closed; batches += 1) {
          const sources = await store.readInsightSources(await store.insightCursor(), BATCH_SIZE);
          if (sources.length === 0) break;
          const { batch, groupIds } = await analyzeBatch(store, sources, settingsOf);
          await store.saveInsightBatch(batch);
          result.calls += sources.length;
          for (const call of batch.calls) if (call.groupId !== null) workspaceOfGroup.set(call.groupId, call.workspaceId);
          for (const groupId of groupIds) touched.add(groupId);
          if (sources.length < BATCH_SIZE) break;
        }

        for (const groupId of touched) {
          const workspaceId = workspaceOfGroup.get(groupId)!;
          const group = await store.getPromptGroup(workspaceId, groupId);
          if (group?.kind !== 'template') continue;
          await store.replaceGroupInsights(workspaceId, groupId, await groupInsights(store, group, await settingsOf(workspaceId)));
          result.groups += 1;
        }
        const pruned = await store.pruneVersionTexts();
        if (result.calls > 0 || pruned > 0) {
          logger.info({ calls: result.calls, groups: result.groups, version_texts_pruned: pruned }, 'insights job ran');
        }
      });
    } catch (error) {
      logger.warn({ err: error, calls: result.calls }, 'insights job failed; it resumes from its cursor at the next interval');
    }
    return result;
  }

  // A request for a run while one is going waits for it and then runs again, so it sees every call stored
  // before the request. The timer skips its turn while a run is going.
  let queue: Promise<unknown> = Promise.resolve();
  function runOnce(): Promise<InsightsRunResult> {
    const next = queue.then(run);
    running = next;
    queue = next.finally(() => {
      if (running === next) running = null;
    });
    return next;
  }

  const timer = setInterval(() => {
    if (running === null) void runOnce();
  }, options.intervalMs ?? INSIGHTS_INTERVAL_MS);
  timer.unref();

  return {
    runOnce,
    async close() {
      closed = true;
      clearInterval(timer);
      await queue;
    },
  };
}
