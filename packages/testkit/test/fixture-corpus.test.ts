import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixtureCorpusDirs, fixturesRoot, loadAllWireFixtures, loadWireFixture } from '../src/fixtures.js';
import { startReplayUpstream } from '../src/replay-upstream.js';

const repositoryRoot = path.resolve(fixturesRoot(), '../../..');
const copyDir = path.join(fixturesRoot(), 'llm-wire');
/** Where the corpus this copy was taken from is checked out, if it is (it is not in a plain clone). */
const sourceDir = process.env.TOKENWISE_LLM_WIRE_SOURCE ?? path.resolve(repositoryRoot, '../shared/fixtures/llm-wire');

describe.each(fixtureCorpusDirs().map((dir) => [path.basename(dir), dir] as const))('corpus %s', (_name, dir) => {
  it('passes the corpus validator', () => {
    // A corpus may ship its own validator (for fields of its own); otherwise the llm-wire one applies.
    const validator = existsSync(path.join(dir, 'validate.mjs')) ? path.join(dir, 'validate.mjs') : path.join(copyDir, 'validate.mjs');
    const run = spawnSync(process.execPath, [validator, dir], { encoding: 'utf8' });
    const lastLine = run.stdout.trim().split('\n').at(-1) ?? '';
    expect(run.status, run.stdout).toBe(0);
    expect(lastLine).toMatch(/^\d+ passed, 0 failed$/);
  });
});

it('loads every case with a route', () => {
  const fixtures = loadAllWireFixtures();
  expect(fixtures.length).toBeGreaterThan(0);
  for (const fixture of fixtures) {
    expect(fixture.route, fixture.name).toMatch(/^[a-z0-9-]+$/);
    expect(fixture.routeRest.startsWith('/'), fixture.name).toBe(true);
    expect(fixture.responseBody.length, fixture.name).toBe(fixture.responseMeta.body_bytes);
  }
});

it.skipIf(!existsSync(sourceDir))('keeps the llm-wire copy byte-identical', () => {
  const copied = listFiles(copyDir);
  expect(copied).toEqual(listFiles(sourceDir));
  for (const file of copied) {
    expect(readFileSync(path.join(copyDir, file)).equals(readFileSync(path.join(sourceDir, file))), file).toBe(true);
  }
});

describe('replay upstream', () => {
  const truncated = loadWireFixture(path.join(copyDir, 'transport-truncated-anthropic'));

  it('replays a case and records the request', async () => {
    const upstream = await startReplayUpstream({ fixture: truncated, timeScale: 0.01 });
    try {
      const response = await fetchRaw(upstream.url, '/v1/messages?beta=true', '{"stream":true}');
      expect(response.status).toBe(truncated.responseMeta.status);
      expect(response.headers['request-id']).toBe(truncated.responseMeta.headers['request-id']);
      expect(response.body.equals(Buffer.from(truncated.responseBody))).toBe(true);
      expect(response.complete).toBe(false);

      const [request] = upstream.requests();
      expect(request?.method).toBe('POST');
      expect(request?.target).toBe('/v1/messages?beta=true');
      expect(Buffer.from(request?.body ?? []).toString()).toBe('{"stream":true}');
    } finally {
      await upstream.close();
    }
  });

  it('returns 404 without a matching case', async () => {
    const upstream = await startReplayUpstream({ fixture: () => undefined });
    try {
      const response = await fetchRaw(upstream.url, '/v1/unknown', '');
      expect(response.status).toBe(404);
      expect(response.complete).toBe(true);
    } finally {
      await upstream.close();
    }
  });

  it('rejects a time scale of zero', async () => {
    await expect(startReplayUpstream({ fixture: truncated, timeScale: 0 })).rejects.toThrow(/invalid timeScale 0/);
  });
});

/** List every file below `dir`, dotfiles included, as sorted relative paths. */
function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

function fetchRaw(origin: string, target: string, body: string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; complete: boolean }>((resolve, reject) => {
    const req = httpRequest(`${origin}${target}`, { method: 'POST', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => {});
      res.once('close', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }),
      );
    });
    req.once('error', reject);
    req.end(body);
  });
}
