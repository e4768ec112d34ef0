import { readFileSync } from 'node:fs';
import { TokenwiseError } from '@tokenwise/core';

/**
 * Read the LLM judge's provider API key from `TOKENWISE_JUDGE_API_KEY`, or from the file that
 * `--judge-api-key-file` (TOKENWISE_JUDGE_API_KEY_FILE) names, such as a mounted secret. There is no flag
 * for the key itself, because a flag shows in the process list. The key stays in memory: it never reaches
 * the store, a log line or an API response. Undefined leaves the judge unable to run.
 */
export function resolveJudgeApiKey(flags: { judgeApiKeyFile?: string }, env: NodeJS.ProcessEnv): string | undefined {
  const fromEnv = env.TOKENWISE_JUDGE_API_KEY;
  const file = flags.judgeApiKeyFile ?? (env.TOKENWISE_JUDGE_API_KEY_FILE || undefined);
  const fileSource = flags.judgeApiKeyFile !== undefined ? '--judge-api-key-file' : 'TOKENWISE_JUDGE_API_KEY_FILE';
  if (fromEnv !== undefined && fromEnv !== '' && file !== undefined) {
    throw new TokenwiseError('invalid_argument', `both TOKENWISE_JUDGE_API_KEY and ${fileSource} are set: keep one of them`);
  }
  if (file !== undefined) return readKeyFile(file, fileSource);
  if (fromEnv === undefined || fromEnv === '') return undefined;
  return checkKey(fromEnv.trim(), 'TOKENWISE_JUDGE_API_KEY');
}

function readKeyFile(path: string, source: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new TokenwiseError(
      'invalid_argument',
      `failed to read the judge API key file ${path} named by ${source} (${code}): check the path and its permissions`,
    );
  }
  return checkKey(text.trim(), `the file ${path}`);
}

/** The key goes into an HTTP header, so it must be one line of visible ASCII. The message never quotes it. */
function checkKey(key: string, source: string): string {
  if (key === '' || !/^[\x21-\x7e]+$/.test(key)) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid judge API key in ${source} (${key.length} characters): expected one line of visible ASCII characters without spaces`,
    );
  }
  return key;
}
