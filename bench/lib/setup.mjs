// Tools the harness needs outside the Tokenwise workspace: nginx and wrk from Debian, and the Portkey
// gateway from npm in bench/portkey with its own lockfile. Each is installed when missing.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { portkeyDir } from './candidates.mjs';

function has(command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Install nginx and wrk with apt-get when missing (root only); returns the commands still missing. */
export function ensureDebianTools(log) {
  const missing = ['nginx', 'wrk'].filter((command) => !has(command));
  if (missing.length === 0) return [];
  if (process.getuid?.() !== 0 || !has('apt-get')) {
    log(`missing ${missing.join(', ')} and cannot install them here: run "apt-get install -y ${missing.join(' ')}" as root`);
    return missing;
  }
  log(`installing ${missing.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'ignore', env });
  return missing.filter((command) => !has(command));
}

/** Install the Portkey gateway from bench/portkey/package-lock.json when it is not there; returns true when it is usable. */
export function ensurePortkey(log) {
  const entry = path.join(portkeyDir, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
  if (existsSync(entry)) return true;
  log('installing the Portkey gateway into bench/portkey (npm ci)');
  try {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: portkeyDir, stdio: 'ignore' });
  } catch (error) {
    log(`installing the Portkey gateway failed (${error.message}); it is left out of this run`);
    return false;
  }
  return existsSync(entry);
}
