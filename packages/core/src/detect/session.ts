import type { ToolId } from '../call-record.js';
import { asObject, asString, type JsonObject } from '../capture/json-access.js';

const MAX_SESSION_ID_LENGTH = 200;

/** Headers that carry an agent session id, in order of preference (Codex renamed its underscore forms). */
const SESSION_HEADERS = ['x-claude-code-session-id', 'session-id', 'thread-id', 'session_id', 'conversation_id'];

/**
 * Find the agent session a call belongs to, from the request headers and the top-level body fields:
 * Claude Code's `x-claude-code-session-id` and `metadata.user_id`, Codex's session headers and
 * `prompt_cache_key`, Code Assist's `request.session_id`. Plain Gemini API calls carry none.
 */
export function detectSession(headers: Readonly<Record<string, string>>, body: JsonObject | undefined, tool: ToolId): string | null {
  for (const name of SESSION_HEADERS) {
    const value = headers[name]?.trim();
    if (value) return clip(value);
  }

  const fromUserId = sessionFromAnthropicUserId(asString(asObject(body?.metadata)?.user_id));
  if (fromUserId) return clip(fromUserId);

  const codeAssist = asString(asObject(body?.request)?.session_id);
  if (codeAssist) return clip(codeAssist);

  // Codex sets prompt_cache_key to the thread id; other clients use the key for unrelated purposes.
  const cacheKey = asString(body?.prompt_cache_key);
  if (tool === 'codex' && cacheKey) return clip(cacheKey);
  return null;
}

/**
 * Claude Code's `metadata.user_id` is a JSON string `{"device_id","account_uuid","session_id"}` in current
 * versions and `user_<hash>_account_<uuid>_session_<uuid>` in older ones. Only the session part is read:
 * the account id must never reach a record.
 */
export function sessionFromAnthropicUserId(userId: string | null): string | null {
  if (!userId) return null;
  if (userId.trimStart().startsWith('{')) {
    try {
      return asString(asObject(JSON.parse(userId))?.session_id) || null;
    } catch {
      return null;
    }
  }
  return /_session_([0-9a-fA-F-]{8,})$/.exec(userId)?.[1] ?? null;
}

function clip(value: string): string {
  return value.length > MAX_SESSION_ID_LENGTH ? value.slice(0, MAX_SESSION_ID_LENGTH) : value;
}
