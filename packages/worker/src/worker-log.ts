import type { CallRecord } from '@tokenwise/core';

type Level = 'info' | 'warn' | 'error';

/**
 * The Worker's one logging path: JSON lines on the console, which Workers Logs and `wrangler tail`
 * collect. Fields carry ids, statuses and counts only; callers never pass bodies, headers or secrets.
 */
export function logEvent(level: Level, message: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, msg: message, ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

/** Log one finished call, with the fields the server logs for a call. */
export function logCall(record: CallRecord): void {
  logEvent('info', 'call', {
    call_id: record.id,
    workspace_id: record.workspace_id,
    route: record.route,
    tool: record.tool,
    model: record.model_answered ?? record.model_requested,
    status: record.status,
    http_status: record.http_status,
    input_tokens: record.usage.input_tokens,
    output_tokens: record.usage.output_tokens,
    cost_usd: record.cost.usd,
    total_ms: record.timing.total_ms,
  });
}
