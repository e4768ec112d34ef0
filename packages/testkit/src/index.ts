export * from './fake-provider.js';
export * from './fake-provider-answers.js';
export { FAKE_CODE_ASSIST_PROJECT, googleCompactJson } from './fake-provider-gemini.js';
export * from './fixture-assertions.js';
export * from './fixtures.js';
export * from './replay-upstream.js';
export * from './sandbox.js';
