import type { ConnectState } from './connect-state.js';
import type { TargetId } from './connect-types.js';
import { fetchTokenInfo, revokeOwnToken } from './server-client.js';
import type { Connection } from './token-source.js';

/** The route token an earlier connect pointed the tools at, and the tools that used it. */
export interface PreviousToken {
  serverUrl: string;
  token: ConnectState['token'];
  targets: TargetId[];
}

export type RotationOutcome = 'none' | 'revoked' | 'kept' | 'not revoked';

/** Capture the token of the saved state before this run replaces it; null without an earlier connect. */
export function previousToken(state: ConnectState | null): PreviousToken | null {
  if (!state) return null;
  const targets = new Set<TargetId>(Object.keys(state.targets) as TargetId[]);
  for (const record of Object.values(state.files)) {
    for (const setting of record.settings) targets.add(setting.target);
    for (const target of record.block?.targets ?? []) targets.add(target);
  }
  return { serverUrl: state.serverUrl, token: { ...state.token }, targets: [...targets] };
}

/**
 * Revoke the route token an earlier connect created (through the API or by pairing) once this run moved
 * every tool that used it to a new token, so a replaced token does not stay valid. Tokens connect did not
 * create stay: the local server's own token, and one passed with --token. A tool still on the old token
 * (its change declined or failed) keeps it valid too.
 */
export async function retirePreviousToken(
  previous: PreviousToken | null,
  connection: Connection,
  movedTargets: ReadonlySet<TargetId>,
  say: (line: string) => void,
): Promise<RotationOutcome> {
  // The same token under another URL of the server (localhost and 127.0.0.1) is no replacement.
  if (!previous || previous.token.value === connection.token) return 'none';
  if (previous.token.source === 'local') return 'kept';
  if (previous.token.source === 'flag') {
    say(`The previous route token (passed with --token) stays valid on ${previous.serverUrl}: revoke it there if nothing else uses it.`);
    return 'kept';
  }

  const left = previous.targets.filter((target) => !movedTargets.has(target));
  if (left.length > 0) {
    // NOTE: the state records only the new token from here on, so disconnect does not revoke this one later.
    say(`The previous route token stays valid, because these tools still use it: ${left.join(', ')}. Run connect again to move them.`);
    return 'kept';
  }
  if (await sharesDevice(previous, connection)) return 'kept';

  const reply = await revokeOwnToken(previous.serverUrl, previous.token.value);
  if (reply.kind === 'ok' || reply.kind === 'rejected') {
    say(`Revoked the previous route token on ${previous.serverUrl}.`);
    return 'revoked';
  }
  say(`The previous route token is still valid: ${reply.message}. Revoke it on ${previous.serverUrl} when the server is back.`);
  return 'not revoked';
}

/**
 * True when both tokens belong to one device on one server. Revoking a token through its own endpoint
 * revokes its device, which would take the new token with it.
 */
async function sharesDevice(previous: PreviousToken, connection: Connection): Promise<boolean> {
  if (previous.serverUrl !== connection.serverUrl) return false;
  const [before, now] = await Promise.all([
    fetchTokenInfo(previous.serverUrl, previous.token.value),
    fetchTokenInfo(connection.serverUrl, connection.token),
  ]);
  if (before.kind !== 'ok' || now.kind !== 'ok') return false;
  const device = before.value.device_id;
  return typeof device === 'string' && device === now.value.device_id;
}
