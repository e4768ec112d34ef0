import { describe, expect, it } from 'vitest';
import { sampleRecord } from '../test/helpers/sample-record.js';
import { createServerLogger, logCall } from './log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, stream: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) } };
}

describe('server logger', () => {
  it('rate-limits a repeated warning and reports the count', () => {
    const output = capture();
    let now = 0;
    const { logger, suppressedCounts } = createServerLogger({ destination: output.stream, clock: () => now });

    for (let index = 0; index < 8; index += 1) logger.warn({ index }, 'store slow');
    expect(output.lines).toHaveLength(5);
    expect(suppressedCounts()).toEqual({ 'store slow': 3 });

    now = 60_000;
    logger.warn({ index: 8 }, 'store slow');
    expect(output.lines).toHaveLength(6);
    expect(output.lines[5]).toMatchObject({ msg: 'store slow', index: 8, repeats_suppressed: 3 });
  });

  it('limits each message separately and leaves info alone', () => {
    const output = capture();
    const { logger } = createServerLogger({ destination: output.stream, clock: () => 0 });

    for (let index = 0; index < 6; index += 1) {
      logger.warn('first');
      logger.error('second');
      logger.info('third');
    }

    expect(output.lines.filter((line) => line.msg === 'first')).toHaveLength(5);
    expect(output.lines.filter((line) => line.msg === 'second')).toHaveLength(5);
    expect(output.lines.filter((line) => line.msg === 'third')).toHaveLength(6);
  });

  it('censors credential fields passed by mistake', () => {
    const output = capture();
    const { logger } = createServerLogger({ destination: output.stream });

    logger.info({ headers: { authorization: 'Bearer sk-ant-oat01-FAKE', 'x-api-key': 'sk-ant-api03-FAKE' }, token: 'twr_FAKE' }, 'oops');

    expect(JSON.stringify(output.lines)).not.toMatch(/FAKE/);
  });

  it('logs one call line in the same format', () => {
    const output = capture();
    const { logger } = createServerLogger({ destination: output.stream });
    const record = sampleRecord();

    logCall(logger, record);

    expect(output.lines).toEqual([
      expect.objectContaining({ level: 30, pid: process.pid, msg: 'call', call_id: record.id, model: 'claude-sonnet-4-5-20250929' }),
    ]);
    expect(output.lines[0]!.time).toEqual(expect.any(Number));
  });

  it('logs no call line above info', () => {
    const output = capture();
    const { logger } = createServerLogger({ level: 'warn', destination: output.stream });

    logCall(logger, sampleRecord());

    expect(output.lines).toEqual([]);
  });
});
