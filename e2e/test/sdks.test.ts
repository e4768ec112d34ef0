import { join } from 'node:path';
import {
  FAKE_ANSWER_TEXT,
  FAKE_USAGE,
  type RecordedRequest,
  type Sandbox,
  type SandboxFakeProvider,
  startSandbox,
} from '@tokenwise/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectForwardedUnchanged, expectModelCallRecord, type ModelCallExpectation } from './support/assertions.js';
import { CLIENT_TIMEOUT_MS, CLIENTS, describeWithClients, E2E_ROOT, installedVersion } from './support/environment.js';
import { bodyJson, modelExchanges, recordFor, runThroughProxy, type ScenarioRun } from './support/scenario.js';

const ANTHROPIC_KEY = 'sk-ant-api03-FAKE-e2e-sdk-key-0000000000000000000000000000000000000000';
const OPENAI_KEY = 'sk-proj-FAKE-e2e-sdk-key-000000000000000000000000000000000000000000';

describeWithClients('official SDKs through the proxy', ['anthropic-sdk', 'openai-sdk'], () => {
  let sandbox: Sandbox;
  let fake: SandboxFakeProvider;

  beforeAll(async () => {
    sandbox = await startSandbox();
    fake = await sandbox.startFakeProvider();
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  /** Run one of the scripts in e2e/scripts (from e2e/, so it resolves the SDKs installed there). */
  function runScript(script: string, env: Record<string, string>) {
    return sandbox.run(CLIENTS['anthropic-sdk'].command, [join('scripts', script)], { cwd: E2E_ROOT, env, timeoutMs: CLIENT_TIMEOUT_MS });
  }

  function printed(run: ScenarioRun): Record<string, unknown> {
    expect(run.client.exitCode, `script stderr:\n${run.client.stderr}`).toBe(0);
    return JSON.parse(run.client.stdout) as Record<string, unknown>;
  }

  it('records the Anthropic SDK with and without streaming', async () => {
    const run = await runThroughProxy(sandbox, fake, (baseUrlFor) =>
      runScript('anthropic-sdk.mjs', { ANTHROPIC_BASE_URL: baseUrlFor('anthropic'), ANTHROPIC_API_KEY: ANTHROPIC_KEY }),
    );

    expect(printed(run)).toEqual({ message: FAKE_ANSWER_TEXT, stream: FAKE_ANSWER_TEXT, countTokens: FAKE_USAGE.countTokens });
    expectForwardedUnchanged(run);

    const calls = modelExchanges(run);
    expect(calls.map((call) => `${call.target} ${call.answer.stream ?? 'json'}`)).toEqual(['/v1/messages json', '/v1/messages sse']);
    for (const call of calls) {
      // @anthropic-ai/sdk 1.17.0 sends ANTHROPIC_API_KEY as a bearer (with anthropic-version 2026-10-21).
      expect(call.headers.authorization).toBe(`Bearer ${ANTHROPIC_KEY}`);
      expectModelCallRecord(recordFor(run, call), call, {
        family: 'anthropic',
        tool: 'anthropic-sdk',
        toolVersion: installedVersion('anthropic-sdk'),
        route: 'anthropic',
        provider: 'anthropic',
        apiShape: 'anthropic.messages',
        sessionId: null,
        modelRequested: bodyJson(call).model as string,
        basis: 'exact',
        streamRequested: call.answer.stream !== null,
        stopReason: 'end_turn',
      });
    }

    // A token count is recorded as a call, but it is not billable.
    const countCall = run.upstream.find((request) => request.path === '/v1/messages/count_tokens');
    expect(countCall, 'count_tokens reached the fake provider').toBeDefined();
    const countRecord = recordFor(run, countCall!);
    expect(countRecord, 'count_tokens is recorded').toBeDefined();
    expect.soft(countRecord?.api_shape).toBe('anthropic.count_tokens');
    expect.soft(countRecord?.tool).toBe('anthropic-sdk');
    expect.soft(countRecord?.status).toBe('success');
    expect.soft(countRecord?.billable).toBe(false);
    expect.soft(countRecord?.cost.basis).toBe('none');
    expect.soft(countRecord?.cost.usd).toBe(0);
  });

  it('records the OpenAI SDK for chat and responses, streamed and not', async () => {
    const run = await runThroughProxy(sandbox, fake, (baseUrlFor) =>
      runScript('openai-sdk.mjs', { OPENAI_BASE_URL: `${baseUrlFor('openai')}/v1`, OPENAI_API_KEY: OPENAI_KEY }),
    );

    expect(printed(run)).toEqual({
      chat: FAKE_ANSWER_TEXT,
      chatStream: FAKE_ANSWER_TEXT,
      responses: FAKE_ANSWER_TEXT,
      responsesStream: FAKE_ANSWER_TEXT,
    });
    expectForwardedUnchanged(run);

    const calls = modelExchanges(run);
    expect(calls.map((call) => `${call.target} ${call.answer.stream ?? 'json'}`)).toEqual([
      '/v1/chat/completions json',
      '/v1/chat/completions sse',
      '/v1/responses json',
      '/v1/responses sse',
    ]);
    for (const call of calls) {
      expect(call.headers.authorization).toBe(`Bearer ${OPENAI_KEY}`);
      const chat = call.path.endsWith('/chat/completions');
      expectModelCallRecord(recordFor(run, call), call, openaiExpectation(call, chat));
    }
  });
});

function openaiExpectation(call: RecordedRequest, chat: boolean): ModelCallExpectation {
  return {
    family: 'openai',
    tool: 'openai-sdk',
    toolVersion: installedVersion('openai-sdk'),
    route: 'openai',
    provider: 'openai',
    apiShape: chat ? 'openai.chat_completions' : 'openai.responses',
    sessionId: null,
    modelRequested: bodyJson(call).model as string,
    basis: 'exact',
    streamRequested: call.answer.stream !== null,
    stopReason: chat ? 'stop' : 'completed',
  };
}
