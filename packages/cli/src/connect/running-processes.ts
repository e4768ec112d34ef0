import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** How long listing the processes may take, in ms. */
const LIST_TIMEOUT_MS = 10_000;

/**
 * Find a running process whose executable has one of `names` (compared without case, so `cursor`
 * matches `Cursor` and `Cursor.exe`), other than this one. Returns its pid, or null when none runs.
 * Linux reads /proc; macOS runs `ps`; Windows runs `tasklist`. Throws when the list cannot be read.
 * NOTE: only the Linux path runs in the tests; the `ps` and `tasklist` parsing follows their documented formats.
 */
export async function findRunningProcess(names: string[], platform: NodeJS.Platform): Promise<number | null> {
  const expected = new Set(names.map((name) => name.toLowerCase()));
  const processes = platform === 'linux' ? await listLinuxProcesses() : await listProcessesWithCommand(platform);
  for (const { pid, names: processNames } of processes) {
    if (pid !== process.pid && processNames.some((name) => expected.has(name.toLowerCase()))) return pid;
  }
  return null;
}

interface ProcessEntry {
  pid: number;
  /** Names the process goes by: its command name, and the file name of its first argument. */
  names: string[];
}

/**
 * The kernel's command name (`comm`, cut to 15 bytes) and the file name in argv[0], which Electron apps
 * launched from an AppImage or a wrapper script may set to another path than the executable's.
 */
async function listLinuxProcesses(): Promise<ProcessEntry[]> {
  const entries: ProcessEntry[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const [comm, cmdline] = await Promise.all([
      readFile(`/proc/${name}/comm`, 'utf8').catch(() => ''),
      readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => ''),
    ]);
    const argv0 = cmdline.split('\0')[0] ?? '';
    const names = [comm.trim(), basename(argv0)].filter((item) => item !== '');
    entries.push({ pid: Number(name), names });
  }
  return entries;
}

async function listProcessesWithCommand(platform: NodeJS.Platform): Promise<ProcessEntry[]> {
  if (platform === 'win32') {
    // CSV rows: "Image Name","PID","Session Name","Session#","Mem Usage".
    const { stdout } = await run('tasklist', ['/FO', 'CSV', '/NH'], { timeout: LIST_TIMEOUT_MS, windowsHide: true });
    return stdout
      .split(/\r?\n/)
      .map((line) => /^"([^"]*)","(\d+)"/.exec(line))
      .filter((match) => match !== null)
      .map((match) => ({ pid: Number(match[2]), names: [match[1]!, match[1]!.replace(/\.exe$/i, '')] }));
  }
  // macOS and the BSDs: the full path of each executable, e.g. /Applications/Cursor.app/Contents/MacOS/Cursor.
  const { stdout } = await run('ps', ['-axo', 'pid=,comm='], { timeout: LIST_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
  return stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.+)$/.exec(line))
    .filter((match) => match !== null)
    .map((match) => ({ pid: Number(match[1]), names: [basename(match[2]!.trim())] }));
}
