import { readFileSync } from 'node:fs';
import { findSecrets, findSecretsEverywhere } from '@tokenwise/core';
import { describe, expect, it } from 'vitest';
import { decodedRequestBody, decodedResponseBody, fixturesRoot, loadAllWireFixtures } from '../src/fixtures.js';

/**
 * `findSecrets` tries each pattern only at the candidate starts its rule computes. These tests hold it to
 * the scan of every position, `findSecretsEverywhere`, on real bodies, on the redaction corpus and on
 * generated text dense with near misses: a rule that left out a possible start would differ there.
 */

interface CorpusCase {
  name: string;
  text: string;
}

const corpus = JSON.parse(readFileSync(`${fixturesRoot()}redaction/corpus.json`, 'utf8')) as {
  positives: CorpusCase[];
  negatives: CorpusCase[];
};

/** Pieces of secrets, keys, separators and look-alikes, joined at random into test text. */
const PIECES = [
  'sk-ant-api03-',
  'sk-proj-',
  'sk-',
  'sk_live_',
  'rk_test_',
  'AIza',
  'ya29.',
  'gsk_',
  'xai-',
  'AKIA',
  'ASIA',
  'ghp_',
  'github_pat_',
  'glpat-',
  'xoxb-',
  'xapp-1-',
  'hooks.slack.com/services/T0123456/',
  'npm_',
  'eyJ',
  '.eyJzdWIiOiJ4In0.',
  'postgres://',
  'https://user:',
  '@db',
  '-----BEGIN RSA PRIVATE KEY-----',
  '-----END RSA PRIVATE KEY-----',
  '"private_key_id": "',
  'DB_PASSWORD',
  'PASSWORD',
  'Passwd',
  'SECRET_KEY',
  'client_secret',
  'aws_secret_access_key',
  'secret_access_key',
  'API_KEY',
  'apikey',
  'ENCRYPTION_KEY',
  'CREDENTIALS',
  'token',
  'access_token',
  'max_tokens',
  'tokens',
  // Keys that contain a secret word without ending in one, and keys that end in one after other characters.
  'SECRETS',
  'api_keys',
  'PASSWORD_HASH',
  'description',
  'Token',
  '.key',
  'my-credential',
  'pwd',
  'Bearer ',
  'bearer ',
  '=',
  ' = ',
  ': ',
  ':',
  '"',
  '\\"',
  "'",
  '?',
  '&',
  '\n',
  '\\n',
  '\r\n',
  '\t',
  '  - ',
  ' ',
  '-',
  '_',
  '.',
  '$' + '{X}',
  'YOUR_KEY',
  'İ',
  '\u212A',
  'é',
  '😀',
  'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  '0123456789abcdef0123456789abcdef01234567',
  'abcdefghijklmnopqrstuvwxyz0123456789ABCDEF',
  'hunter2hunter2',
  'The proxy records the tokens and the cost. ',
];

/** A small seeded generator (mulberry32), so a failure names a text that can be made again. */
function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

function generatedText(seed: number): string {
  const random = seededRandom(seed);
  const pieces = 5 + Math.floor(random() * 60);
  let text = '';
  for (let index = 0; index < pieces; index += 1) text += PIECES[Math.floor(random() * PIECES.length)];
  return text;
}

const decoder = new TextDecoder();

describe('findSecrets', () => {
  it('matches the full scan on llm-wire bodies', () => {
    const fixtures = loadAllWireFixtures();
    expect(fixtures.length).toBeGreaterThan(20);
    for (const fixture of fixtures) {
      const request = decodedRequestBody(fixture);
      for (const text of [request === null ? '' : decoder.decode(request), decoder.decode(decodedResponseBody(fixture))]) {
        expect(findSecrets(text), fixture.name).toEqual(findSecretsEverywhere(text));
      }
    }
  });

  it('matches the full scan on the corpus', () => {
    for (const item of [...corpus.positives, ...corpus.negatives]) {
      const inJson = JSON.stringify({ messages: [{ role: 'user', content: item.text }] });
      expect(findSecrets(item.text), item.name).toEqual(findSecretsEverywhere(item.text));
      expect(findSecrets(inJson), `${item.name} (in a JSON body)`).toEqual(findSecretsEverywhere(inJson));
    }
  });

  it('matches the full scan on near misses', () => {
    let withSecrets = 0;
    for (let seed = 1; seed <= 3000; seed += 1) {
      const text = generatedText(seed);
      const expected = findSecretsEverywhere(text);
      if (expected.length > 0) withSecrets += 1;
      expect(findSecrets(text), `seed ${seed}: ${JSON.stringify(text)}`).toEqual(expected);
    }
    // The generated texts must exercise the patterns, not only miss them.
    expect(withSecrets).toBeGreaterThan(1000);
  });

  it('scans everywhere when lowercasing resizes text', () => {
    const text = 'İ DB_PASSWORD=hunter2hunter2 Bearer abcdef0123456789xyz';

    expect(findSecrets(text)).toEqual(findSecretsEverywhere(text));
    expect(findSecrets(text).map((span) => span.kind)).toEqual(['env-secret', 'bearer-token']);
  });
});
