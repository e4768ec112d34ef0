import { deflateSync } from 'node:zlib';

/**
 * The words the seeded calls are made of: tasks a person gives a coding agent, the files it reads, the
 * commands it runs and what they print. Tasks are built from a verb and a subject, so a large seed has
 * thousands of distinct prompts that prompt search can tell apart.
 */

export const TASK_VERBS = [
  'Refactor',
  'Write tests for',
  'Explain',
  'Find the bug in',
  'Add logging to',
  'Speed up',
  'Document',
  'Review',
  'Add type annotations to',
  'Remove dead code from',
  'Port to async/await',
  'Add input validation to',
] as const;

export const TASK_SUBJECTS = [
  'the billing module',
  'the invoice parser',
  'the retry loop in the HTTP client',
  'the login form',
  'the CSV export',
  'the rate limiter',
  'the database migration runner',
  'the search endpoint',
  'the cache layer',
  'the webhook handler',
  'the image resizer',
  'the permissions check',
  'the onboarding wizard',
  'the PDF renderer',
  'the feature flag client',
  'the job scheduler',
  'the settings page',
  'the payment reconciliation job',
  'the email templates',
  'the GraphQL resolvers',
] as const;

export const FILES = [
  'src/billing/invoice.ts',
  'src/billing/invoice.test.ts',
  'src/http/client.ts',
  'src/http/retry.ts',
  'src/auth/login.tsx',
  'src/export/csv.ts',
  'src/db/migrate.ts',
  'src/search/handler.ts',
  'src/cache/lru.ts',
  'src/jobs/scheduler.ts',
  'package.json',
  'README.md',
] as const;

export const COMMANDS = ['npm test', 'npm run lint', 'git status', 'git diff --stat', 'npx tsc --noEmit', 'rg "TODO" src'] as const;

export const COMMAND_OUTPUTS = [
  'Tests: 42 passed, 42 total',
  'Tests: 1 failed, 41 passed, 42 total\n  ● invoice › rounds totals to cents\n    expected 10.01, received 10.009999',
  'Found 0 errors.',
  'src/billing/invoice.ts | 12 ++++++------\n 1 file changed, 6 insertions(+), 6 deletions(-)',
  "src/http/retry.ts(41,7): error TS2322: Type 'string' is not assignable to type 'number'.",
  'On branch main\nChanges not staged for commit:\n  modified:   src/billing/invoice.ts',
] as const;

export const ANSWERS = [
  'I found the cause: the total is summed in floating point before rounding. I changed it to sum integer cents.',
  'The retry loop never resets its backoff after a success, so every later failure waits the maximum delay. Fixed and added a test.',
  'Done. I split the function into parse, validate and apply steps; the tests still pass.',
  'The query scans the whole table because the index does not cover the sort column. I added a composite index.',
  'Here is a summary of the module: it reads the config, builds the client once and shares it across requests.',
  'I added the missing checks and a test for each rejected input.',
] as const;

export const THOUGHTS = [
  'The failing assertion compares a float with a decimal literal. Before changing the rounding I should check where the total is computed.',
  'Two call sites use the old signature. Changing the type first will show both in the compiler output.',
  'The user wants tests, not a rewrite. Start from the public function and cover the edge cases: empty input, one line, a negative amount.',
] as const;

export const SYSTEM_PROMPTS: Record<string, string> = {
  'claude-code':
    'You are Claude Code, an interactive CLI tool that helps users with software engineering tasks. Use the tools available to you to read, edit and run code in the working directory.',
  codex: 'You are Codex, a coding agent running in the terminal. Keep changes minimal and run the tests before you finish.',
  'gemini-cli': 'You are Gemini CLI, an agent that helps with software engineering tasks in the current project.',
  'anthropic-sdk': 'You summarise changelog entries for release notes. Answer in plain sentences.',
  'openai-sdk': 'You classify support tickets into billing, bug, feature request or other. Answer with the label only.',
};

export const SCRIPT_PROMPTS = [
  'Summarise these changelog entries for the release notes.',
  'Classify this ticket: "I was charged twice for the same invoice."',
  'Classify this ticket: "The export button does nothing in Safari."',
  'Draft a one-paragraph release note for version 2.4.',
  'Classify this ticket: "Please add dark mode."',
] as const;

/**
 * A small PNG (a 48×32 gradient) as base64, for the seeded calls that attach a screenshot: built here
 * with zlib, so the seed carries no binary file.
 */
export const SCREENSHOT_PNG_BASE64 = buildGradientPng(48, 32);

function buildGradientPng(width: number, height: number): string {
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y += 1) {
    const row = y * (width * 3 + 1);
    rows[row] = 0; // filter type: none
    for (let x = 0; x < width; x += 1) {
      const pixel = row + 1 + x * 3;
      rows[pixel] = Math.round((x / width) * 255);
      rows[pixel + 1] = Math.round((y / height) * 200);
      rows[pixel + 2] = 180;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter, no interlace
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(rows)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]).toString('base64');
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

/** CRC-32 (ISO 3309), as the PNG chunk trailer needs. */
function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
