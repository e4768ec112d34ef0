#!/usr/bin/env node
// Entry point of the tokenwise command; the compiled program lives in ../dist (built by `npm install`).
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('tokenwise: the command is not built yet; run `npm run build` in the repository root');
  process.exit(1);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv.slice(2));
