import { describe, expect, it } from 'vitest';
import { checkNewPassword, hashPassword, verifyPassword } from './passwords.js';

describe('passwords', () => {
  it('verifies the password it hashed and nothing else', async () => {
    const hash = await hashPassword('correct horse battery');

    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
    expect(await verifyPassword('correct horse battery', hash)).toBe(true);
    expect(await verifyPassword('correct horse batterY', hash)).toBe(false);
  });

  it('salts every hash', async () => {
    expect(await hashPassword('same password')).not.toBe(await hashPassword('same password'));
  });

  it('rejects malformed hashes and costs beyond the memory limit', async () => {
    expect(await verifyPassword('x', 'plain')).toBe(false);
    expect(await verifyPassword('x', 'scrypt$0$8$1$c2FsdA$aGFzaA')).toBe(false);
    expect(await verifyPassword('x', `scrypt$${2 ** 20}$8$1$c2FsdA$aGFzaA`)).toBe(false);
  });

  it('checks new passwords', () => {
    expect(checkNewPassword('short', 'a@example.com')).toMatch(/too short/);
    expect(checkNewPassword('x'.repeat(257), 'a@example.com')).toMatch(/too long/);
    expect(checkNewPassword('Ada@Example.com', 'ada@example.com')).toMatch(/email/);
    expect(checkNewPassword('long enough now', 'a@example.com')).toBeNull();
  });
});
