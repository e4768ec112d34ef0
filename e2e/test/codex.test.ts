import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RecordedRequest, Sandbox, SandboxFakeProvider } from '@tokenwise/testkit';
import { startSandbox } from '@tokenwise/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  expectBypassOnlyTo,
  expectClientPrintedAnswer,
  expectForwardedUnchanged,
  expectModelCallRecord,
  type ModelCallExpectation,
} from './support/assertions.js';
import { CLIENT_TIMEOUT_MS, CLIENTS, describeWithClients, installedVersion } from './support/environment.js';
import { type BaseUrlFor, bodyJson, modelExchanges, recordFor, runThroughProxy, type ScenarioRun } from './support/scenario.js';

const API_KEY = 'sk-proj-FAKE-e2e-openai-key-0000000000000000000000000000000000000000';
const ACCOUNT_ID = 'FAKE-e2e-chatgpt-account-0000';
/**
 * What Codex 0.171.0 contacts directly whatever its base URL: git and the GitHub API, ChatGPT side
 * services and analytics. Model traffic to api.openai.com must not be here; model traffic to chatgpt.com
 * would hide among the side services, so the scenarios also check that every model call arrived.
 */
const CODEX_SIDE_TRAFFIC = ['github.com:443', 'api.github.com:443', 'chatgpt.com:443', 'ab.chatgpt.com:443'];

describeWithClients('codex exec through the proxy', ['codex'], () => {
  let sandbox: Sandbox;
  let fake: SandboxFakeProvider;
  let codexHomes = 0;

  beforeAll(async () => {
    sandbox = await startSandbox();
    fake = await sandbox.startFakeProvider();
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  /**
   * Run `codex exec` once with a fresh CODEX_HOME holding the config (and auth.json) the scenario writes.
   * Returns the run and the session id Codex printed in its banner.
   */
  async function runCodex(
    writeConfig: (codexHome: string, baseUrlFor: BaseUrlFor) => void,
    env: Record<string, string>,
  ): Promise<{ run: ScenarioRun; sessionId: string | undefined }> {
    const codexHome = join(sandbox.scratchDir, `codex-home-${++codexHomes}`);
    mkdirSync(codexHome, { recursive: true });
    const run = await runThroughProxy(sandbox, fake, (baseUrlFor) => {
      writeConfig(codexHome, baseUrlFor);
      return sandbox.run(CLIENTS.codex.command, ['exec', '--skip-git-repo-check', 'Say hi.'], {
        env: { CODEX_HOME: codexHome, ...env },
        timeoutMs: CLIENT_TIMEOUT_MS,
      });
    });
    const sessionId = /^session id: ([0-9a-f-]{36})$/m.exec(run.client.stderr)?.[1];
    return { run, sessionId };
  }

  function expectation(
    call: RecordedRequest,
    sessionId: string | undefined,
    overrides: Partial<ModelCallExpectation>,
  ): ModelCallExpectation {
    expect(sessionId, 'Codex printed its session id').toBeDefined();
    return {
      family: 'openai',
      tool: 'codex',
      toolVersion: installedVersion('codex'),
      route: 'openai',
      provider: 'openai',
      apiShape: 'openai.responses',
      sessionId: sessionId ?? null,
      modelRequested: bodyJson(call).model as string,
      basis: 'exact',
      streamRequested: true,
      stopReason: 'completed',
      ...overrides,
    };
  }

  it('records a custom provider call over SSE', async () => {
    const { run, sessionId } = await runCodex(
      (codexHome, baseUrlFor) =>
        writeFileSync(
          join(codexHome, 'config.toml'),
          [
            'model_provider = "tokenwise"',
            '',
            '[model_providers.tokenwise]',
            'name = "Tokenwise"',
            `base_url = "${baseUrlFor('openai')}/v1"`,
            'env_key = "OPENAI_API_KEY"',
            'wire_api = "responses"',
            '',
          ].join('\n'),
        ),
      { OPENAI_API_KEY: API_KEY },
    );

    expectClientPrintedAnswer(run);
    expectForwardedUnchanged(run);
    expectBypassOnlyTo(run, CODEX_SIDE_TRAFFIC);
    const calls = modelExchanges(run);
    expect(calls.map((call) => `${call.transport} ${call.target}`)).toEqual(['http /v1/responses']);
    const call = calls[0]!;
    expect(call.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(call.headers['session-id']).toBe(sessionId);
    expectModelCallRecord(recordFor(run, call), call, expectation(call, sessionId, {}));
  });

  it('records the built-in provider over a relayed WebSocket', async () => {
    const { run, sessionId } = await runCodex(
      (codexHome, baseUrlFor) => writeFileSync(join(codexHome, 'config.toml'), `openai_base_url = "${baseUrlFor('openai')}/v1"\n`),
      { OPENAI_API_KEY: API_KEY },
    );

    expectClientPrintedAnswer(run);
    expectForwardedUnchanged(run);
    expectBypassOnlyTo(run, CODEX_SIDE_TRAFFIC);
    const upgrades = run.upstream.filter((request) => request.transport === 'websocket-upgrade');
    expect(upgrades.map((upgrade) => `${upgrade.target} ${upgrade.answer.status}`)).toEqual(['/v1/responses 101']);
    expect(upgrades[0]?.headers['openai-beta']).toContain('responses_websockets=');

    // Codex prewarms the connection (`generate: false`), then sends the turn on the same socket.
    const calls = modelExchanges(run);
    expect(calls.map((call) => `${call.transport} ${call.answer.kind}`)).toEqual(['websocket-message prewarm', 'websocket-message text']);
    const [prewarm, turn] = calls as [RecordedRequest, RecordedRequest];

    expectModelCallRecord(recordFor(run, turn), turn, expectation(turn, sessionId, {}));
    const prewarmRecord = recordFor(run, prewarm);
    expect(prewarmRecord, 'the prewarm response is recorded too').toBeDefined();
    expect.soft(prewarmRecord?.response_id).toBe(prewarm.answer.responseId);
    expect.soft(prewarmRecord?.stream_format).toBe('websocket');
    expect.soft(prewarmRecord?.status).toBe('success');
    expect.soft(prewarmRecord?.session_id).toBe(sessionId);
  });

  it('records the SSE fallback after a refused WebSocket', async () => {
    await fake.configure({ websocket: 'reject' });
    try {
      const { run, sessionId } = await runCodex(
        (codexHome, baseUrlFor) => writeFileSync(join(codexHome, 'config.toml'), `openai_base_url = "${baseUrlFor('openai')}/v1"\n`),
        { OPENAI_API_KEY: API_KEY },
      );

      expectClientPrintedAnswer(run);
      expectForwardedUnchanged(run);
      expectBypassOnlyTo(run, CODEX_SIDE_TRAFFIC);
      const upgrades = run.upstream.filter((request) => request.transport === 'websocket-upgrade');
      expect(
        upgrades.map((upgrade) => upgrade.answer.status),
        'the 426 came from the fake provider through the proxy',
      ).toEqual([426]);
      const calls = modelExchanges(run);
      expect(calls.map((call) => `${call.transport} ${call.target}`)).toEqual(['http /v1/responses']);
      const call = calls[0]!;
      expectModelCallRecord(recordFor(run, call), call, expectation(call, sessionId, {}));
    } finally {
      await fake.configure({ websocket: 'accept' });
    }
  });

  it('records a ChatGPT-login call on the chatgpt route', async () => {
    const accessToken = fakeJwt({
      'https://api.openai.com/auth': { chatgpt_account_id: ACCOUNT_ID, chatgpt_plan_type: 'plus', chatgpt_user_id: 'user-FAKE-e2e' },
      email: 'fake-e2e@example.org',
      exp: 4_102_444_800,
    });
    const { run, sessionId } = await runCodex((codexHome, baseUrlFor) => {
      writeFileSync(
        join(codexHome, 'auth.json'),
        JSON.stringify({
          auth_mode: 'chatgpt',
          OPENAI_API_KEY: null,
          tokens: { id_token: accessToken, access_token: accessToken, refresh_token: 'FAKE-e2e-refresh-token', account_id: ACCOUNT_ID },
          last_refresh: new Date().toISOString(),
        }),
      );
      writeFileSync(
        join(codexHome, 'config.toml'),
        [
          'model_provider = "tokenwise-chatgpt"',
          '',
          '[model_providers.tokenwise-chatgpt]',
          'name = "Tokenwise (ChatGPT)"',
          `base_url = "${baseUrlFor('chatgpt')}"`,
          'requires_openai_auth = true',
          'supports_websockets = false',
          'wire_api = "responses"',
          '',
        ].join('\n'),
      );
    }, {});

    expectClientPrintedAnswer(run);
    expectForwardedUnchanged(run);
    expectBypassOnlyTo(run, CODEX_SIDE_TRAFFIC);
    const calls = modelExchanges(run);
    expect(calls.map((call) => `${call.transport} ${call.target}`)).toEqual(['http /backend-api/codex/responses']);
    const call = calls[0]!;
    expect(call.headers.authorization).toBe(`Bearer ${accessToken}`);
    expect(call.headers['chatgpt-account-id'], 'the account id arrives upstream untouched').toBe(ACCOUNT_ID);
    expectModelCallRecord(recordFor(run, call), call, expectation(call, sessionId, { route: 'chatgpt', basis: 'api_equivalent' }));
  });
});

/**
 * Build a JWT with `alg: none` and a fake signature. Codex 0.171.0 reads the claims without verifying the
 * signature, but rejects auth.json when the signature segment is empty.
 */
function fakeJwt(claims: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(claims)}.${Buffer.from('FAKE-signature').toString('base64url')}`;
}
