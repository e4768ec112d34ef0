import { useQuery } from '@tanstack/react-query';
import { api, currentWorkspaceId } from './client.js';
import type { CallList } from './types.js';

/**
 * True when the workspace has at least one call, from the built call list; pages show the connect
 * instructions instead of empty charts until the first call arrives. Polls while there is none.
 */
export function useHasCalls() {
  return useQuery({
    queryKey: ['has-calls', currentWorkspaceId()],
    queryFn: async () => (await api<CallList>('/calls', { query: { limit: 1 } })).calls.length > 0,
    refetchInterval: (query) => (query.state.data === false ? 5000 : false),
  });
}
