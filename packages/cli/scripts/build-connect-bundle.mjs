#!/usr/bin/env node
// Builds dist/tokenwise-connect.mjs: connect, disconnect and status as one ESM file with every dependency
// inside, which the server serves to its connect scripts, so a machine needs only Node.js to run them.
// Run after `tsc -b` (it bundles the compiled dist/). Fails when the bundle would need a native module
// or storage, which the connect commands must not pull in.
import { readFileSync } from 'node:fs';
import { sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const workspaceDir = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Our workspace packages have no module-level side effects, so esbuild may drop every module of theirs
 * that connect does not use (the server's store setup, the core's price tables). Declared here rather
 * than as "sideEffects" in their package.json files, because only this bundle relies on it.
 */
const workspaceWithoutSideEffects = {
  name: 'workspace-without-side-effects',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData?.resolving) return undefined;
      const resolved = await pluginBuild.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { resolving: true },
      });
      // Unresolvable requires inside try blocks (optional native add-ons) stay for esbuild to handle as usual.
      if (resolved.errors.length > 0 || resolved.external) return undefined;
      const inWorkspace = resolved.path.startsWith(workspaceDir) && !resolved.path.includes(`${sep}node_modules${sep}`);
      return inWorkspace ? { ...resolved, sideEffects: false } : resolved;
    });
  },
};
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

const result = await build({
  absWorkingDir: packageDir,
  entryPoints: ['dist/connect/bundle-entry.js'],
  outfile: 'dist/tokenwise-connect.mjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  // jsonc-parser's "main" is a UMD build that esbuild cannot follow; its "module" build is plain ESM.
  mainFields: ['module', 'main'],
  banner: {
    // sql.js is CommonJS and requires node:fs and node:crypto; an ES module has no require() of its own.
    js: [
      `// tokenwise ${version}: connect, disconnect and status in one file (built by esbuild).`,
      "import { createRequire as createRequireForBundle } from 'node:module';",
      'const require = createRequireForBundle(import.meta.url);',
    ].join('\n'),
  },
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  plugins: [workspaceWithoutSideEffects],
});

// Inputs that put bytes into the output; esbuild parses more modules than it keeps.
const inputs = Object.values(result.metafile.outputs).flatMap((output) => Object.keys(output.inputs));
const forbidden = inputs.filter((input) =>
  /(^|[/\\])storage[/\\]dist[/\\]|node_modules[/\\](better-sqlite3|pg|pg-[a-z-]+|pino|undici|ws)[/\\]|\.node$/.test(input),
);
if (forbidden.length > 0) {
  console.error(`build-connect-bundle: the bundle must not include storage or native modules, but has:\n  ${forbidden.join('\n  ')}`);
  process.exit(1);
}
