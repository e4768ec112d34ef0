import type { CallRecord } from '@tokenwise/core';
import { useEffect, useRef, useState } from 'react';
import { apiUrl, currentWorkspaceId } from './client.js';

export type StreamState = 'connecting' | 'live' | 'reconnecting' | 'paused';

/**
 * Follow `/api/v1/calls/stream` (server-sent events) while `enabled`. `EventSource` reconnects by itself
 * and sends `Last-Event-ID`, so the server resends what was stored meanwhile. It cannot send headers, so
 * the workspace goes in `?workspace=`.
 */
export function useCallStream(enabled: boolean, onCall: (call: CallRecord) => void): StreamState {
  const [state, setState] = useState<StreamState>(enabled ? 'connecting' : 'paused');
  const handler = useRef(onCall);
  handler.current = onCall;

  useEffect(() => {
    if (!enabled) {
      setState('paused');
      return;
    }
    setState('connecting');
    const source = new EventSource(apiUrl('/calls/stream', { workspace: currentWorkspaceId() }), { withCredentials: true });
    source.addEventListener('ready', () => setState('live'));
    source.addEventListener('open', () => setState('live'));
    source.addEventListener('error', () => setState(source.readyState === EventSource.CLOSED ? 'paused' : 'reconnecting'));
    source.addEventListener('call', (event) => {
      try {
        handler.current(JSON.parse((event as MessageEvent<string>).data) as CallRecord);
      } catch {
        // A malformed event is skipped; the next list refresh shows the call anyway.
      }
    });
    return () => source.close();
  }, [enabled]);

  return state;
}
