import { readFileSync } from 'node:fs';
import { findSecrets, redactSecrets, type SecretSpan } from '@tokenwise/core';
import { describe, expect, it } from 'vitest';
import { fixturesRoot } from '../src/fixtures.js';

interface CorpusCase {
  name: string;
  text: string;
  /** Every secret in `text`, verbatim; empty for a look-alike negative. */
  secrets: string[];
}

interface Corpus {
  positives: CorpusCase[];
  negatives: CorpusCase[];
}

/** Lowest recall and precision the redaction must keep on the corpus, as fractions. */
const RECALL_FLOOR = 0.9;
const PRECISION_FLOOR = 0.95;

const corpus = JSON.parse(readFileSync(`${fixturesRoot()}redaction/corpus.json`, 'utf8')) as Corpus;

/**
 * Wrap a case the way the proxy stores it: the text becomes the content of a user message in a JSON
 * request body, where newlines and quotes arrive escaped.
 */
function asRequestBody(item: CorpusCase): CorpusCase {
  const escapeJson = (text: string) => JSON.stringify(text).slice(1, -1);
  return {
    name: `${item.name} (in a JSON body)`,
    text: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1024, messages: [{ role: 'user', content: item.text }] }),
    secrets: item.secrets.map(escapeJson),
  };
}

interface Score {
  secrets: number;
  secretsMasked: number;
  maskedChars: number;
  maskedSecretChars: number;
  missed: string[];
  falseMasks: string[];
}

/**
 * Recall: a secret counts as caught when one mask covers all of it. Precision: the share of masked
 * characters that belong to a secret, so a mask that swallows the prose around a secret lowers it too.
 */
function score(cases: CorpusCase[]): Score {
  const result: Score = { secrets: 0, secretsMasked: 0, maskedChars: 0, maskedSecretChars: 0, missed: [], falseMasks: [] };
  for (const item of cases) {
    const spans = findSecrets(item.text);
    const secretRanges = item.secrets.flatMap((secret) => occurrences(item.text, secret));

    for (const range of secretRanges) {
      result.secrets += 1;
      if (spans.some((span) => span.start <= range.start && range.end <= span.end)) result.secretsMasked += 1;
      else result.missed.push(`${item.name}: ${item.text.slice(range.start, range.end).slice(0, 40)}`);
    }

    for (const span of spans) {
      const inSecrets = countCovered(span, secretRanges);
      result.maskedChars += span.end - span.start;
      result.maskedSecretChars += inSecrets;
      if (inSecrets === 0) result.falseMasks.push(`${item.name}: [${span.kind}] ${item.text.slice(span.start, span.end).slice(0, 40)}`);
    }
  }
  return result;
}

function occurrences(text: string, secret: string): { start: number; end: number }[] {
  const found: { start: number; end: number }[] = [];
  for (let index = text.indexOf(secret); index !== -1; index = text.indexOf(secret, index + 1)) {
    found.push({ start: index, end: index + secret.length });
  }
  if (found.length === 0) throw new Error(`corpus error: a listed secret does not occur in its text: ${secret.slice(0, 20)}`);
  return found;
}

/** Characters of `span` that lie inside any of `ranges` (which may overlap each other). */
function countCovered(span: SecretSpan, ranges: { start: number; end: number }[]): number {
  let covered = 0;
  for (let position = span.start; position < span.end; position += 1) {
    if (ranges.some((range) => range.start <= position && position < range.end)) covered += 1;
  }
  return covered;
}

describe('redaction corpus', () => {
  const cases = [...corpus.positives, ...corpus.negatives];
  const all = [...cases, ...cases.map(asRequestBody)];

  it('has positives and look-alike negatives', () => {
    expect(corpus.positives.length).toBeGreaterThanOrEqual(30);
    expect(corpus.negatives.length).toBeGreaterThanOrEqual(20);
    expect(corpus.negatives.every((item) => item.secrets.length === 0)).toBe(true);
  });

  it('keeps recall and precision above the floors', () => {
    const result = score(all);
    const recall = result.secretsMasked / result.secrets;
    const precision = result.maskedSecretChars / result.maskedChars;

    console.log(
      [
        `redaction corpus: ${corpus.positives.length} positive and ${corpus.negatives.length} negative cases, each also inside a JSON body`,
        `recall ${recall.toFixed(3)} (${result.secretsMasked} of ${result.secrets} secrets masked whole)`,
        `precision ${precision.toFixed(3)} (${result.maskedSecretChars} of ${result.maskedChars} masked characters belong to a secret)`,
        ...result.missed.map((line) => `  missed: ${line}`),
        ...result.falseMasks.map((line) => `  false mask: ${line}`),
      ].join('\n'),
    );
    expect(recall).toBeGreaterThanOrEqual(RECALL_FLOOR);
    expect(precision).toBeGreaterThanOrEqual(PRECISION_FLOOR);
  });

  it('leaves no masked secret in the redacted text', () => {
    for (const item of all) {
      const redacted = redactSecrets(item.text);
      for (const secret of item.secrets) {
        const caught = findSecrets(item.text).some((span) => item.text.slice(span.start, span.end).includes(secret));
        if (caught) expect(redacted, item.name).not.toContain(secret);
      }
    }
  });
});
