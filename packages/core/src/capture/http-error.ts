import type { CallError } from '../call-record.js';
import { redactSecrets } from '../redact.js';
import { asArray, asObject, asString } from './json-access.js';

/**
 * Extract the error of a response with status >= 400. JSON bodies in the three providers' shapes give
 * the type (Anthropic `error.type`, OpenAI `error.type` or `error.code`, Google `error.status`) and the
 * message. Any other body falls back to `http_<status>`.
 */
export function httpErrorFromBody(
  status: number,
  headers: Readonly<Record<string, string>>,
  body: { value: unknown; complete: boolean },
  nowMs: number,
): CallError {
  const fallbackType = `http_${status}`;
  const headerRetry = retryAfterSeconds(headers, nowMs);
  if (!body.complete) return { type: fallbackType, message: null, source: 'non_json', retry_after_s: headerRetry };

  // Gemini streams without alt=sse wrap even their errors in an array.
  const root = asObject(body.value) ?? asObject(asArray(body.value)[0]);
  const error = root?.error;
  const object = asObject(error);
  const type = asString(object?.type) ?? asString(object?.status) ?? asString(object?.code) ?? fallbackType;
  const message = asString(object?.message) ?? asString(error) ?? asString(root?.message);

  return {
    type,
    message: message === null ? null : redactSecrets(message),
    source: 'http',
    retry_after_s: headerRetry ?? googleRetryDelaySeconds(object?.details),
  };
}

/**
 * Return true for a redirect that the proxy passes to the client: any 3xx except 304 Not Modified,
 * the response to a conditional request whose cached copy is current (RFC 9110 section 15.4.5).
 */
export function isRedirect(status: number): boolean {
  return status >= 300 && status < 400 && status !== 304;
}

/**
 * Describe a redirect as the call's error. The proxy never follows one (it would send the request and its
 * credentials to a host the route does not name), so no model call happened. The llm-wire format counts
 * only a complete API response as `success`, so a redirect is an `error` of type `http_<status>`, not billable.
 */
export function redirectError(status: number, headers: Readonly<Record<string, string>>, nowMs: number): CallError {
  return {
    type: `http_${status}`,
    message: `the upstream responded with a redirect (HTTP ${status}), passed to the client without following it; check the route's upstream URL`,
    source: 'http',
    retry_after_s: retryAfterSeconds(headers, nowMs),
  };
}

/** Describe an upgrade refused with a status that is neither an error nor a redirect (a plain `200`, say). */
export function upgradeRefusedError(status: number, headers: Readonly<Record<string, string>>, nowMs: number): CallError {
  return {
    type: `http_${status}`,
    message: `the upstream did not accept the WebSocket upgrade (HTTP ${status} instead of 101)`,
    source: 'http',
    retry_after_s: retryAfterSeconds(headers, nowMs),
  };
}

/** `retry-after` in seconds or as an HTTP date (RFC 9110 section 10.2.3), else OpenAI's `retry-after-ms`. */
export function retryAfterSeconds(headers: Readonly<Record<string, string>>, nowMs: number): number | null {
  const value = headers['retry-after']?.trim();
  if (value) {
    if (/^\d+$/.test(value)) return Number(value);
    const date = Date.parse(value);
    if (!Number.isNaN(date)) return Math.max(0, Math.round((date - nowMs) / 1000));
  }
  const milliseconds = headers['retry-after-ms']?.trim();
  if (milliseconds && /^\d+(\.\d+)?$/.test(milliseconds)) return Number(milliseconds) / 1000;
  return null;
}

/** `google.rpc.RetryInfo.retryDelay` is a protobuf Duration in JSON: seconds with an "s" suffix. */
function googleRetryDelaySeconds(details: unknown): number | null {
  for (const detail of asArray(details)) {
    const object = asObject(detail);
    if (!asString(object?.['@type'])?.endsWith('google.rpc.RetryInfo')) continue;
    const match = /^(\d+(?:\.\d+)?)s$/.exec(asString(object?.retryDelay) ?? '');
    if (match) return Number(match[1]);
  }
  return null;
}
