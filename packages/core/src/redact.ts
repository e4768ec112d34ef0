import type { CallBodies, CapturedBody } from './call-record.js';

/**
 * Secret masking for everything Tokenwise stores: credentials inside body text, and credential or
 * account headers. A mask names the kind of secret it replaced, never any of its characters.
 *
 * Coding agents paste whole files into prompts (`.env` files, service-account JSON, shell history), so the
 * body patterns cover provider keys, cloud and forge credentials, private keys and secret-named
 * assignments. Each pattern is anchored on a fixed prefix or on a secret-named key, so that look-alikes
 * (hashes, ids, prose about passwords) stay readable. Request bodies are JSON, so every pattern also
 * matches inside a JSON string, where newlines and quotes arrive escaped (`\n`, `\"`).
 */

interface SecretPattern {
  kind: string;
  /** Needs the `g` and `d` flags: the scan reads the span of `group` from `match.indices`. */
  pattern: RegExp;
  /**
   * Capture group that contains the secret, or several of which one matches; 0 masks the whole match. A group
   * keeps text around the secret readable, e.g. the name in `PASSWORD=`.
   */
  group?: number | readonly number[];
  /** Rejects a match the regular expression alone cannot rule out. */
  accept?: (match: RegExpMatchArray) => boolean;
  /** Text every match contains; a body without it skips the pattern, which keeps large bodies cheap to scan. */
  trigger?: string;
}

/** One secret found in a text: `text.slice(start, end)` is what a mask replaces. */
export interface SecretSpan {
  kind: string;
  start: number;
  end: number;
}

/**
 * Names that contain a secret in `.env` files and shell exports: one of these words (group 1) that ends
 * the name, after up to 64 name characters (group 2). The word comes first in the pattern and the name is
 * checked by a lookbehind after it, so the scan only looks back where a word matched; a lookbehind first
 * would run at every position of a long body.
 */
const SECRET_WORD =
  '(?:PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|(?:API|ACCESS|PRIVATE|SECRET|AUTH|CLIENT|ENCRYPTION|SIGNING|MASTER)_?KEY|CREDENTIALS?)';
const SECRET_NAME = `(${SECRET_WORD})(?<=(?:^|[^A-Za-z0-9_\\\\]|\\\\[nrt])([A-Za-z0-9_]{0,64})${SECRET_WORD})`;
/** JSON keys whose value is a secret: a bare `token` counts, `next_page_token` and `max_tokens` do not. */
const SECRET_JSON_KEY =
  '(?:[A-Za-z0-9_.-]{0,64}(?:password|passwd|passphrase|secret|api_?key|access_?token|refresh_?token|auth_?token|id_?token|client_?secret|private_?key|secret_?key)|token)';
/**
 * A value that refers to a secret instead of holding one: `${VAR}`, `$VAR`, `<placeholder>`, `***`,
 * `%VAR%`, `{{var}}`, `YOUR_API_KEY`.
 */
const NOT_A_REFERENCE = '(?![$<*%{=])(?!(?:YOUR|your)[_-])';
/** Start of a line, also where a JSON string has an escaped newline; it is part of the match, outside the secret. */
const LINE_START = '(?:^|\\n|\\\\n)';
/** YAML keys whose value is a secret. */
const SECRET_YAML_KEY = '[A-Za-z0-9_.-]{0,64}(?:password|passwd|passphrase|secret|api_?key|access_?key|private_?key|secret_?key|token)';

// Order matters where two patterns find the same text: the earlier kind names the mask (an Anthropic key
// is also an "sk-" key, a key after "Bearer" is also a bearer token).
const SECRET_PATTERNS: readonly SecretPattern[] = [
  // PEM private keys (RSA, EC, PKCS#8, OpenSSH, PGP), including the one in a GCP service-account JSON file.
  {
    kind: 'private-key',
    trigger: 'PRIVATE KEY',
    pattern: /-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:(?!-----)[\s\S]){0,20000}-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----/dg,
  },
  // A key cut off by the body cap has no END line: mask the base64 lines that follow BEGIN.
  {
    kind: 'private-key',
    trigger: 'PRIVATE KEY',
    pattern: /-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:\\[nr]|[\r\n]|[A-Za-z0-9+/=])*/dg,
  },
  { kind: 'gcp-private-key-id', pattern: /private_key_id\\?"\s*:\s*\\?"([0-9a-f]{40})(?![0-9a-f])/dg, group: 1, trigger: 'private_key_id' },
  { kind: 'anthropic-key', pattern: /(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{8,}/dg, trigger: 'sk-ant-' },
  // OpenAI's project, service-account and admin keys (and OpenRouter's) carry a typed prefix. Legacy keys
  // (OpenAI, DeepSeek) are letters and digits only, so CSS names such as `sk-spinner-…` stay readable.
  {
    kind: 'openai-key',
    pattern: /(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin|or-v1|None)-[A-Za-z0-9_-]{16,}|[A-Za-z0-9]{20,}(?![A-Za-z0-9_-]))/dg,
  },
  { kind: 'stripe-key', pattern: /(?<![A-Za-z0-9_])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}/dg },
  { kind: 'google-api-key', pattern: /(?<![A-Za-z0-9_-])AIza[A-Za-z0-9_-]{20,}/dg, trigger: 'AIza' },
  { kind: 'google-oauth-token', pattern: /(?<![A-Za-z0-9_-])ya29\.[A-Za-z0-9_.-]{8,}/dg, trigger: 'ya29.' },
  { kind: 'groq-key', pattern: /(?<![A-Za-z0-9_-])gsk_[A-Za-z0-9]{20,}/dg, trigger: 'gsk_' },
  { kind: 'xai-key', pattern: /(?<![A-Za-z0-9_-])xai-[A-Za-z0-9]{20,}/dg, trigger: 'xai-' },
  // AWS access key ids: AKIA (long-term) and ASIA (temporary) plus 16 base32 characters.
  { kind: 'aws-access-key-id', pattern: /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9])/dg },
  // A secret access key is 40 base64 characters with no prefix, so only its key name identifies it.
  {
    kind: 'aws-secret-key',
    pattern:
      /(?:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)\\?["']?[ \t]*[:=][ \t]*\\?["']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/dgi,
    group: 1,
  },
  { kind: 'github-token', pattern: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])/dg },
  { kind: 'gitlab-token', pattern: /(?<![A-Za-z0-9_-])gl(?:pat|dt|rt|cbt|ptt|ft|imt|oas|soat|agent)-[A-Za-z0-9_-]{20,}/dg },
  { kind: 'slack-token', pattern: /(?<![A-Za-z0-9-])(?:xox[abeprs]-(?:[0-9]+-)?[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,})/dg },
  {
    kind: 'slack-webhook',
    pattern: /hooks\.slack\.com\/(?:services|workflows|triggers)\/(T[A-Z0-9]{6,}\/[A-Za-z0-9/]{8,})/dg,
    group: 1,
    trigger: 'hooks.slack.com',
  },
  { kind: 'npm-token', pattern: /(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])/dg, trigger: 'npm_' },
  { kind: 'jwt', pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/dg, trigger: 'eyJ' },
  // The password of a URL's user info: postgres://user:PASSWORD@host.
  {
    kind: 'url-password',
    trigger: '://',
    pattern: new RegExp(`\\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\\s:/?#@"'\\\\]{0,256}:${NOT_A_REFERENCE}([^\\s/?#@"'\\\\]{1,256})@`, 'dg'),
    group: 1,
  },
  // .env files, shell exports and assignments in code or config: DB_PASSWORD=value, export API_KEY="value",
  // secret_key = "value". A quoted value may have spaces around the "=". An unquoted one may not and needs an
  // uppercase name, so code such as `SECRET_KEY = os.environ[...]` and `token = getToken()` stays readable.
  {
    kind: 'env-secret',
    pattern: new RegExp(
      `${SECRET_NAME}(?:[ \\t]*=[ \\t]*(?:"${NOT_A_REFERENCE}([^"\\n\\\\]{1,512})"|'${NOT_A_REFERENCE}([^'\\n\\\\]{1,512})'|` +
        // Inside a JSON string the quotes arrive as \".
        `\\\\"${NOT_A_REFERENCE}([^"\\\\\\n]{1,512})\\\\")|=${NOT_A_REFERENCE}([^\\s"'\\\\&#;,()]{1,512}))`,
      'dgi',
    ),
    group: [3, 4, 5, 6],
    accept: (match) => match[6] === undefined || `${match[2]}${match[1]}` === `${match[2]}${match[1]}`.toUpperCase(),
  },
  // YAML: `password: value` as a line of its own, with one word as the value, so prose such as
  // "Password: must be long" stays readable.
  {
    kind: 'yaml-secret',
    pattern: new RegExp(
      `${LINE_START}[ \\t-]*${SECRET_YAML_KEY}[ \\t]*:[ \\t]+${NOT_A_REFERENCE}("?)([^\\s"'\\\\#]{1,512})\\1[ \\t]*(?=\\r?\\n|\\\\[rn]|$)`,
      'dgi',
    ),
    group: 2,
  },
  {
    kind: 'json-secret',
    pattern: new RegExp(`\\\\?"${SECRET_JSON_KEY}\\\\?"[ \\t]*:[ \\t]*\\\\?"${NOT_A_REFERENCE}(?!\\\\)([^"\\\\\\n]{1,1024})\\\\?"`, 'dgi'),
    group: 1,
  },
  // Secrets in a URL query: ?password=…, &access_token=…
  {
    kind: 'query-secret',
    pattern:
      /[?&](?:password|passwd|pwd|secret|token|access_token|refresh_token|api_key|apikey|client_secret)=(?![$<*%{])([^&\s#"'\\]{1,512})/dgi,
    group: 1,
  },
  // RFC 6750 b64token. A digit is required so prose such as "Bearer authentication" stays readable.
  { kind: 'bearer-token', pattern: /\bBearer\s+((?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{16,}=*)/dgi, group: 1 },
];

/**
 * Find every secret in `text`. Overlapping finds merge into one span, named by the earliest pattern, so
 * no part of a secret is left outside a mask. Spans are sorted and do not overlap.
 */
export function findSecrets(text: string): SecretSpan[] {
  const found: (SecretSpan & { priority: number })[] = [];
  SECRET_PATTERNS.forEach(({ kind, pattern, group = 0, accept, trigger }, priority) => {
    if (trigger !== undefined && !text.includes(trigger)) return;
    const groups = typeof group === 'number' ? [group] : group;
    for (const match of text.matchAll(pattern)) {
      if (accept && !accept(match)) continue;
      const indices = groups.map((index) => match.indices?.[index]).find((range) => range !== undefined);
      if (indices && indices[1] > indices[0]) found.push({ kind, start: indices[0], end: indices[1], priority });
    }
  });
  found.sort((a, b) => a.start - b.start || a.priority - b.priority);

  const spans: SecretSpan[] = [];
  for (const { kind, start, end } of found) {
    const last = spans.at(-1);
    if (last && start < last.end) {
      last.end = Math.max(last.end, end);
    } else {
      spans.push({ kind, start, end });
    }
  }
  return spans;
}

/** Replace every secret `findSecrets` finds with `[REDACTED:<kind>]`. */
export function redactSecrets(text: string): string {
  const spans = findSecrets(text);
  if (spans.length === 0) return text;

  const parts: string[] = [];
  let position = 0;
  for (const { kind, start, end } of spans) {
    parts.push(text.slice(position, start), `[REDACTED:${kind}]`);
    position = end;
  }
  parts.push(text.slice(position));
  return parts.join('');
}

/**
 * Copy call bodies with the secrets in their text masked, for bodies captured with `redactBodies: false`
 * whose consumer masks them later (the Node server does so on a worker thread). Headers are copied as
 * they are, because the capture already removed credential headers and masked the other values.
 */
export function redactBodyText(bodies: CallBodies): CallBodies {
  const mask = (body: CapturedBody | null): CapturedBody | null =>
    body === null || body.text === null ? body : { ...body, text: redactSecrets(body.text) };
  return { ...bodies, request: mask(bodies.request), response: mask(bodies.response) };
}

const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'x-goog-api-key',
  'cookie',
  'set-cookie',
  'chatgpt-account-id',
]);

/** Header names made of credential words. "tokens" (a rate-limit count) is not "token". */
const CREDENTIAL_WORD = /(?:^|[-_])(?:key|apikey|token|secret|password|passwd|cookie|credentials?|auth)(?:[-_]|$)/;
/** Account identifiers: the record and the stored headers never name whose account paid. */
const ACCOUNT_WORD = /(?:^|[-_])(?:account|organization|org|project)(?:[-_]|$)/;

/** True when a header carries a credential or an account id and must never be stored. */
export function isSecretHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return CREDENTIAL_HEADERS.has(lower) || CREDENTIAL_WORD.test(lower) || ACCOUNT_WORD.test(lower);
}

/** Copy headers without credentials and account ids; other values get their embedded secrets masked. */
export function redactHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower !== '__proto__' && !isSecretHeader(lower)) kept[lower] = redactSecrets(value);
  }
  return kept;
}
