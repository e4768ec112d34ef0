/**
 * Secret masking for everything Tokenwise stores: credentials inside body text, and credential or
 * account headers. A mask names the kind of secret it replaced, never any of its characters.
 */

interface SecretPattern {
  kind: string;
  pattern: RegExp;
  /** Text kept in front of the mask, e.g. the "Bearer " scheme. */
  keepGroup?: number;
}

// Order matters: the Anthropic pattern must run before the generic "sk-" one.
const SECRET_PATTERNS: readonly SecretPattern[] = [
  { kind: 'anthropic-key', pattern: /(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{8,}/g },
  { kind: 'openai-key', pattern: /(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{20,}/g },
  { kind: 'google-api-key', pattern: /(?<![A-Za-z0-9_-])AIza[A-Za-z0-9_-]{20,}/g },
  { kind: 'google-oauth-token', pattern: /(?<![A-Za-z0-9_-])ya29\.[A-Za-z0-9_.-]{8,}/g },
  { kind: 'groq-key', pattern: /(?<![A-Za-z0-9_-])gsk_[A-Za-z0-9]{20,}/g },
  { kind: 'xai-key', pattern: /(?<![A-Za-z0-9_-])xai-[A-Za-z0-9]{20,}/g },
  { kind: 'jwt', pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/g },
  // RFC 6750 b64token. A digit is required so prose such as "Bearer authentication" stays readable.
  { kind: 'bearer-token', pattern: /(\bBearer\s+)(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{16,}=*/gi, keepGroup: 1 },
];

/** Mask API keys and bearer tokens (Anthropic, OpenAI, Google, JWTs, `Bearer …`) inside free text. */
export function redactSecrets(text: string): string {
  let result = text;
  for (const { kind, pattern, keepGroup } of SECRET_PATTERNS) {
    result = result.replace(pattern, (...match: string[]) => `${keepGroup ? match[keepGroup] : ''}[REDACTED:${kind}]`);
  }
  return result;
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
