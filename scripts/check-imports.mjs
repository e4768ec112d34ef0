#!/usr/bin/env node
// Enforces the package boundaries: which workspace package may import which, no deep imports into another
// package's files, and no Node built-ins in @tokenwise/core (it also runs on Cloudflare Workers).
// Exits 1 and lists every violation; test files (*.test.ts and test/) are exempt from the Node rule only.
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

/** package folder -> workspace packages it may import (DESIGN.md's table). */
const allowed = {
  core: [],
  storage: ['@tokenwise/core'],
  server: ['@tokenwise/core', '@tokenwise/storage'],
  cli: ['@tokenwise/core', '@tokenwise/storage', '@tokenwise/server'],
  testkit: ['@tokenwise/core'],
  worker: ['@tokenwise/core'],
  // The browser bundle takes only types from core (checked below), so no server code reaches it.
  dashboard: ['@tokenwise/core'],
};
const workspaceNames = new Set([
  '@tokenwise/core',
  '@tokenwise/storage',
  '@tokenwise/server',
  '@tokenwise/testkit',
  '@tokenwise/worker',
  '@tokenwise/dashboard',
  'tokenwise',
]);
const nodeBuiltins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));
const importPattern =
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

const violations = [];

for (const pkg of Object.keys(allowed)) {
  const srcDir = path.join(root, 'packages', pkg, 'src');
  if (!fs.existsSync(srcDir)) continue;
  for (const file of walk(srcDir)) {
    const isTest = file.endsWith('.test.ts');
    const text = fs.readFileSync(file, 'utf8');
    for (const match of text.matchAll(importPattern)) {
      const specifier = match[1] ?? match[2] ?? match[3];
      const where = `${path.relative(root, file)}: "${specifier}"`;
      if (pkg === 'core' && !isTest && nodeBuiltins.has(specifier)) {
        violations.push(`${where}: @tokenwise/core must use Web-standard APIs only, no Node built-ins`);
      }
      const base = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
      if (pkg === 'dashboard' && !isTest) {
        if (nodeBuiltins.has(specifier)) violations.push(`${where}: the dashboard runs in the browser, so no Node built-ins`);
        if (base === '@tokenwise/core' && !/^[\s;]*(?:import|export)\s+type\s/.test(match[0])) {
          violations.push(`${where}: the dashboard takes only types from @tokenwise/core: write "import type"`);
        }
      }
      if (workspaceNames.has(base)) {
        if (specifier !== base) violations.push(`${where}: deep import; import from "${base}" only`);
        if (!allowed[pkg].includes(base) && !(isTest && base === '@tokenwise/testkit')) {
          violations.push(`${where}: packages/${pkg} may not import ${base}`);
        }
      }
      if (specifier.startsWith('.')) {
        const resolved = path.resolve(path.dirname(file), specifier);
        if (!resolved.startsWith(path.join(root, 'packages', pkg) + path.sep)) {
          violations.push(`${where}: relative import leaves packages/${pkg}; import the package by name`);
        }
      }
    }
  }
}

if (violations.length > 0) {
  console.error(`Import rule violations (${violations.length}):\n${violations.map((v) => `  ${v}`).join('\n')}`);
  process.exit(1);
}

function* walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(full);
    else if (/\.(ts|tsx|mts|js|mjs)$/.test(entry.name)) yield full;
  }
}
