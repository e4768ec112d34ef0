import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { PassThrough } from 'node:stream';
import { type RunningServer, resolveServeConfig, serve } from '@tokenwise/server';
import { run } from 'tokenwise';

/** A scratch HOME and data directory, with `tokenwise` run in-process against them. */
export interface ConnectHome {
  home: string;
  dataDir: string;
  /** The environment every run gets: this HOME, no executables on PATH, bash as the login shell. */
  env: NodeJS.ProcessEnv;
  path(relativePath: string): string;
  write(relativePath: string, content: string): Promise<string>;
  read(relativePath: string): Promise<string>;
  /** Every file under HOME with its bytes, for byte-for-byte comparisons. */
  tree(): Promise<Record<string, string>>;
  tokenwise(
    args: string[],
    options?: { answers?: string[]; env?: NodeJS.ProcessEnv; dataDir?: string },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  remove(): Promise<void>;
}

export async function createConnectHome(dataDir: string): Promise<ConnectHome> {
  const root = await mkdtemp(join(tmpdir(), 'tokenwise-connect-'));
  const home = join(root, 'home');
  await mkdir(home);
  const env: NodeJS.ProcessEnv = { HOME: home, PATH: join(root, 'bin'), SHELL: '/bin/bash', NO_COLOR: '1' };
  const path = (relativePath: string) => join(home, relativePath);

  return {
    home,
    dataDir,
    env,
    path,
    async write(relativePath, content) {
      await mkdir(dirname(path(relativePath)), { recursive: true });
      await writeFile(path(relativePath), content);
      return path(relativePath);
    },
    read: (relativePath) => readFile(path(relativePath), 'utf8'),
    tree: () => readTree(home),
    async tokenwise(args, options = {}) {
      let stdout = '';
      let stderr = '';
      const stdin = Object.assign(new PassThrough(), { isTTY: options.answers !== undefined });
      if (options.answers) stdin.end(options.answers.map((answer) => `${answer}\n`).join(''));
      else stdin.end();
      const io = {
        stdout: { write: (text: string) => (stdout += text) },
        stderr: { write: (text: string) => (stderr += text) },
        env: { ...env, ...options.env },
        stdin,
      };
      const code = await run([...args, '--data-dir', options.dataDir ?? dataDir], io);
      return { code, stdout, stderr };
    },
    async remove() {
      // The connect state lives in the shared server's data directory; each test starts without one.
      await rm(join(dataDir, 'connect-state.json'), { force: true });
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A real `tokenwise serve` on 127.0.0.1, port 0, in a scratch data directory. */
export async function startLocalServer(): Promise<{ server: RunningServer; dataDir: string; close(): Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-connect-data-'));
  const server = await serve(resolveServeConfig({ host: '127.0.0.1', port: '0', dataDir, logLevel: 'silent' }, {}));
  return {
    server,
    dataDir,
    async close() {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function readTree(root: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isSymbolicLink()) files[relative(root, full)] = `symlink`;
      else files[relative(root, full)] = (await readFile(full)).toString('base64');
    }
    if ((await readdir(dir)).length === 0) files[`${relative(root, dir)}/`] = 'empty directory';
  };
  await walk(root);
  return files;
}
