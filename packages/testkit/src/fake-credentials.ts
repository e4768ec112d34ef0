/**
 * Every fake credential the tests send: API keys, OAuth bearers, ChatGPT account ids and cookies. Tests
 * take their credentials from here, and the suite's closing scan searches the run's data directories,
 * logs and collected API responses for each value, so a credential that reaches any of them fails the run.
 *
 * The `*Family` entries are prefixes that every fake key of that kind starts with (tests build some keys
 * from them), so searching for the prefix finds every such key. A source check (`fake-credentials.test.ts`)
 * fails when a test file contains a credential-shaped string that no entry matches.
 */
export const FAKE_CREDENTIALS = {
  anthropicApiKeyFamily: 'sk-ant-api03-FAKE',
  anthropicOauthFamily: 'sk-ant-oat01-FAKE',
  anthropicTapFamily: 'sk-ant-FAKE',
  openaiApiKeyFamily: 'sk-proj-FAKE',
  openaiShortKeyFamily: 'sk-FAKE',
  googleApiKeyFamily: 'AIzaSyFAKE',
  googleShortKeyFamily: 'AIzaFAKE',
  googleAccessTokenFamily: 'ya29.FAKE',
  googleAccessTokenA0Family: 'ya29.a0FAKE',

  anthropicApiKey: 'sk-ant-api03-FAKE-test-key',
  anthropicOauth: 'sk-ant-oat01-FAKE-TEST-TOKEN-0000',
  openaiApiKey: 'sk-proj-FAKE-TEST-KEY-0000',
  googleApiKey: 'FAKE-GOOGLE-KEY-0000',
  chatgptBearer: 'eyJhbGciOiJub25lIn0.eyJGQUtFIjoibm9zZWNyZXRzIn0.FAKEsig',
  chatgptAccountId: 'acct-FAKE-0000',
  cookie: 'session=FAKE',
  gatewayToken: 'gateway-token-FAKE',
  githubToken: 'ghp_FAKE0123456789abcdefghijklmnopqrstuv',
  gitlabToken: 'glpat-FAKE0123456789abcdef',

  noSecretsAnthropicApiKey: 'sk-ant-api03-FAKE-nosecrets-4f1d9c0b7e2a',
  noSecretsAnthropicOauth: 'sk-ant-oat01-FAKE-nosecrets-88a1b2c3d4e5',
  noSecretsGoogleApiKey: 'AIzaSyFAKE-nosecrets-3b6e9d2c1a0f',
  noSecretsGoogleQueryKey: 'AIzaSyFAKE-nosecrets-query-5c8d7e',
  noSecretsOpenaiApiKey: 'sk-proj-FAKE-nosecrets-0a9b8c7d6e5f',
  noSecretsChatgptAccountId: 'FAKE-account-nosecrets-7f3c9e',
  noSecretsCookie: 'FAKE-cookie-nosecrets-1e2d3c',
  /** A key pasted into a prompt: the capture masks it in the stored body. */
  keyInPrompt: 'sk-ant-api03-FAKE-in-prompt-9d8c7b6a5f4e',
  e2eChatgptAccountId: 'FAKE-e2e-chatgpt-account-0000',
  e2eGatewayBearer: 'FAKE-e2e-gateway-bearer-0000000000000000',
  e2eRefreshToken: 'FAKE-e2e-refresh-token',
} as const;

export type FakeCredentialName = keyof typeof FAKE_CREDENTIALS;

/**
 * Strings in test sources that look like a credential: a provider key prefix followed by FAKE, or a
 * FAKE account id, cookie, bearer or token. The source check matches them against `FAKE_CREDENTIALS`.
 */
export const CREDENTIAL_SHAPE =
  /(?:sk-ant-(?:api03|oat01)-|sk-proj-|sk-|AIzaSy|AIza|ya29\.|ghp_|glpat-|gateway-token-|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.)[A-Za-z0-9_.-]*FAKE[A-Za-z0-9_.-]*|FAKE-[A-Za-z0-9-]*(?:account|cookie|bearer|token)[A-Za-z0-9-]*|acct-FAKE[A-Za-z0-9-]*|session=FAKE[A-Za-z0-9-]*/g;

/** Return the entry that covers `value` (equal to it, or a family prefix of it), or null. */
export function fakeCredentialCovering(value: string): FakeCredentialName | null {
  for (const [name, credential] of Object.entries(FAKE_CREDENTIALS) as [FakeCredentialName, string][]) {
    if (value === credential || (name.endsWith('Family') && value.startsWith(credential))) return name;
  }
  return null;
}

/** Return the names of the fake credentials that occur in `text`. */
export function findFakeCredentials(text: string): FakeCredentialName[] {
  return (Object.entries(FAKE_CREDENTIALS) as [FakeCredentialName, string][])
    .filter(([, credential]) => text.includes(credential))
    .map(([name]) => name);
}
