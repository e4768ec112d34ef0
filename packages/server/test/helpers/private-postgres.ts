import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A PostgreSQL cluster of the test's own, in a temporary directory on a spare port, so a test may stop
 * and start it without touching the shared server other tests use.
 */
export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`, trust authentication. */
  url: string;
  port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stop the cluster and delete its directory. */
  destroy(): Promise<void>;
}

/** Why no private cluster can be started here, or null when one can. */
export function privatePostgresUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'a private PostgreSQL cluster needs root, to run initdb and pg_ctl as the postgres user';
  if (binDir() === null) return 'no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (install postgresql)';
  return null;
}

/**
 * Create and start a cluster with `initdb` and `pg_ctl`, run as the `postgres` user: listening on
 * 127.0.0.1 only, its socket in its own directory, fsync off (a crash of the test machine loses only
 * test data).
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  if (bin === null) throw new Error(privatePostgresUnavailable() ?? 'no PostgreSQL binaries');
  const { uid, gid } = await postgresUser();

  // Under /tmp rather than the test's temporary root, which the postgres user may not be able to enter.
  const dir = await mkdtemp('/tmp/tokenwise-private-pg-');
  await chown(dir, uid, gid);
  const dataDir = join(dir, 'data');
  const asPostgres = (command: string, args: string[]) =>
    run(join(bin, command), args, { uid, gid, cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } });

  await asPostgres('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;

  const start = async () => {
    await asPostgres('pg_ctl', ['-D', dataDir, '-o', options, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  };
  const stop = async () => {
    // Fast shutdown ends every session at once, as a restart by the operator does.
    await asPostgres('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
  };
  await start();

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    async destroy() {
      if (existsSync(join(dataDir, 'postmaster.pid'))) await stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function binDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(root, version, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return null;
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Return a port on 127.0.0.1 that nothing listens on now (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port was bound');
  return address.port;
}
