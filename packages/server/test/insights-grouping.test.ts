import { FAKE_CREDENTIALS, type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type PairedDevice, type Person, pairDevice, setUpOwner } from './helpers/accounts.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

/**
 * Claude Code sends its agent requests and its short utility requests (the session title) with the same
 * opening line, the second ones without tools. It also varies a tool definition between calls of one
 * release. Neither is a new prompt version, and neither may raise a version change insight.
 */

const CLIENT_VERSION = '2.1.197';
const IDENTITY = "You are a Claude agent, built on Anthropic's Claude Agent SDK.";

let provider: FakeProvider;
let running: TestServer;
let ada: Person;
let laptop: PairedDevice;

function agentBody(bashDescription: string) {
  return {
    model: 'claude-sonnet-4-5',
    max_tokens: 32_000,
    system: [
      { type: 'text', text: `x-anthropic-billing-header: cc_version=${CLIENT_VERSION}.a1b; cc_entrypoint=sdk-cli;` },
      { type: 'text', text: `${IDENTITY}\n\nYou are an interactive CLI tool that helps users with software engineering tasks.` },
    ],
    tools: [
      { name: 'Bash', description: bashDescription, input_schema: { type: 'object' } },
      { name: 'Read', description: 'Read a file.', input_schema: { type: 'object' } },
    ],
    messages: [{ role: 'user', content: 'fix the build' }],
  };
}

function titleBody() {
  return {
    model: 'claude-haiku-4-5',
    max_tokens: 512,
    system: [
      { type: 'text', text: `x-anthropic-billing-header: cc_version=${CLIENT_VERSION}.a1b; cc_entrypoint=sdk-cli;` },
      { type: 'text', text: `${IDENTITY}\n\nGenerate a short title for this conversation. Answer with the title only.` },
    ],
    messages: [{ role: 'user', content: 'fix the build' }],
  };
}

async function send(body: unknown): Promise<void> {
  const response = await fetch(`${running.server.url}/r/${laptop.token}/anthropic/v1/messages?beta=true`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': FAKE_CREDENTIALS.anthropicApiKey,
      'anthropic-version': '2023-06-01',
      'user-agent': `claude-cli/${CLIENT_VERSION} (external, sdk-cli)`,
      'x-claude-code-session-id': 'session-1',
    },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  expect(response.status).toBe(200);
}

interface GroupJson {
  id: string;
  kind: string;
  name: string;
  calls: number;
  versions: number;
}

async function apiJson<T>(path: string): Promise<T> {
  return (await (await ada.browser.api('GET', path)).json()) as T;
}

describe('prompt groups of one Claude Code release', () => {
  beforeAll(async () => {
    provider = await startFakeProvider();
    running = await startTestServer({ upstreams: { anthropic: provider.url }, insightsIntervalMs: 3_600_000 });
    ada = await setUpOwner(running.server);
    laptop = await pairDevice(running.server, ada, 'ada-laptop');

    // The title request comes between agent requests whose Bash definition alternates, as one session sends them.
    await send(agentBody('Run a shell command.'));
    await send(titleBody());
    await send(agentBody('Run a shell command. Timeout: 120000 ms.'));
    await send(agentBody('Run a shell command.'));
    await send(titleBody());
    await send(agentBody('Run a shell command. Timeout: 120000 ms.'));
    await vi.waitFor(async () => {
      const { calls } = (await (await running.api('/api/v1/calls?limit=100')).json()) as { calls: unknown[] };
      expect(calls).toHaveLength(6);
    });
    await running.server.runInsights();
  });

  afterAll(async () => {
    await running?.dispose();
    await provider?.close();
  });

  it('puts the title request in its own group', async () => {
    const { groups } = await apiJson<{ groups: GroupJson[] }>('/api/v1/prompts');
    const templates = groups.filter((group) => group.kind === 'template').sort((a, b) => a.name.localeCompare(b.name));

    expect(templates.map((group) => [group.name, group.calls])).toEqual([
      [`claude-code: ${IDENTITY}`, 4],
      [`claude-code: ${IDENTITY} (no tools)`, 2],
    ]);
  });

  it('keeps alternating versions of one release', async () => {
    const { groups } = await apiJson<{ groups: GroupJson[] }>('/api/v1/prompts');
    const agent = groups.find((group) => group.name === `claude-code: ${IDENTITY}`)!;

    expect(agent.versions).toBe(2);
  });

  it('raises no version change insight', async () => {
    const { insights } = await apiJson<{ insights: { kind: string; summary: string }[] }>('/api/v1/insights');

    expect(insights.filter((insight) => insight.kind === 'version_change')).toEqual([]);
  });
});
