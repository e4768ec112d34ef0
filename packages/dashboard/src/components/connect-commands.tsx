import { useQuery } from '@tanstack/react-query';
import { ApiError, api } from '../api/client.js';
import type { ConnectInfo } from '../api/types.js';
import { CopyLine } from './common.js';

/**
 * The connect one-liners for this server. The server's `/api/v1/connect` knows its public URL; without that
 * route the commands are built from this page's address, where the server serves the same scripts.
 */
export function useConnectCommands() {
  const connect = useQuery({
    queryKey: ['connect'],
    queryFn: async () => {
      try {
        return await api<ConnectInfo>('/connect');
      } catch (error) {
        if (error instanceof ApiError && error.notAvailable) return null;
        throw error;
      }
    },
  });
  const origin = connect.data?.server_url ?? window.location.origin;
  return {
    origin,
    sh: connect.data?.commands.sh ?? `curl -fsSL ${origin}/connect.sh | bash`,
    powershell: connect.data?.commands.powershell ?? `iwr -useb ${origin}/connect.ps1 | iex`,
  };
}

export function ConnectCommands() {
  const commands = useConnectCommands();
  return (
    <div className="stack" style={{ gap: 8 }}>
      <div>
        <div className="small muted">macOS, Linux, WSL</div>
        <CopyLine text={commands.sh} label="Connect command for macOS, Linux and WSL" />
      </div>
      <div>
        <div className="small muted">Windows PowerShell</div>
        <CopyLine text={commands.powershell} label="Connect command for Windows PowerShell" />
      </div>
    </div>
  );
}
