import { describe, expect, it } from 'vitest';
import { createAttemptLimiter } from './attempt-limiter.js';

describe('attempt limiter', () => {
  it('pauses a key after the maximum failures until the window passes', () => {
    let now = 0;
    const limiter = createAttemptLimiter({ maxFailures: 3, windowMs: 60_000, clock: () => now });

    for (let attempt = 0; attempt < 3; attempt += 1) {
      expect(limiter.retryAfterS('a')).toBe(0);
      limiter.fail('a');
      now += 1_000;
    }

    expect(limiter.retryAfterS('a')).toBe(57);
    expect(limiter.retryAfterS('b')).toBe(0);
    now = 60_001;
    expect(limiter.retryAfterS('a')).toBe(0);
  });

  it('forgets a key on reset', () => {
    const limiter = createAttemptLimiter({ maxFailures: 1, windowMs: 60_000 });
    limiter.fail('a');
    limiter.reset('a');

    expect(limiter.retryAfterS('a')).toBe(0);
  });
});
