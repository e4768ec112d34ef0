import { randomUUID } from 'node:crypto';
import { FAKE_TOOL_OUTPUT, type RecordedRequest, type Sandbox, type SandboxFakeProvider, startSandbox } from '@tokenwise/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectClientPrintedAnswer, expectForwardedUnchanged, expectModelCallRecord } from './support/assertions.js';
import { CLIENT_TIMEOUT_MS, CLIENTS, describeWithClients, installedVersion } from './support/environment.js';
import { bodyJson, modelExchanges, recordFor, runThroughProxy, type ScenarioRun } from './support/scenario.js';

// Fake credentials only; each has the shape of the real kind so the client and the capture treat it as such.
const API_KEY = 'sk-ant-api03-FAKE-e2e-api-key-000000000000000000000000000000000000000000';
const AUTH_TOKEN = 'FAKE-e2e-gateway-bearer-0000000000000000';
const OAUTH_TOKEN = 'sk-ant-oat01-FAKE-e2e-oauth-token-00000000000000000000000000000000000000';

describeWithClients('claude -p through the proxy', ['claude'], () => {
  let sandbox: Sandbox;
  let fake: SandboxFakeProvider;

  beforeAll(async () => {
    sandbox = await startSandbox();
    fake = await sandbox.startFakeProvider();
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  /** Run `claude -p` once with a known session id and the given credential variables. */
  async function runClaude(
    credentials: Record<string, string>,
    extraArgs: string[] = [],
  ): Promise<{ run: ScenarioRun; sessionId: string }> {
    const sessionId = randomUUID();
    const run = await runThroughProxy(sandbox, fake, (baseUrlFor) =>
      sandbox.run(CLIENTS.claude.command, ['-p', 'Say hi.', '--session-id', sessionId, ...extraArgs], {
        env: { ANTHROPIC_BASE_URL: baseUrlFor('anthropic'), ...credentials },
        timeoutMs: CLIENT_TIMEOUT_MS,
      }),
    );
    return { run, sessionId };
  }

  function expectOneMessagesCall(run: ScenarioRun, sessionId: string, basis: 'exact' | 'api_equivalent') {
    const calls = modelExchanges(run);
    expect(calls.map((call) => call.target)).toEqual(['/v1/messages?beta=true']);
    const call = calls[0]!;
    expect(call.headers['x-claude-code-session-id'], 'Claude Code sends the session id it was given').toBe(sessionId);

    expectModelCallRecord(recordFor(run, call), call, {
      family: 'anthropic',
      tool: 'claude-code',
      toolVersion: installedVersion('claude'),
      route: 'anthropic',
      provider: 'anthropic',
      apiShape: 'anthropic.messages',
      sessionId,
      modelRequested: bodyJson(call).model as string,
      basis,
      streamRequested: true,
      stopReason: 'end_turn',
    });
    return call;
  }

  it('records a call made with an API key', async () => {
    const { run, sessionId } = await runClaude({ ANTHROPIC_API_KEY: API_KEY });

    expectClientPrintedAnswer(run);
    expectForwardedUnchanged(run);
    const call = expectOneMessagesCall(run, sessionId, 'exact');
    expect(call.headers['x-api-key']).toBe(API_KEY);
    expect(call.headers.authorization).toBeUndefined();
    expect(run.proxyAttempts, 'no traffic around the base URL with nonessential traffic disabled').toEqual([]);
  });

  it('records a call made with ANTHROPIC_AUTH_TOKEN', async () => {
    const { run, sessionId } = await runClaude({ ANTHROPIC_AUTH_TOKEN: AUTH_TOKEN });

    expectClientPrintedAnswer(run);
    expectForwardedUnchanged(run);
    const call = expectOneMessagesCall(run, sessionId, 'exact');
    expect(call.headers.authorization).toBe(`Bearer ${AUTH_TOKEN}`);
    expect(call.headers['x-api-key']).toBeUndefined();
  });

  it('records an OAuth call as API-equivalent cost', async () => {
    const { run, sessionId } = await runClaude({ CLAUDE_CODE_OAUTH_TOKEN: OAUTH_TOKEN });

    expectClientPrintedAnswer(run);
    // The bearer and the anthropic-beta list must arrive byte-identical for subscription billing to work.
    expectForwardedUnchanged(run);
    const call = expectOneMessagesCall(run, sessionId, 'api_equivalent');
    expect(call.headers.authorization).toBe(`Bearer ${OAUTH_TOKEN}`);
    expect(call.headers['x-api-key']).toBeUndefined();
    expect(call.headers['anthropic-beta']?.split(',')).toContain('oauth-2025-04-20');
  });

  it('records both calls of a tool round trip', async () => {
    await fake.configure({ toolCallFirst: true });
    try {
      // The fake answers the first call with a Bash tool call (echo); Claude runs it and calls again with the result.
      const { run, sessionId } = await runClaude({ ANTHROPIC_API_KEY: API_KEY }, ['--allowedTools', 'Bash(echo:*)']);

      expectClientPrintedAnswer(run);
      expectForwardedUnchanged(run);
      const calls = modelExchanges(run);
      expect(calls.map((call) => call.answer.kind)).toEqual(['tool_call', 'text']);
      const [toolCall, answer] = calls as [RecordedRequest, RecordedRequest];
      const lastMessage = (bodyJson(answer).messages as { content: unknown }[]).at(-1);
      expect(JSON.stringify(lastMessage?.content), 'the second call carries the tool output').toContain(FAKE_TOOL_OUTPUT);

      for (const call of calls) {
        expect(call.headers['x-claude-code-session-id'], 'both calls belong to one session').toBe(sessionId);
        expectModelCallRecord(recordFor(run, call), call, {
          family: 'anthropic',
          tool: 'claude-code',
          toolVersion: installedVersion('claude'),
          route: 'anthropic',
          provider: 'anthropic',
          apiShape: 'anthropic.messages',
          sessionId,
          modelRequested: bodyJson(call).model as string,
          basis: 'exact',
          streamRequested: true,
          stopReason: call === toolCall ? 'tool_use' : 'end_turn',
        });
      }
    } finally {
      await fake.configure({ toolCallFirst: false });
    }
  });
});
