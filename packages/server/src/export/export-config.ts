import { TokenwiseError } from '@tokenwise/core';

/** Where and how calls are exported as OpenTelemetry spans. */
export interface OtlpConfig {
  /** The collector's trace endpoint, e.g. `http://127.0.0.1:4318/v1/traces`. */
  tracesUrl: string;
  headers: Record<string, string>;
  /** Put request and response bodies on the spans, where the workspace keeps them. */
  includeBodies: boolean;
}

const MIN_METRICS_TOKEN_LENGTH = 16;
const TRACES_PATH = '/v1/traces';

/**
 * Resolve `--otlp-endpoint` to the trace endpoint. As with OpenTelemetry's OTEL_EXPORTER_OTLP_ENDPOINT, a
 * base URL gets `/v1/traces` appended (`http://collector:4318` and `http://collector:4318/otlp` work);
 * a URL that already ends in `/v1/traces` is used as it is.
 */
export function parseOtlpEndpoint(value: string, source: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value.trim());
  } catch {
    // Reported below with the expected form.
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hash) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${source} "${value}": expected the http(s) URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318`,
    );
  }
  if (url.username || url.password) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${source}: credentials in the URL would be logged with it; pass them with --otlp-header NAME=VALUE instead`,
    );
  }
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith(TRACES_PATH) ? path : `${path}${TRACES_PATH}`;
  return url.toString();
}

/**
 * Parse `--otlp-header NAME=VALUE` flags, or TOKENWISE_OTLP_HEADERS as a comma-separated list in the form
 * of OTEL_EXPORTER_OTLP_HEADERS (`api-key=abc,x-team=ops`, values percent-decoded). Messages name the
 * header but never its value, which is usually a key.
 */
export function parseOtlpHeaders(pairs: readonly string[], source: string, percentDecode: boolean): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    const name = (equals === -1 ? pair : pair.slice(0, equals)).trim().toLowerCase();
    if (equals === -1 || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
      throw new TokenwiseError('invalid_argument', `invalid ${source} "${name}": expected NAME=VALUE, e.g. x-api-key=YOUR_KEY`);
    }
    let headerValue = pair.slice(equals + 1).trim();
    if (percentDecode) {
      try {
        headerValue = decodeURIComponent(headerValue);
      } catch {
        throw new TokenwiseError('invalid_argument', `invalid ${source}: the value of "${name}" is not valid percent-encoding`);
      }
    }
    if (/[\r\n\0]/.test(headerValue)) {
      throw new TokenwiseError('invalid_argument', `invalid ${source}: the value of "${name}" contains a line break`);
    }
    headers[name] = headerValue;
  }
  return headers;
}

export function parseMetricsToken(value: string, source: string): string {
  const token = value.trim();
  if (token.length < MIN_METRICS_TOKEN_LENGTH || /\s/.test(token)) {
    // The value is a secret, so the message gives only its length.
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${source} (${token.length} characters): expected at least ${MIN_METRICS_TOKEN_LENGTH} characters without spaces, e.g. from "openssl rand -hex 24"`,
    );
  }
  return token;
}

/** Read a boolean setting: 1, true, yes or on; 0, false, no or off. */
export function parseSwitch(value: string, source: string): boolean {
  const normalized = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(normalized)) return true;
  if (['0', 'false', 'no', 'off'].includes(normalized)) return false;
  throw new TokenwiseError('invalid_argument', `invalid ${source} "${value}": expected true or false`);
}
