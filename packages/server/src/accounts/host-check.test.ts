import { describe, expect, it } from 'vitest';
import { createHostCheck, originMatchesHost } from './host-check.js';

describe('host check', () => {
  const withPublicUrl = createHostCheck('https://tokenwise.example.com');
  const local = createHostCheck(undefined);

  it.each(['127.0.0.1:4747', 'localhost:4747', 'LOCALHOST', '[::1]:4747', '10.0.0.5', '192.168.1.20:80'])('accepts %s', (host) => {
    expect(local(host)).toBe(true);
    expect(withPublicUrl(host)).toBe(true);
  });

  it.each(['evil.example', 'tokenwise.example.com.evil.example', 'localhost.evil.example', '', 'bad host', '[::1'])(
    'rejects %s',
    (host) => {
      expect(local(host)).toBe(false);
      expect(withPublicUrl(host)).toBe(false);
    },
  );

  it('accepts the public host with its port only', () => {
    expect(withPublicUrl('tokenwise.example.com')).toBe(true);
    expect(withPublicUrl('tokenwise.example.com:8443')).toBe(false);
    expect(local('tokenwise.example.com')).toBe(false);
  });

  it('compares Origin with Host', () => {
    expect(originMatchesHost(undefined, 'a.example')).toBe(true);
    expect(originMatchesHost('https://a.example', 'a.example')).toBe(true);
    expect(originMatchesHost('https://b.example', 'a.example')).toBe(false);
    expect(originMatchesHost('null', 'a.example')).toBe(false);
  });
});
