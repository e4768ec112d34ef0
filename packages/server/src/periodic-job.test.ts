import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startPeriodicJob } from './periodic-job.js';

/** Create a run that stays in progress until the test releases it. */
function gatedRun() {
  const releases: Array<() => void> = [];
  const run = vi.fn(
    () =>
      new Promise<void>((resolve) => {
        releases.push(resolve);
      }),
  );
  return { run, release: () => releases.shift()?.() };
}

describe('startPeriodicJob', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs once per interval', async () => {
    const run = vi.fn(async () => undefined);
    const job = startPeriodicJob(run, 1000);
    await vi.advanceTimersByTimeAsync(999);
    expect(run).toHaveBeenCalledTimes(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(run).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(2000);
    expect(run).toHaveBeenCalledTimes(3);
    await job.close();
  });

  it('joins the run in progress', async () => {
    const { run, release } = gatedRun();
    const job = startPeriodicJob(run, 1000);
    const first = job.runOnce();
    const second = job.runOnce();
    expect(second).toBe(first);
    await vi.advanceTimersByTimeAsync(3000);
    expect(run).toHaveBeenCalledTimes(1);
    release();
    await first;
    const third = job.runOnce();
    expect(third).not.toBe(first);
    expect(run).toHaveBeenCalledTimes(2);
    release();
    await third;
    await job.close();
  });

  it('close waits for the run', async () => {
    const { run, release } = gatedRun();
    const job = startPeriodicJob(run, 1000);
    expect(job.stopping).toBe(false);
    void job.runOnce();
    let closed = false;
    const closing = job.close().then(() => {
      closed = true;
    });
    expect(job.stopping).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(closed).toBe(false);
    release();
    await closing;
    expect(closed).toBe(true);
    await vi.advanceTimersByTimeAsync(5000);
    expect(run).toHaveBeenCalledTimes(1);
  });

  it('close when idle stops the timer', async () => {
    const run = vi.fn(async () => undefined);
    const job = startPeriodicJob(run, 1000);
    await job.close();
    await vi.advanceTimersByTimeAsync(5000);
    expect(run).not.toHaveBeenCalled();
  });

  it('unrefs its timer', () => {
    vi.useRealTimers();
    const spy = vi.spyOn(globalThis, 'setInterval');
    const job = startPeriodicJob(async () => undefined, 60_000);
    const timer = spy.mock.results[0]?.value as NodeJS.Timeout;
    spy.mockRestore();
    expect(timer.hasRef()).toBe(false);
    return job.close();
  });
});
