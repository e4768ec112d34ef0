import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRouteRegistry } from '@tokenwise/core';
import { type RecordedRequest, type Sandbox, type SandboxFakeProvider, startSandbox } from '@tokenwise/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectBypassOnlyTo, expectClientPrintedAnswer, expectForwardedUnchanged, expectModelCallRecord } from './support/assertions.js';
import { CLIENT_TIMEOUT_MS, CLIENTS, describeWithClients, installedVersion } from './support/environment.js';
import { bodyJson, modelExchanges, recordFor, runThroughProxy, type ScenarioRun } from './support/scenario.js';

const API_KEY = 'AIzaSyFAKE-e2e-gemini-key-000000000000';
const ACCESS_TOKEN = 'ya29.FAKE-e2e-google-access-token-0000000000000000';

describeWithClients('gemini -p through the proxy', ['gemini'], () => {
  let sandbox: Sandbox;
  let fake: SandboxFakeProvider;

  beforeAll(async () => {
    sandbox = await startSandbox();
    fake = await sandbox.startFakeProvider();
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  /** Write ~/.gemini/settings.json (auth type, usage statistics off) and run `gemini -p` once. */
  async function runGemini(
    selectedType: string,
    env: (baseUrlFor: (route: string) => string) => Record<string, string>,
  ): Promise<ScenarioRun> {
    const settingsDir = join(sandbox.home, '.gemini');
    mkdirSync(settingsDir, { recursive: true });
    writeFileSync(
      join(settingsDir, 'settings.json'),
      JSON.stringify({ security: { auth: { selectedType } }, privacy: { usageStatisticsEnabled: false } }),
    );
    return runThroughProxy(sandbox, fake, (baseUrlFor) =>
      sandbox.run(CLIENTS.gemini.command, ['-p', 'Say hi.'], { env: env(baseUrlFor), timeoutMs: CLIENT_TIMEOUT_MS }),
    );
  }

  /** Return the model named in a Gemini API path (`/v1beta/models/{model}:{verb}`). */
  function modelInPath(call: RecordedRequest): string {
    const model = /\/models\/([^/:]+):/.exec(call.path)?.[1];
    expect(model, `model in ${call.path}`).toBeDefined();
    return model ?? '';
  }

  it('records the classifier and the streamed answer with GOOGLE_GEMINI_BASE_URL', async () => {
    const run = await runGemini('gemini-api-key', (baseUrlFor) => ({
      GOOGLE_GEMINI_BASE_URL: baseUrlFor('gemini'),
      GEMINI_API_KEY: API_KEY,
    }));

    expectClientPrintedAnswer(run);
    expectForwardedUnchanged(run);
    // Each prompt makes a router classifier call, then the streamed answer on the chosen model.
    const calls = modelExchanges(run);
    expect(calls.map((call) => `${call.path.replace(/\/models\/[^/:]+:/, '/models/{model}:')}${call.query}`)).toEqual([
      '/v1beta/models/{model}:generateContent',
      '/v1beta/models/{model}:streamGenerateContent?alt=sse',
    ]);
    const [classifier, answer] = calls as [RecordedRequest, RecordedRequest];
    for (const call of calls) expect(call.headers['x-goog-api-key']).toBe(API_KEY);

    const common = {
      family: 'gemini',
      tool: 'gemini-cli',
      toolVersion: installedVersion('gemini'),
      route: 'gemini',
      provider: 'google',
      // The Gemini API requests carry no session id.
      sessionId: null,
      basis: 'exact',
      stopReason: 'STOP',
    } as const;
    expectModelCallRecord(recordFor(run, classifier), classifier, {
      ...common,
      apiShape: 'gemini.generate_content',
      modelRequested: modelInPath(classifier),
      streamRequested: false,
    });
    expectModelCallRecord(recordFor(run, answer), answer, {
      ...common,
      apiShape: 'gemini.stream_generate_content',
      modelRequested: modelInPath(answer),
      streamRequested: true,
    });
    expect(run.proxyAttempts, 'no usage statistics or other calls around the base URL').toEqual([]);
  });

  it('records Code Assist calls with a Google login', async () => {
    const run = await runGemini('oauth-personal', (baseUrlFor) => ({
      GOOGLE_GENAI_USE_GCA: 'true',
      GOOGLE_CLOUD_ACCESS_TOKEN: ACCESS_TOKEN,
      CODE_ASSIST_ENDPOINT: baseUrlFor('codeassist'),
    }));

    expectClientPrintedAnswer(run);
    expectForwardedUnchanged(run);
    // With a Google login the CLI checks the token and fetches user info from Google directly.
    expectBypassOnlyTo(run, ['www.googleapis.com:443', 'oauth2.googleapis.com:443']);
    const calls = modelExchanges(run);
    expect(calls.map((call) => `${call.path}${call.query}`)).toEqual([
      '/v1internal:generateContent',
      '/v1internal:streamGenerateContent?alt=sse',
    ]);
    for (const request of run.upstream) expect(request.headers.authorization).toBe(`Bearer ${ACCESS_TOKEN}`);

    const subscriptionBilled = createRouteRegistry().get('codeassist')?.subscriptionBilled;
    for (const call of calls) {
      const body = bodyJson(call);
      const request = body.request as { session_id?: string };
      const stream = call.path.endsWith(':streamGenerateContent');
      if (stream) expect(request.session_id, 'Gemini CLI sends its session id in the Code Assist request').toBeTruthy();
      expectModelCallRecord(recordFor(run, call), call, {
        family: 'gemini',
        tool: 'gemini-cli',
        toolVersion: installedVersion('gemini'),
        route: 'codeassist',
        provider: 'google',
        apiShape: stream ? 'gemini.stream_generate_content' : 'gemini.generate_content',
        sessionId: request.session_id ?? null,
        modelRequested: body.model as string,
        basis: subscriptionBilled ? 'api_equivalent' : 'exact',
        streamRequested: stream,
        stopReason: 'STOP',
      });
    }
  });
});
