#!/usr/bin/env node
// Summarize a V8 CPU profile (`node --cpu-prof`): the functions with the most self time, and the share of
// each source file. Usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
if (positionals.length !== 1) {
  process.stderr.write('Usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N]\n');
  process.exit(2);
}

const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map();
// timeDeltas[i] is the time before samples[i] was taken; attribute it to that sample's node.
for (let index = 0; index < profile.samples.length; index += 1) {
  const id = profile.samples[index];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
}

const byFunction = new Map();
const byFile = new Map();
let totalUs = 0;
let idleUs = 0;
for (const [id, us] of selfUs) {
  const frame = nodes.get(id).callFrame;
  totalUs += us;
  if (frame.functionName === '(idle)') {
    idleUs += us;
    continue;
  }
  const file = frame.url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\//, 'node_modules/')
    .replace(/.*\/packages\//, 'packages/');
  const name = `${frame.functionName || '(anonymous)'} ${file || '(native)'}:${frame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const fileKey = file || frame.functionName;
  byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us);
}

const busyUs = totalUs - idleUs;
const top = Number(values.top);
const print = (title, map) => {
  process.stdout.write(`\n${title} (share of busy time, ${(busyUs / 1000).toFixed(0)} ms busy of ${(totalUs / 1000).toFixed(0)} ms)\n`);
  for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((100 * us) / busyUs).toFixed(1).padStart(5)}%  ${name}\n`);
  }
};
print('Self time by function', byFunction);
print('Self time by file', byFile);

// Inclusive time: a node's self time plus its descendants', summed per function once per stack (a
// recursive function is not counted twice), for the functions of Tokenwise's packages and of pino.
const parent = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const inclusive = new Map();
for (const [id, us] of selfUs) {
  const seen = new Set();
  for (let current = id; current !== undefined; current = parent.get(current)) {
    const frame = nodes.get(current).callFrame;
    if (!/\/packages\/|\/pino\/|genai-prices/.test(frame.url)) continue;
    const file = frame.url.replace(/.*\/packages\//, 'packages/').replace(/.*\/node_modules\//, 'node_modules/');
    const name = `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + us);
  }
}
print('Inclusive time of Tokenwise, pino and price functions', inclusive);
