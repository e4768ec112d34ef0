import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import type { ShellKind } from './profile-block.js';

/** The person's home directory: HOME (USERPROFILE on Windows) from the command's environment, else the OS's. */
export function homeOf(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string {
  const fromEnv = platform === 'win32' ? (env.USERPROFILE ?? env.HOME) : env.HOME;
  return fromEnv && fromEnv !== '' ? fromEnv : homedir();
}

/** `$XDG_CONFIG_HOME`, else `~/.config`. */
export function configHome(home: string, env: NodeJS.ProcessEnv): string {
  return env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(home, '.config');
}

/** Full path of an executable found on PATH (with PATHEXT on Windows), or null. */
export async function findExecutable(name: string, env: NodeJS.ProcessEnv, platform: NodeJS.Platform): Promise<string | null> {
  const dirs = (env.PATH ?? env.Path ?? '').split(platform === 'win32' ? ';' : delimiter).filter((dir) => dir !== '');
  const extensions = platform === 'win32' ? (env.PATHEXT ?? '.COM;.EXE;.BAT;.CMD').split(';') : [''];
  for (const dir of dirs) {
    for (const extension of extensions) {
      const candidate = join(dir, `${name}${extension}`);
      if (await isExecutableFile(candidate, platform)) return candidate;
    }
  }
  return null;
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export interface ShellProfile {
  path: string;
  shell: ShellKind;
  /** Shell name for messages: bash, zsh, fish, PowerShell. */
  label: string;
}

/**
 * The profiles that get the marked block of environment variables: each shell the person uses, judged by
 * its profile file or config directory existing or by it being the login shell (`$SHELL`). With no sign
 * of any shell, the platform's default one: zsh on macOS, bash elsewhere, PowerShell on Windows.
 *
 * bash reads `~/.bashrc` in interactive shells on Linux, but macOS terminals start login shells, which read
 * `~/.bash_profile`. zsh reads `$ZDOTDIR/.zshrc`. fish gets its own file in `conf.d`, which it reads on
 * every start. PowerShell gets the current user's all-hosts profile (`profile.ps1`), which every host
 * (the console, VS Code) reads; Windows PowerShell 5.1 and PowerShell 7 keep it in different folders.
 */
export async function findShellProfiles(home: string, env: NodeJS.ProcessEnv, platform: NodeJS.Platform): Promise<ShellProfile[]> {
  const loginShell = basename(env.SHELL ?? '').replace(/\.exe$/, '');
  const config = configHome(home, env);
  const candidates: Array<{ profile: ShellProfile; signs: string[]; usedBy: string }> = [
    {
      profile: { path: join(home, platform === 'darwin' ? '.bash_profile' : '.bashrc'), shell: 'posix', label: 'bash' },
      signs: [join(home, platform === 'darwin' ? '.bash_profile' : '.bashrc')],
      usedBy: 'bash',
    },
    {
      profile: { path: join(env.ZDOTDIR || home, '.zshrc'), shell: 'posix', label: 'zsh' },
      signs: [join(env.ZDOTDIR || home, '.zshrc')],
      usedBy: 'zsh',
    },
    {
      profile: { path: join(config, 'fish', 'conf.d', 'tokenwise.fish'), shell: 'fish', label: 'fish' },
      signs: [join(config, 'fish')],
      usedBy: 'fish',
    },
  ];
  if (platform === 'win32') {
    const documents = join(home, 'Documents');
    candidates.push(
      {
        profile: { path: join(documents, 'WindowsPowerShell', 'profile.ps1'), shell: 'powershell', label: 'Windows PowerShell' },
        signs: [join(documents, 'WindowsPowerShell')],
        usedBy: 'powershell',
      },
      {
        profile: { path: join(documents, 'PowerShell', 'profile.ps1'), shell: 'powershell', label: 'PowerShell' },
        signs: [join(documents, 'PowerShell')],
        usedBy: 'pwsh',
      },
    );
  } else {
    candidates.push({
      profile: { path: join(config, 'powershell', 'profile.ps1'), shell: 'powershell', label: 'PowerShell' },
      signs: [join(config, 'powershell')],
      usedBy: 'pwsh',
    });
  }

  const found: ShellProfile[] = [];
  for (const candidate of candidates) {
    const signs = await Promise.all(candidate.signs.map(pathExists));
    if (signs.some(Boolean) || loginShell === candidate.usedBy) found.push(candidate.profile);
  }
  if (found.length > 0) return found;

  // NOTE: Windows may redirect Documents (to OneDrive, for one); PowerShell's $PROFILE would name the right folder.
  const fallback = platform === 'win32' ? 'Windows PowerShell' : platform === 'darwin' ? 'zsh' : 'bash';
  return candidates.filter((candidate) => candidate.profile.label === fallback).map((candidate) => candidate.profile);
}

async function isExecutableFile(path: string, platform: NodeJS.Platform): Promise<boolean> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return false;
    if (platform !== 'win32') await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
