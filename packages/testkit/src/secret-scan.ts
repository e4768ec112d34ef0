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
/** The gzip header's first three bytes in base64, as the record spool writes compressed bodies. */
const BASE64_GZIP_MAGIC = Buffer.from('H4sI');

/**
 * Search every file under `root` for every fake credential: as plain bytes, and inside every gzip stream
 * in the file, raw or base64-encoded (the stores keep call bodies gzip-compressed, and the record spool
 * writes them in base64). A compressed stream split over
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
    for (const { offset, inflated } of base64CompressedStreams(bytes)) {
      for (const credential of credentialsIn(inflated)) {
        findings.push({ file, credential, where: `base64 compressed stream at byte ${offset}` });
      }
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

function* base64CompressedStreams(bytes: Buffer): Generator<{ offset: number; inflated: Buffer }> {
  for (let offset = bytes.indexOf(BASE64_GZIP_MAGIC); offset !== -1; offset = bytes.indexOf(BASE64_GZIP_MAGIC, offset + 1)) {
    let end = offset;
    while (end < bytes.length && isBase64Byte(bytes[end]!)) end += 1;
    const decoded = Buffer.from(bytes.subarray(offset, end).toString('latin1'), 'base64');
    for (const stream of compressedStreams(decoded)) yield { offset, inflated: stream.inflated };
  }
}

function isBase64Byte(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) ||
    (byte >= 0x30 && byte <= 0x39) ||
    byte === 0x2b ||
    byte === 0x2f ||
    byte === 0x3d
  );
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
