import { CopyLine } from './common.js';
import { useConnectCommands } from './connect-commands.js';

/** What a workspace without calls shows: the commands that connect a first tool to this server. */
export function EmptyState() {
  const { sh, powershell } = useConnectCommands();

  return (
    <section className="panel empty" aria-labelledby="empty-title">
      <h2 id="empty-title">No calls yet: connect your first AI tool</h2>
      <p>
        Tokenwise records each call that Claude Code, Codex, Gemini CLI or an SDK sends through it. Run one command on the machine where you
        use the tool:
      </p>
      <div className="stack" style={{ gap: 8 }}>
        <div>
          <p className="small muted" style={{ margin: '0 0 4px' }}>
            macOS, Linux or WSL:
          </p>
          <CopyLine text={sh} label="Connect command for macOS, Linux and WSL" />
        </div>
        <div>
          <p className="small muted" style={{ margin: '0 0 4px' }}>
            Windows PowerShell:
          </p>
          <CopyLine text={powershell} label="Connect command for Windows PowerShell" />
        </div>
      </div>
      <p>
        The command finds your tools, shows each change as a diff and asks first. On another machine it opens this server's pairing page,
        where you pick this workspace. Then use your tool as usual: its calls appear here within seconds.
      </p>
      <p className="muted small">
        Undo with <code>{sh.replace('connect.sh', 'disconnect.sh')}</code>. The commands need Node.js 20 or later.
      </p>
    </section>
  );
}
