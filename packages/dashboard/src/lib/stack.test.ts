import { describe, expect, it } from 'vitest';
import { stackSeries } from './stack.js';

describe('stackSeries', () => {
  it('adds each series onto the ones below it', () => {
    const stacked = stackSeries(
      [
        { label: 'claude-code', values: [1, 0, 2] },
        { label: 'codex', values: [3, 1, 0] },
      ],
      3,
    );

    expect(stacked[0]!.cumulative).toEqual([1, 0, 2]);
    expect(stacked[1]!.cumulative).toEqual([4, 1, 2]);
    expect(stacked[1]!.values).toEqual([3, 1, 0]);
  });

  it('pads a short series with zeros', () => {
    expect(stackSeries([{ label: 'a', values: [5] }], 3)[0]!.values).toEqual([5, 0, 0]);
  });
});
