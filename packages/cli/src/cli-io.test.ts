import { describe, expect, it } from 'vitest';
import { colorsEnabled } from './cli-io.js';

const io = (isTTY: boolean, env: NodeJS.ProcessEnv) => ({ stdout: { write: () => true, isTTY }, stderr: { write: () => true }, env });

describe('colorsEnabled', () => {
  it('colors a terminal', () => {
    expect(colorsEnabled(io(true, {}))).toBe(true);
  });

  it('respects NO_COLOR with any value', () => {
    expect(colorsEnabled(io(true, { NO_COLOR: '1' }))).toBe(false);
    expect(colorsEnabled(io(true, { NO_COLOR: 'yes' }))).toBe(false);
  });

  it('never colors a pipe or file', () => {
    expect(colorsEnabled(io(false, {}))).toBe(false);
  });
});
