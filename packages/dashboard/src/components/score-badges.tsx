import { type CallScore, SCORER_LABELS } from '../api/insights-types.js';

/**
 * Render the failed checks of one call as badges, with the reason in each badge's title; "passed" when none
 * failed. `wrap={false}` keeps the badges on one line, for table rows of a fixed height.
 */
export function ScoreBadges({ scores, wrap = true }: { scores: CallScore[]; wrap?: boolean }) {
  const failed = scores.filter((score) => !score.passed);
  if (failed.length === 0) return <span className="muted small">passed</span>;
  return (
    <span style={{ display: 'inline-flex', flexWrap: wrap ? 'wrap' : 'nowrap', gap: 4 }}>
      {failed.map((score) => (
        <span key={score.scorer} className={`badge ${score.scorer === 'slow' ? 'warn' : 'error'}`} title={describeScore(score)}>
          {SCORER_LABELS[score.scorer] ?? score.scorer}
        </span>
      ))}
    </span>
  );
}

/** Describe in one line why a check failed, from the score's detail. */
export function describeScore(score: CallScore): string {
  const detail = score.detail;
  switch (score.scorer) {
    case 'provider_error':
      return [detail.http_status, detail.type, detail.message].filter((part) => part !== null && part !== undefined).join(' ');
    case 'retry':
      return `repeats the request of call ${String(detail.retry_of)}`;
    case 'tool_error':
      return `the next call returned failed results for ${(detail.failed_tools as string[] | undefined)?.join(', ') ?? 'a tool'}`;
    case 'slow':
      return `${Math.round(score.value ?? 0)} ms ${detail.measured === 'ttft_ms' ? 'to the first token' : 'in total'}, target ${String(detail.target_ms)} ms`;
    case 'max_tokens':
    case 'refusal':
      return `stop reason ${String(detail.stop_reason)}`;
    case 'stream_cut':
      return `status ${String(detail.status)}`;
    default:
      return JSON.stringify(detail);
  }
}
