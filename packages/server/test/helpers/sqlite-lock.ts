import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';

export interface HeldLock {
  child: ChildProcess;
  /** Resolves when the holder committed and exited. */
  released: Promise<unknown>;
}

/**
 * Take SQLite's write lock on `path` in another process (`BEGIN EXCLUSIVE`, as any other writer or a
 * long write transaction would) and release it after `holdMs`. Resolves once the lock is held.
 */
export async function holdSqliteWriteLock(path: string, holdMs: number): Promise<HeldLock> {
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1]);
    db.exec('BEGIN EXCLUSIVE');
    process.stdout.write('locked');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, Number(process.argv[2]));
  `;
  const child = spawn(process.execPath, ['-e', script, path, String(holdMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const released = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the lock holder exited with code ${code} before taking the lock on ${path}`)));
  });
  return { child, released };
}
