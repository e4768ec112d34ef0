import { open, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { constants, inflateRawSync } from 'node:zlib';
import { FAKE_CREDENTIALS, type FakeCredentialName } from './fake-credentials.js';

export interface SecretFinding {
  /** Path relative to the scanned root. */
  file: string;
  credential: FakeCredentialName;
  /** `plain bytes`, or the compressed stream it was found in. */
  where: string;
}

/** Files larger than this are scanned in their first part only, in bytes. */
const MAX_SCANNED_BYTES = 512 * 1024 * 1024;
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);

/**
 * Search every file under `root` for every fake credential: as plain bytes, and inside every gzip stream
 * in the file (the stores keep call bodies gzip-compressed). A compressed stream split over
 * SQLite overflow pages is read up to the split only.
 * NOTE: so a credential deep in a long stored body escapes this scan. Logs and spool files are plain
 * text and are read whole.
 */
export async function scanForFakeCredentials(root: string): Promise<SecretFinding[]> {
  const findings: SecretFinding[] = [];
  for (const path of await listFiles(root)) {
    const bytes = await readHead(path, MAX_SCANNED_BYTES);
    const file = relative(root, path);
    for (const credential of credentialsIn(bytes)) findings.push({ file, credential, where: 'plain bytes' });
    for (const { offset, inflated } of compressedStreams(bytes)) {
      for (const credential of credentialsIn(inflated)) findings.push({ file, credential, where: `compressed stream at byte ${offset}` });
    }
  }
  return findings;
}

function credentialsIn(bytes: Buffer): FakeCredentialName[] {
  return (Object.entries(FAKE_CREDENTIALS) as [FakeCredentialName, string][])
    .filter(([, credential]) => bytes.includes(credential))
    .map(([name]) => name);
}

function* compressedStreams(bytes: Buffer): Generator<{ offset: number; inflated: Buffer }> {
  for (let offset = bytes.indexOf(GZIP_MAGIC); offset !== -1; offset = bytes.indexOf(GZIP_MAGIC, offset + 1)) {
    try {
      // Node writes a 10-byte gzip header without a file name; the raw deflate data follows it.
      yield { offset, inflated: inflateRawSync(bytes.subarray(offset + 10), { finishFlush: constants.Z_SYNC_FLUSH }) };
    } catch {
      // Not a gzip stream after all: three bytes that happen to look like its header.
    }
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(path)));
    else if (entry.isFile()) files.push(path);
  }
  return files;
}

async function readHead(path: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(Math.min(size, maxBytes));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
