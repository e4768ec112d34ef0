#!/usr/bin/env node
// Time the body packer's steps for one call of each bench load, on this thread: decoding, masking,
// gzip and reading the prompt text, then `packBodies` as a whole. In the proxy these run on the packer
// thread, which shares the proxy's core, so they are part of the CPU per call with bodies captured.
// With --compare DIR, the other built checkout's `redactSecrets` and `packBodies` run on the same texts,
// alternating with this one's round by round.
// Usage: node bench/packer-steps.mjs [--rounds N] [--calls N] [--compare DIR] [--json]
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { extractPromptText, redactSecrets } from '@tokenwise/core';
import { packBodies } from '@tokenwise/storage';
import { anthropicJsonResponse, anthropicRequestBody, anthropicSseResponse } from './lib/payloads.mjs';
import { median } from './lib/probe.mjs';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    calls: { type: 'string', default: '2000' },
    compare: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const rounds = positiveInteger('--rounds', values.rounds);
const calls = positiveInteger('--calls', values.calls);

function positiveInteger(name, text) {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    process.stderr.write(`packer-steps: ${name} must be a positive integer, not "${text}"\n`);
    process.exit(2);
  }
  return value;
}

/** Load `redactSecrets` and `packBodies` from the other checkout's built packages. */
async function loadBase(root) {
  const dist = (name) => pathToFileURL(path.join(path.resolve(root), 'packages', name, 'dist', 'index.js')).href;
  try {
    const [core, storage] = await Promise.all([import(dist('core')), import(dist('storage'))]);
    return { redactSecrets: core.redactSecrets, packBodies: storage.packBodies };
  } catch (error) {
    process.stderr.write(
      `packer-steps: failed to load the build in --compare ${root} (${error.message}); run npm ci and npx tsc -b there\n`,
    );
    process.exit(2);
  }
}
const base = values.compare === undefined ? null : await loadBase(values.compare);

const { head, deltas, tail } = anthropicSseResponse();
const request = anthropicRequestBody(20 * 1024, { stream: false, gap: false });
const answers = { 'JSON 2 KB': anthropicJsonResponse(), 'SSE 40 deltas': Buffer.concat([head, ...deltas, tail]) };

/** Build one call's bodies as the proxy hands them to the packer: raw bytes, masked there. */
function bodiesOf(answer) {
  const side = (bytes) => ({
    raw: new Uint8Array(bytes),
    text: null,
    bytes: bytes.length,
    truncated: false,
    content_type: 'application/json',
    encoding_error: null,
  });
  return {
    apiShape: 'anthropic.messages',
    redact: true,
    bodies: {
      request: side(request),
      response: side(answer),
      request_headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      response_headers: { 'content-type': 'application/json' },
    },
  };
}

/** Return the median over the rounds of each step's µs per call. The steps of one round run in turn. */
function measure(steps) {
  const samples = new Map(Object.keys(steps).map((name) => [name, []]));
  for (let round = 0; round <= rounds; round += 1) {
    for (const [name, step] of Object.entries(steps)) {
      const started = process.hrtime.bigint();
      for (let call = 0; call < calls; call += 1) step();
      // Round 0 warms the code up and is not counted.
      if (round > 0) samples.get(name).push(Number(process.hrtime.bigint() - started) / calls / 1000);
    }
  }
  return Object.fromEntries([...samples].map(([name, list]) => [name, median(list)]));
}

const requestText = request.toString('utf8');
const results = {};
for (const [label, answer] of Object.entries(answers)) {
  const answerText = answer.toString('utf8');
  const steps = {
    'decode both bodies': () => new TextDecoder().decode(request) + new TextDecoder().decode(answer),
    'mask request': () => redactSecrets(requestText),
    'mask answer': () => redactSecrets(answerText),
    'gzip both bodies': () => [gzipSync(requestText, { level: 1 }), gzipSync(answerText, { level: 1 })],
    'prompt text': () => extractPromptText('anthropic.messages', requestText)?.toLowerCase(),
    packBodies: () => packBodies(bodiesOf(answer)),
  };
  if (base !== null) {
    steps['mask request (base)'] = () => base.redactSecrets(requestText);
    steps['mask answer (base)'] = () => base.redactSecrets(answerText);
    steps['packBodies (base)'] = () => base.packBodies(bodiesOf(answer));
  }
  results[`20 KB request, ${label} answer`] = measure(steps);
}

if (values.json) {
  process.stdout.write(`${JSON.stringify({ rounds, calls, results }, null, 2)}\n`);
} else {
  for (const [load, steps] of Object.entries(results)) {
    process.stdout.write(`\n${load} (µs per call, median of ${rounds} rounds of ${calls})\n`);
    for (const [name, us] of Object.entries(steps)) process.stdout.write(`  ${name.padEnd(22)} ${us.toFixed(1).padStart(8)}\n`);
  }
}
