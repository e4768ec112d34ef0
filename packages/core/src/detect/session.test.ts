import { describe, expect, it } from 'vitest';
import { detectSession, sessionFromAnthropicUserId } from './session.js';

const SESSION = '06f4309d-adfa-4bfa-ae69-cd5c87c019c1';
const ACCOUNT = '11111111-2222-4333-8444-555555555555';

describe('detectSession', () => {
  it('reads the Claude Code session header', () => {
    expect(detectSession({ 'x-claude-code-session-id': SESSION }, undefined, 'claude-code')).toBe(SESSION);
  });

  it('reads metadata.user_id as a JSON string', () => {
    const body = { metadata: { user_id: JSON.stringify({ device_id: 'd'.repeat(64), account_uuid: ACCOUNT, session_id: SESSION }) } };
    expect(detectSession({}, body, 'claude-code')).toBe(SESSION);
  });

  it('reads the older metadata.user_id form', () => {
    const body = { metadata: { user_id: `user_${'a'.repeat(64)}_account_${ACCOUNT}_session_${SESSION}` } };
    expect(detectSession({}, body, 'claude-code')).toBe(SESSION);
  });

  it.each(['session-id', 'thread-id', 'session_id', 'conversation_id'])('reads the Codex %s header', (name) => {
    expect(detectSession({ [name]: SESSION }, undefined, 'codex')).toBe(SESSION);
  });

  it('prefers the session-id header over thread-id', () => {
    expect(detectSession({ 'thread-id': 'thread', 'session-id': SESSION }, undefined, 'codex')).toBe(SESSION);
  });

  it('falls back to prompt_cache_key for Codex only', () => {
    expect(detectSession({}, { prompt_cache_key: SESSION }, 'codex')).toBe(SESSION);
    expect(detectSession({}, { prompt_cache_key: 'my-app-cache-key' }, 'openai-sdk')).toBeNull();
  });

  it('reads the Code Assist request.session_id', () => {
    expect(detectSession({}, { model: 'gemini-2.5-pro', request: { session_id: SESSION } }, 'gemini-cli')).toBe(SESSION);
  });

  it('returns null for a Gemini API call', () => {
    expect(detectSession({ 'x-goog-api-key': 'AIzaFAKE' }, { contents: [] }, 'gemini-cli')).toBeNull();
  });
});

describe('sessionFromAnthropicUserId', () => {
  it('never returns the account id', () => {
    expect(sessionFromAnthropicUserId(`user_abc_account_${ACCOUNT}`)).toBeNull();
    expect(sessionFromAnthropicUserId(JSON.stringify({ account_uuid: ACCOUNT }))).toBeNull();
  });

  it('returns null for a malformed JSON string', () => {
    expect(sessionFromAnthropicUserId('{"session_id":')).toBeNull();
  });
});
