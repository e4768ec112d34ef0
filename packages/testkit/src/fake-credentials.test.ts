import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CREDENTIAL_SHAPE, FAKE_CREDENTIALS, fakeCredentialCovering, findFakeCredentials } from './fake-credentials.js';
import { scanForFakeCredentials } from './secret-scan.js';

const REPOSITORY = fileURLToPath(new URL('../../..', import.meta.url));
/** Folders whose TypeScript and JavaScript files are tests or test helpers. */
const TEST_ROOTS = ['packages', 'e2e/test', 'bench/test'];

async function testSources(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name === 'fixtures') continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await testSources(path)));
    else if (/\.(ts|mjs|js)$/.test(entry.name) && (/[\\/]test[\\/]/.test(path) || /\.test\.ts$/.test(entry.name))) found.push(path);
  }
  return found;
}

describe('fake credentials', () => {
  it('cover every credential in the test sources', async () => {
    const uncovered: string[] = [];
    for (const root of TEST_ROOTS) {
      for (const path of await testSources(join(REPOSITORY, root))) {
        const text = await readFile(path, 'utf8');
        for (const [value] of text.matchAll(CREDENTIAL_SHAPE)) {
          if (fakeCredentialCovering(value) === null) uncovered.push(`${relative(REPOSITORY, path)}: ${value}`);
        }
      }
    }
    // Fix: take the credential from FAKE_CREDENTIALS in @tokenwise/testkit, or add it there.
    expect(uncovered).toEqual([]);
  });

  it('are found by the source check', () => {
    // Joined at run time, so the source check above does not read these as credentials of this file.
    const shapes = [
      ['sk-ant-api03', 'FAKE-new-test'],
      ['AIzaSyFAKE', 'x'],
      ['FAKE-other', 'account-1'],
      ['acct', 'FAKE-9'],
    ];
    for (const value of shapes.map((parts) => parts.join('-'))) {
      expect(`"${value}"`.match(CREDENTIAL_SHAPE), value).toEqual([value]);
    }
  });

  it('are each found in text', () => {
    for (const [name, value] of Object.entries(FAKE_CREDENTIALS)) expect(findFakeCredentials(`x ${value} y`), name).toContain(name);
    expect(findFakeCredentials('[REDACTED:anthropic_api_key]')).toEqual([]);
  });
});

describe('secret scan', () => {
  it('finds credentials in plain, gzip and base64 gzip bytes', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tokenwise-scan-'));
    try {
      await writeFile(join(root, 'server.log'), `{"msg":"call","key":"${FAKE_CREDENTIALS.openaiApiKey}"}\n`);
      const body = gzipSync(Buffer.from(`{"prompt":"use ${FAKE_CREDENTIALS.chatgptAccountId}"}`));
      await writeFile(join(root, 'tokenwise.db'), Buffer.concat([Buffer.from('SQLite format 3\0'), body, Buffer.alloc(64)]));
      await writeFile(join(root, 'clean.txt'), 'nothing here');

      const spooled = gzipSync(Buffer.from(`{"prompt":"use ${FAKE_CREDENTIALS.googleApiKey}"}`)).toString('base64');
      await writeFile(join(root, 'segment-000000000001.jsonl'), `{"record":{},"body_row":{"request_body":"${spooled}"}}\n`);

      const findings = await scanForFakeCredentials(root);
      expect(findings).toContainEqual({ file: 'server.log', credential: 'openaiApiKey', where: 'plain bytes' });
      expect(findings).toContainEqual({ file: 'tokenwise.db', credential: 'chatgptAccountId', where: 'compressed stream at byte 16' });
      expect(findings).toContainEqual({
        file: 'segment-000000000001.jsonl',
        credential: 'googleApiKey',
        where: 'base64 compressed stream at byte 41',
      });
      expect(findings.filter((finding) => finding.file === 'clean.txt')).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
