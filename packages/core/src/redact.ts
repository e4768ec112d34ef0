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
  /**
   * Every position where a match can start. `findSecrets` runs the pattern only there, so a body without
   * the literals a rule looks for costs one search per literal. A rule that leaves out a possible start
   * misses secrets: each rule is checked at its pattern, and a test compares the result with a scan of
   * every position.
   */
  starts: StartRule | readonly StartRule[];
}

/**
 * Candidate start positions of a pattern's matches. `literal`: at each `offset` from every occurrence of
 * one of `literals`, case-sensitive. `word`: at every occurrence of one of `words`, case-insensitive.
 * `key`: computed by `startsOf` from each secret-named key that is followed by an assignment (see `KeyHit`).
 */
type StartRule =
  | { kind: 'literal'; literals: readonly string[]; offsets: readonly number[] }
  | { kind: 'word'; words: readonly string[] }
  | { kind: 'key'; startsOf: (key: KeyHit, text: string) => number[] };

/**
 * A possible secret-named key followed by an assignment: `hit` is where one of `KEY_WORDS` occurs
 * (case-insensitively), `end` is where the run of key characters (`[A-Za-z0-9_.-]`) that contains it
 * ends. That run ends in one of `KEY_ENDINGS`, and `\\?["']?[ \t]*[:=]` follows at `end`. Every hit in
 * one run gives the same starts.
 */
interface KeyHit {
  hit: number;
  end: number;
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
const SECRET_WORDS = ['PASSWORD', 'PASSWD', 'PASSPHRASE', 'SECRET', 'TOKEN'];
const SECRET_KEY_PREFIXES = ['API', 'ACCESS', 'PRIVATE', 'SECRET', 'AUTH', 'CLIENT', 'ENCRYPTION', 'SIGNING', 'MASTER'];
const SECRET_WORD = `(?:${SECRET_WORDS.join('|')}|(?:${SECRET_KEY_PREFIXES.join('|')})_?KEY|CREDENTIALS?)`;
/** Lengths of the words `SECRET_WORD` matches: where an `.env` match can start before its word's end. */
const SECRET_WORD_LENGTHS = [
  ...new Set([
    ...SECRET_WORDS.map((word) => word.length),
    ...SECRET_KEY_PREFIXES.flatMap((prefix) => [prefix.length + 3, prefix.length + 4]),
    'CREDENTIAL'.length,
    'CREDENTIALS'.length,
  ]),
];
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

/*
 * A rule may look for any part of a pattern's prefix, at the offset that part has in it. It looks for the
 * part whose first character is rare in prose and code where it can, because a search costs most where
 * that character occurs: `k-` of `sk-`, `yJ` of `eyJ`.
 */

/** Start at each occurrence of `text`. */
function literal(text: string): StartRule {
  return { kind: 'literal', literals: [text], offsets: [0] };
}

/** The `sk-` of Anthropic and OpenAI keys. */
const SK_DASH: StartRule = { kind: 'literal', literals: ['k-'], offsets: [-1] };

/**
 * Lowercase parts of the secret words. Every key of a key-based pattern (`.env`, YAML, JSON, URL query,
 * AWS secret key) contains one, because each of their key names contains `pass`, `pwd`, `key`, `secret`
 * or `credential` (both contain `cr`) or `token` (which contains `ken`).
 */
const KEY_WORDS = ['pass', 'pwd', 'cr', 'key', 'ken'];
/**
 * Lowercase words that end every key of the key-based patterns (`.env`, YAML, JSON, query and AWS names).
 * A run of key characters that ends otherwise (`max_tokens`, `description`) starts no match, so it is skipped.
 */
const KEY_ENDINGS = ['password', 'passwd', 'passphrase', 'pwd', 'secret', 'token', 'key', 'credential', 'credentials'];

/** Return whether the run of key characters that ends at `end` of the lowercased text ends in one of `KEY_ENDINGS`. */
function endsInKeyWord(lowercase: string, end: number): boolean {
  return KEY_ENDINGS.some((word) => end >= word.length && lowercase.startsWith(word, end - word.length));
}

/**
 * The separator between a key and its value in every key-based pattern: `=` (`.env`, query), `:` (YAML),
 * `":` or `\":` (JSON), and AWS's mix of them.
 */
const ASSIGNMENT = /\\?["']?[ \t]*[:=]/y;

/** `[A-Za-z0-9_.-]`, the characters of the keys the key-based patterns match. */
function isKeyChar(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x5f ||
    code === 0x2e ||
    code === 0x2d
  );
}

/** Return the start of the run of key characters that contains `position`. */
function keyRunStart(text: string, position: number): number {
  let start = position;
  while (start > 0 && isKeyChar(text.charCodeAt(start - 1))) start -= 1;
  return start;
}

/**
 * Return where a YAML match with its key at `hit` can start: at the line start before the key, because
 * only spaces, tabs, dashes and key characters come between them (`LINE_START[ \t-]*` and the key).
 */
function lineStartBefore(text: string, hit: number): number[] {
  let before = hit - 1;
  for (; before >= 0; before -= 1) {
    const code = text.charCodeAt(before);
    if (!isKeyChar(code) && code !== 0x20 && code !== 0x09) break;
  }
  if (before < 0) return [0];
  if (text[before] === '\n' || (text[before] === '\\' && text[before + 1] === 'n')) return [before];
  return [];
}

/** Return where a JSON match with its key at `hit` can start: at the quote before the key, or at its backslash. */
function quoteBefore(text: string, hit: number): number[] {
  const quote = keyRunStart(text, hit) - 1;
  if (text[quote] !== '"') return [];
  return quote > 0 && text[quote - 1] === '\\' ? [quote - 1, quote] : [quote];
}

/** Return where a URL query match with its name at `hit` can start: at the `?` or `&` before the name. */
function queryMarkBefore(text: string, hit: number): number[] {
  const mark = keyRunStart(text, hit) - 1;
  return text[mark] === '?' || text[mark] === '&' ? [mark] : [];
}

// Order matters where two patterns find the same text: the earlier kind names the mask (an Anthropic key
// is also an "sk-" key, a key after "Bearer" is also a bearer token).
const SECRET_PATTERNS: readonly SecretPattern[] = [
  // PEM private keys (RSA, EC, PKCS#8, OpenSSH, PGP), including the one in a GCP service-account JSON file.
  {
    kind: 'private-key',
    starts: { kind: 'literal', literals: ['BEGIN'], offsets: [-5] },
    pattern: /-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:(?!-----)[\s\S]){0,20000}-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----/dg,
  },
  // A key cut off by the body cap has no END line: mask the base64 lines that follow BEGIN.
  {
    kind: 'private-key',
    starts: { kind: 'literal', literals: ['BEGIN'], offsets: [-5] },
    pattern: /-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:\\[nr]|[\r\n]|[A-Za-z0-9+/=])*/dg,
  },
  {
    kind: 'gcp-private-key-id',
    pattern: /private_key_id\\?"\s*:\s*\\?"([0-9a-f]{40})(?![0-9a-f])/dg,
    group: 1,
    starts: { kind: 'literal', literals: ['_key_id'], offsets: [-7] },
  },
  { kind: 'anthropic-key', pattern: /(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{8,}/dg, starts: SK_DASH },
  // OpenAI's project, service-account and admin keys (and OpenRouter's) carry a typed prefix. Legacy keys
  // (OpenAI, DeepSeek) are letters and digits only, so CSS names such as `sk-spinner-…` stay readable.
  {
    kind: 'openai-key',
    pattern: /(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin|or-v1|None)-[A-Za-z0-9_-]{16,}|[A-Za-z0-9]{20,}(?![A-Za-z0-9_-]))/dg,
    starts: SK_DASH,
  },
  {
    kind: 'stripe-key',
    pattern: /(?<![A-Za-z0-9_])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}/dg,
    starts: { kind: 'literal', literals: ['_live_', '_test_'], offsets: [-2] },
  },
  { kind: 'google-api-key', pattern: /(?<![A-Za-z0-9_-])AIza[A-Za-z0-9_-]{20,}/dg, starts: literal('AIza') },
  {
    kind: 'google-oauth-token',
    pattern: /(?<![A-Za-z0-9_-])ya29\.[A-Za-z0-9_.-]{8,}/dg,
    starts: { kind: 'literal', literals: ['29.'], offsets: [-2] },
  },
  { kind: 'groq-key', pattern: /(?<![A-Za-z0-9_-])gsk_[A-Za-z0-9]{20,}/dg, starts: literal('gsk_') },
  { kind: 'xai-key', pattern: /(?<![A-Za-z0-9_-])xai-[A-Za-z0-9]{20,}/dg, starts: literal('xai-') },
  // AWS access key ids: AKIA (long-term) and ASIA (temporary) plus 16 base32 characters.
  {
    kind: 'aws-access-key-id',
    pattern: /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9])/dg,
    starts: { kind: 'literal', literals: ['AKIA', 'ASIA', 'ABIA', 'ACCA'], offsets: [0] },
  },
  // A secret access key is 40 base64 characters with no prefix, so only its key name identifies it.
  {
    kind: 'aws-secret-key',
    pattern:
      /(?:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)\\?["']?[ \t]*[:=][ \t]*\\?["']?([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/dgi,
    group: 1,
    // The key names are 12 to 21 characters long and end the key.
    starts: { kind: 'key', startsOf: ({ end }) => Array.from({ length: 10 }, (_, index) => end - 21 + index) },
  },
  {
    kind: 'github-token',
    pattern: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])/dg,
    starts: [literal('gh'), { kind: 'literal', literals: ['_pat_'], offsets: [-6] }],
  },
  {
    kind: 'gitlab-token',
    pattern: /(?<![A-Za-z0-9_-])gl(?:pat|dt|rt|cbt|ptt|ft|imt|oas|soat|agent)-[A-Za-z0-9_-]{20,}/dg,
    starts: literal('gl'),
  },
  {
    kind: 'slack-token',
    pattern: /(?<![A-Za-z0-9-])(?:xox[abeprs]-(?:[0-9]+-)?[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,})/dg,
    starts: { kind: 'literal', literals: ['xox', 'xapp-'], offsets: [0] },
  },
  {
    kind: 'slack-webhook',
    pattern: /hooks\.slack\.com\/(?:services|workflows|triggers)\/(T[A-Z0-9]{6,}\/[A-Za-z0-9/]{8,})/dg,
    group: 1,
    starts: { kind: 'literal', literals: ['k.com/'], offsets: [-10] },
  },
  {
    kind: 'npm-token',
    pattern: /(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])/dg,
    starts: { kind: 'literal', literals: ['pm_'], offsets: [-1] },
  },
  {
    kind: 'jwt',
    pattern: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/dg,
    starts: { kind: 'literal', literals: ['yJ'], offsets: [-1] },
  },
  // The password of a URL's user info: postgres://user:PASSWORD@host.
  {
    kind: 'url-password',
    // The scheme is 2 to 21 characters before "://".
    starts: { kind: 'literal', literals: ['://'], offsets: Array.from({ length: 20 }, (_, index) => index - 21) },
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
    // A match starts at its secret word, which ends the name.
    starts: { kind: 'key', startsOf: ({ end }) => SECRET_WORD_LENGTHS.map((length) => end - length) },
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
    starts: { kind: 'key', startsOf: ({ hit }, text) => lineStartBefore(text, hit) },
  },
  {
    kind: 'json-secret',
    pattern: new RegExp(`\\\\?"${SECRET_JSON_KEY}\\\\?"[ \\t]*:[ \\t]*\\\\?"${NOT_A_REFERENCE}(?!\\\\)([^"\\\\\\n]{1,1024})\\\\?"`, 'dgi'),
    group: 1,
    starts: { kind: 'key', startsOf: ({ hit }, text) => quoteBefore(text, hit) },
  },
  // Secrets in a URL query: ?password=…, &access_token=…
  {
    kind: 'query-secret',
    pattern:
      /[?&](?:password|passwd|pwd|secret|token|access_token|refresh_token|api_key|apikey|client_secret)=(?![$<*%{])([^&\s#"'\\]{1,512})/dgi,
    group: 1,
    starts: { kind: 'key', startsOf: ({ hit }, text) => queryMarkBefore(text, hit) },
  },
  // RFC 6750 b64token. A digit is required so prose such as "Bearer authentication" stays readable.
  {
    kind: 'bearer-token',
    pattern: /\bBearer\s+((?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{16,}=*)/dgi,
    group: 1,
    starts: { kind: 'word', words: ['bearer'] },
  },
];

/** Each pattern's regular expression with the `y` flag in place of `g`, to try one start position at a time. */
const STICKY_PATTERNS = SECRET_PATTERNS.map(({ pattern }) => new RegExp(pattern.source, `${pattern.flags.replace('g', '')}y`));

/**
 * Matches where any start rule has a candidate: one of every rule's literals, or a word, case-insensitively
 * (as `[Kk][Ee][Yy]`, so it runs on the text as is). A text it does not match contains no secret. One test
 * of this is cheaper than the searches of every rule on a short text such as a header value, and dearer
 * on a long one.
 */
const ANY_CANDIDATE = (() => {
  const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  const eitherCase = (word: string) => [...word].map((character) => `[${character.toUpperCase()}${character}]`).join('');
  const alternatives = new Set<string>(KEY_WORDS.map(eitherCase));
  for (const { starts } of SECRET_PATTERNS) {
    for (const rule of 'kind' in starts ? [starts] : starts) {
      if (rule.kind === 'literal') for (const literalText of rule.literals) alternatives.add(escapeRegExp(literalText));
      if (rule.kind === 'word') for (const word of rule.words) alternatives.add(eitherCase(word));
    }
  }
  return new RegExp([...alternatives].join('|'));
})();
/** Texts up to this many characters are tested against `ANY_CANDIDATE` before their searches run. */
const SHORT_TEXT_CHARS = 512;

/**
 * Find every secret in `text`. Overlapping finds merge into one span, named by the earliest pattern, so
 * no part of a secret is left outside a mask. Spans are sorted and do not overlap.
 *
 * Each pattern is tried only at the candidate starts of its `starts` rule, in order, skipping those inside
 * its previous match. That finds exactly the matches of a scan of every position (`findSecretsEverywhere`),
 * because a match can only start at a candidate and a match at a given start does not depend on where the
 * search began. A prompt without any of the literals costs one search per literal.
 */
export function findSecrets(text: string): SecretSpan[] {
  if (text.length <= SHORT_TEXT_CHARS && !ANY_CANDIDATE.test(text)) return [];
  const candidates = new CandidateStarts(text);
  const found: FoundSecret[] = [];
  SECRET_PATTERNS.forEach((secretPattern, priority) => {
    const starts = candidates.of(secretPattern.starts);
    if (starts === null) {
      for (const match of text.matchAll(secretPattern.pattern)) collect(found, secretPattern, priority, match);
      return;
    }
    const sticky = STICKY_PATTERNS[priority]!;
    let resumeAt = 0;
    for (const start of starts) {
      if (start < resumeAt) continue;
      sticky.lastIndex = start;
      const match = sticky.exec(text);
      if (match === null) continue;
      resumeAt = start + Math.max(1, match[0].length);
      collect(found, secretPattern, priority, match);
    }
  });
  return mergeSpans(found);
}

/** Find every secret in `text` by running each pattern over every position: slower, with the same result as `findSecrets`. */
export function findSecretsEverywhere(text: string): SecretSpan[] {
  const found: FoundSecret[] = [];
  SECRET_PATTERNS.forEach((secretPattern, priority) => {
    for (const match of text.matchAll(secretPattern.pattern)) collect(found, secretPattern, priority, match);
  });
  return mergeSpans(found);
}

interface FoundSecret extends SecretSpan {
  priority: number;
}

function collect(found: FoundSecret[], { kind, group = 0, accept }: SecretPattern, priority: number, match: RegExpMatchArray): void {
  if (accept && !accept(match)) return;
  const groups = typeof group === 'number' ? [group] : group;
  const indices = groups.map((index) => match.indices?.[index]).find((range) => range !== undefined);
  if (indices && indices[1] > indices[0]) found.push({ kind, start: indices[0], end: indices[1], priority });
}

function mergeSpans(found: FoundSecret[]): SecretSpan[] {
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

/** The candidate starts of the rules in one text, with the searches they share done once. */
class CandidateStarts {
  readonly #text: string;
  readonly #literalHits = new Map<string, number[]>();
  #lowercase: string | null | undefined;
  #keyHits: KeyHit[] | undefined;

  constructor(text: string) {
    this.#text = text;
  }

  /** Sorted distinct start positions, or null when the rules cannot tell them and every position must be tried. */
  of(rules: StartRule | readonly StartRule[]): number[] | null {
    const starts: number[] = [];
    for (const rule of 'kind' in rules ? [rules] : rules) {
      if (rule.kind === 'literal') {
        for (const literalText of rule.literals) {
          for (const hit of this.#hitsOf(literalText)) for (const offset of rule.offsets) starts.push(hit + offset);
        }
        continue;
      }
      const lowercase = this.#lower();
      if (lowercase === null) return null;
      if (rule.kind === 'word') {
        for (const word of rule.words) starts.push(...occurrences(lowercase, word));
      } else {
        for (const key of this.#keys(lowercase)) starts.push(...rule.startsOf(key, this.#text));
      }
    }
    return sortedDistinct(starts.filter((start) => start >= 0));
  }

  #hitsOf(literalText: string): number[] {
    let hits = this.#literalHits.get(literalText);
    if (!hits) {
      hits = occurrences(this.#text, literalText);
      this.#literalHits.set(literalText, hits);
    }
    return hits;
  }

  /**
   * The text lowercased, for the case-insensitive patterns, which match ASCII letters of either case only.
   * Null when lowercasing changed the length (U+0130 becomes two characters), because positions would
   * no longer line up; those patterns then try every position.
   */
  #lower(): string | null {
    if (this.#lowercase === undefined) {
      const lowercase = this.#text.toLowerCase();
      this.#lowercase = lowercase.length === this.#text.length ? lowercase : null;
    }
    return this.#lowercase;
  }

  #keys(lowercase: string): KeyHit[] {
    if (this.#keyHits) return this.#keyHits;
    const hits = sortedDistinct(KEY_WORDS.flatMap((word) => occurrences(lowercase, word)));
    const keys: KeyHit[] = [];
    // Hits in one run of key characters give the same starts (see `KeyHit`), so each run is walked and
    // kept once, with its first hit.
    let runEnd = -1;
    for (const hit of hits) {
      if (hit < runEnd) continue;
      runEnd = hit;
      while (runEnd < this.#text.length && isKeyChar(this.#text.charCodeAt(runEnd))) runEnd += 1;
      if (!endsInKeyWord(lowercase, runEnd)) continue;
      ASSIGNMENT.lastIndex = runEnd;
      if (ASSIGNMENT.test(this.#text)) keys.push({ hit, end: runEnd });
    }
    this.#keyHits = keys;
    return keys;
  }
}

function occurrences(text: string, part: string): number[] {
  const found: number[] = [];
  for (let index = text.indexOf(part); index !== -1; index = text.indexOf(part, index + 1)) found.push(index);
  return found;
}

function sortedDistinct(values: number[]): number[] {
  values.sort((a, b) => a - b);
  return values.filter((value, index) => index === 0 || value !== values[index - 1]);
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
