import { createContext, useContext } from 'react';
import type { Me, Workspace } from './types.js';

export interface WorkspaceContextValue {
  me: Me;
  workspace: Workspace;
  switchWorkspace(id: string): void;
}

export const WorkspaceContext = createContext<WorkspaceContextValue | null>(null);

/** The signed-in person and the workspace the dashboard shows; only inside the app shell. */
export function useWorkspace(): WorkspaceContextValue {
  const value = useContext(WorkspaceContext);
  if (!value) throw new Error('useWorkspace is used outside the app shell: render it inside <WorkspaceContext.Provider>');
  return value;
}
