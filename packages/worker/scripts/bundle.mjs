#!/usr/bin/env node
// Bundles the compiled Worker (dist/index.js, from `tsc -b`) and its dependencies into one ES module,
// dist/worker.js, which wrangler.toml deploys as it is (no_bundle) and the tests run in workerd. One
// artifact for both means the tests exercise exactly what is deployed.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Bundle the Worker; returns the path of the written file. */
export async function bundleWorker(outFile = path.join(packageDir, 'dist', 'worker.js')) {
  await build({
    entryPoints: [path.join(packageDir, 'dist', 'index.js')],
    outfile: outFile,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    // The conditions wrangler uses for Workers: `brotli` then loads its small dictionary, not Node's.
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['module', 'main'],
    minify: false,
    sourcemap: false,
    logLevel: 'warning',
  });
  return outFile;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outFile = await bundleWorker();
  console.log(`bundled the Worker into ${path.relative(process.cwd(), outFile)}`);
}
