import { connect } from 'node:net';
import { join } from 'node:path';
import { newestVersion, sqliteMigrations } from '@tokenwise/storage';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { anthropicCall, startTestServer, type TestServer } from './helpers/test-server.js';

let upstream: FakeProvider;
let running: TestServer | undefined;

beforeAll(async () => {
  upstream = await startFakeProvider();
});

afterAll(async () => {
  await upstream.close();
});

afterEach(async () => {
  await running?.dispose();
  running = undefined;
});

describe('serve --role proxy', () => {
  it('proxies and stores calls', async () => {
    running = await startTestServer({ role: 'proxy', upstreams: { anthropic: upstream.url } });

    const response = await anthropicCall(running.server.url, running.server.routeToken);
    await response.arrayBuffer();

    expect(response.status).toBe(200);
    await vi.waitFor(() => expect(running!.server.stats().sink.stored).toBe(1));
  });

  it('answers the API with a 404 naming the role', async () => {
    running = await startTestServer({ role: 'proxy' });

    const response = await running.api('/api/v1/calls');

    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('not_found');
    expect(body.error.message).toContain('nothing at /api/v1/calls on this server: it runs with --role proxy');
  });

  it('answers both probes', async () => {
    running = await startTestServer({ role: 'proxy' });

    expect((await fetch(`${running.server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${running.server.url}/readyz`)).status).toBe(200);
  });
});

describe('serve --role app', () => {
  it('serves the API', async () => {
    running = await startTestServer({ role: 'app' });

    const response = await running.api('/api/v1/calls');

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ calls: [], next_cursor: null, search: null });
  });

  it('answers proxy traffic with a 404 naming the role', async () => {
    running = await startTestServer({ role: 'app', upstreams: { anthropic: upstream.url } });
    const before = upstream.requests().length;

    const response = await anthropicCall(running.server.url, running.server.routeToken);

    expect(response.status).toBe(404);
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toContain('it runs with --role app and serves no proxy traffic');
    expect(body.error.message).not.toContain(running.server.routeToken);
    expect(upstream.requests()).toHaveLength(before);
  });

  it('refuses a WebSocket upgrade under /r/', async () => {
    running = await startTestServer({ role: 'app', upstreams: { openai: upstream.url } });
    const url = `${running.server.url.replace('http', 'ws')}/r/${running.server.routeToken}/openai/v1/responses`;

    const status = await new Promise<number | undefined>((resolve) => {
      const socket = new WebSocket(url);
      socket.on('unexpected-response', (_request, response) => {
        resolve(response.statusCode);
        socket.terminate();
      });
      socket.on('open', () => {
        resolve(101);
        socket.close();
      });
      socket.on('error', () => resolve(undefined));
    });

    expect(status).toBe(404);
  });
});

describe('readyz', () => {
  it('reports ready with a current schema', async () => {
    running = await startTestServer();

    const response = await fetch(`${running.server.url}/readyz`);

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
  });

  it('reports not ready once a newer version migrates the database', async () => {
    running = await startTestServer();
    const db = new Database(join(running.dataDir, 'tokenwise.db'));
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'next', '2030-01-01')").run();
    db.close();

    const ready = await fetch(`${running.server.url}/readyz`);
    const healthy = await fetch(`${running.server.url}/healthz`);

    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({
      status: 'not_ready',
      message: 'the store is unreachable or its schema changed; details are in the server log',
    });
    expect(healthy.status).toBe(200);
    expect(running.logs.text()).toContain(`is at schema version 99, but this Tokenwise runs version ${newestVersion(sqliteMigrations)}`);
  });
});

describe('serve start-up', () => {
  it('refuses a SQLite database newer than the code', async () => {
    running = await startTestServer();
    const dataDir = running.dataDir;
    await running.server.close();
    const db = new Database(join(dataDir, 'tokenwise.db'));
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', '2030-01-01')").run();
    db.close();

    await expect(startTestServer({ dataDir })).rejects.toThrow(
      `schema version 99 is newer than this Tokenwise supports (${newestVersion(sqliteMigrations)})`,
    );
  });

  it('logs the role and the database on start', async () => {
    running = await startTestServer({ role: 'proxy' });

    const started = running.logs.lines().find((line) => line.msg === 'server started') as Record<string, unknown> | undefined;

    expect(started?.role).toBe('proxy');
    expect(started?.database).toBe(join(running.dataDir, 'tokenwise.db'));
    expect(running.server.database).toBe(join(running.dataDir, 'tokenwise.db'));
  });
});

describe('serve absolute-form target', () => {
  it('returns 400 without quoting the token', async () => {
    running = await startTestServer({ upstreams: { anthropic: upstream.url } });
    const { host, port } = new URL(running.server.url);
    const token = running.server.routeToken;
    const before = upstream.requests().length;

    const raw = await sendRawRequest(
      Number(port),
      `POST http://${host}/r/${token}/anthropic/v1/messages HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`,
    );

    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw).toContain('absolute-form');
    expect(raw).not.toContain(token);
    expect(upstream.requests()).toHaveLength(before);
  });
});

function sendRawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(request));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });
}
