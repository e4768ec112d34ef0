import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ConnectHome, createConnectHome, startLocalServer } from './helpers/connect-home.js';

/** The layout of JSON settings files after connect: rewritten whole only when the file has no layout to keep. */

let local: Awaited<ReturnType<typeof startLocalServer>>;
let home: ConnectHome;

beforeAll(async () => {
  local = await startLocalServer();
});
afterAll(async () => {
  await local?.close();
});
beforeEach(async () => {
  home = await createConnectHome(local.dataDir);
});
afterEach(async () => {
  await home.remove();
});

function routeUrl(route: string): string {
  return `${local.server.url}/r/${local.server.routeToken}/${route}`;
}

describe('connect JSON layout', () => {
  it('writes an empty object as indented JSON', async () => {
    await home.write('.claude/settings.json', '{}');
    expect((await home.tokenwise(['connect', '--only', 'claude-code', '--yes'])).code).toBe(0);

    expect(await home.read('.claude/settings.json')).toBe(`{\n  "env": {\n    "ANTHROPIC_BASE_URL": "${routeUrl('anthropic')}"\n  }\n}\n`);
  });

  it('writes a one-line object as indented JSON', async () => {
    await home.write('.gemini/settings.json', '{ "theme": "dark" }');
    expect((await home.tokenwise(['connect', '--only', 'gemini-cli', '--yes'])).code).toBe(0);

    const text = await home.read('.gemini/settings.json');
    expect(text).toBe(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    expect(JSON.parse(text).theme).toBe('dark');
  });

  it('keeps the indentation of a multi-line file', async () => {
    await home.write('.claude/settings.json', '{\n    "model": "opus"\n}\n');
    expect((await home.tokenwise(['connect', '--only', 'claude-code', '--yes'])).code).toBe(0);

    expect(await home.read('.claude/settings.json')).toBe(
      `{\n    "model": "opus",\n    "env": {\n        "ANTHROPIC_BASE_URL": "${routeUrl('anthropic')}"\n    }\n}\n`,
    );
  });
});
