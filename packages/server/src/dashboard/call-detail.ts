import type { CallBodies, CallRecord, CapturedBody } from '@tokenwise/core';
import type { Device, Workspace } from '@tokenwise/storage';

/** Bodies up to this many UTF-8 bytes are inline in the detail response; larger ones are fetched on their own. */
export const INLINE_BODY_BYTES = 256 * 1024;

/** Request headers the copied curl command leaves out: transport headers curl sets itself. */
const CURL_SKIPPED_HEADERS = new Set(['host', 'content-length', 'connection', 'transfer-encoding', 'accept-encoding', 'keep-alive']);

/** The credential each route's provider expects, as the header and the environment variable the curl command uses. */
const CREDENTIAL_PLACEHOLDERS: Record<string, { header: string; value: string }> = {
  anthropic: { header: 'x-api-key', value: '$ANTHROPIC_API_KEY' },
  openai: { header: 'authorization', value: 'Bearer $OPENAI_API_KEY' },
  chatgpt: { header: 'authorization', value: 'Bearer $CHATGPT_ACCESS_TOKEN' },
  gemini: { header: 'x-goog-api-key', value: '$GEMINI_API_KEY' },
  codeassist: { header: 'authorization', value: 'Bearer $GOOGLE_ACCESS_TOKEN' },
};

export type MissingBodiesReason = 'privacy_mode' | 'device_privacy_mode' | 'deleted_by_retention' | 'not_captured';

export interface CallDetailInput {
  record: CallRecord;
  bodies: CallBodies | null;
  device: Device | null;
  workspace: Workspace;
  /** The origin this server is reached at, for the curl command. */
  serverUrl: string;
  now: Date;
}

/** Build the JSON of `GET /api/v1/calls/{id}/detail`. */
export function callDetail(input: CallDetailInput) {
  const { record, bodies, device } = input;
  const bodyUrl = (side: string) => `/api/v1/calls/${encodeURIComponent(record.id)}/bodies/${side}`;
  const timing = record.timing;
  const overhead =
    timing.proxy_before_ms === undefined && timing.proxy_after_ms === undefined
      ? null
      : Math.round(((timing.proxy_before_ms ?? 0) + (timing.proxy_after_ms ?? 0)) * 1000) / 1000;

  return {
    call: record,
    device: device ? { id: device.id, name: device.name, user_id: device.userId } : null,
    cost: { ...record.cost, price_source: record.cost.price_source ?? 'bundled' },
    timing: {
      ttft_ms: timing.ttft_ms,
      total_ms: timing.total_ms,
      headers_ms: timing.headers_ms,
      proxy_before_ms: timing.proxy_before_ms ?? null,
      proxy_after_ms: timing.proxy_after_ms ?? null,
      proxy_overhead_ms: overhead,
      model_load_ms: timing.model_load_ms ?? null,
      prompt_eval_ms: timing.prompt_eval_ms ?? null,
      eval_ms: timing.eval_ms ?? null,
    },
    rate_limits: record.rate_limits ?? null,
    bodies: {
      kept: bodies !== null,
      reason: bodies === null ? missingBodiesReason(input) : null,
      request: describeBody(bodies?.request ?? null, bodyUrl('request')),
      response: describeBody(bodies?.response ?? null, bodyUrl('response')),
    },
    request_headers: bodies?.request_headers ?? {},
    response_headers: bodies?.response_headers ?? {},
    curl: curlCommand(record, bodies, input.serverUrl),
  };
}

function describeBody(body: CapturedBody | null, url: string) {
  if (body === null) return null;
  const inline = body.text !== null && Buffer.byteLength(body.text) <= INLINE_BODY_BYTES;
  return {
    bytes: body.bytes,
    truncated: body.truncated,
    content_type: body.content_type,
    encoding_error: body.encoding_error,
    text: inline ? body.text : null,
    url: body.text === null ? null : url,
  };
}

/**
 * Tell why a call has no bodies, from the settings as they are now. NOTE: a setting changed since the call
 * was recorded gives the wrong reason; the record does not keep why its bodies are missing.
 */
function missingBodiesReason({ record, device, workspace, now }: CallDetailInput): MissingBodiesReason {
  if (!workspace.keepBodies) return 'privacy_mode';
  if (device?.privacyMode) return 'device_privacy_mode';
  const retentionMs = workspace.bodyRetentionDays === null ? null : workspace.bodyRetentionDays * 86_400_000;
  if (retentionMs !== null && Date.parse(record.started_at) < now.getTime() - retentionMs) return 'deleted_by_retention';
  return 'not_captured';
}

/**
 * Build a curl command that sends the call's request again through this server, with placeholders for
 * the route token and the provider credential. The stored headers have their credentials removed already.
 * Null without a complete request body, since a cut body would send a different request.
 */
export function curlCommand(record: CallRecord, bodies: CallBodies | null, serverUrl: string): string | null {
  const body = bodies?.request;
  if (!bodies || !body || body.text === null || body.truncated) return null;

  const root = escapeForDoubleQuotes(serverUrl.replace(/\/+$/, ''));
  const lines = [`curl -X ${record.method} "${root}/r/$TOKENWISE_ROUTE_TOKEN/${escapeForDoubleQuotes(record.route + record.path)}"`];
  for (const [name, value] of Object.entries(bodies.request_headers).sort(([a], [b]) => a.localeCompare(b))) {
    if (CURL_SKIPPED_HEADERS.has(name)) continue;
    lines.push(`-H ${shellQuote(`${name}: ${value}`)}`);
  }
  const credential = CREDENTIAL_PLACEHOLDERS[record.route] ?? {
    header: 'authorization',
    value: `Bearer $${record.route.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_API_KEY`,
  };
  // Double quotes, so the shell expands the variable.
  lines.push(`-H "${credential.header}: ${credential.value}"`);

  let terminator = 'TOKENWISE_BODY';
  while (body.text.includes(terminator)) terminator += '_END';
  lines.push(`--data-binary @- <<'${terminator}'`);
  return `${lines.join(' \\\n  ')}\n${body.text}\n${terminator}\n`;
}

/** Escape the characters a shell still reads inside double quotes. */
function escapeForDoubleQuotes(text: string): string {
  return text.replace(/[\\"$`]/g, (character) => `\\${character}`);
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
