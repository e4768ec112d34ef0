import { formatMetric } from '../insights/version-drift.js';
import type { InsightsReport, ReportPromptChange, ReportRow, ReportTotals } from './report-data.js';

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

/** Links of one email, built on `--public-url` (else the server's own address). */
export interface ReportLinks {
  overview: string;
  errors: string;
  settings: string;
  prompts(groupId: string): string;
  session(sessionId: string): string;
  call(callId: string): string;
}

export function reportLinks(baseUrl: string, report: InsightsReport): ReportLinks {
  const base = baseUrl.replace(/\/+$/, '');
  const range = new URLSearchParams({ from: report.period.from, to: report.period.to });
  return {
    overview: `${base}/?${range}`,
    errors: `${base}/calls?${new URLSearchParams({ status: 'error', from: report.period.from, to: report.period.to })}`,
    settings: `${base}/settings#insights-email`,
    prompts: (groupId) => `${base}/prompts/${encodeURIComponent(groupId)}`,
    session: (sessionId) => `${base}/sessions/${encodeURIComponent(sessionId)}`,
    call: (callId) => `${base}/calls/${encodeURIComponent(callId)}`,
  };
}

/**
 * Render the insights email as plain text and as HTML with inline styles (mail clients drop `<style>`
 * blocks and never run scripts). Every value from the store is escaped in the HTML, and the text has one
 * fact per line so that it reads in any client.
 */
export function renderInsightsEmail(report: InsightsReport, baseUrl: string): RenderedEmail {
  const links = reportLinks(baseUrl, report);
  const sections = buildSections(report, links);
  const title = `Tokenwise ${report.period.kind === 'week' ? 'weekly' : 'daily'} insights: ${report.workspace.name}`;
  const current = report.totals.current;
  const subject = `${title}: ${formatUsd(current.costUsd)} (${formatChange(current.costUsd, report.totals.previous.costUsd)}), ${formatCount(current.calls)} calls`;
  return { subject, text: renderText(title, report, sections, links), html: renderHtml(title, report, sections, links) };
}

/** One block of the email: a heading, lines of text, and an optional table that the HTML shows as such. */
interface Section {
  heading: string;
  lines: { text: string; link?: string }[];
  /** `numeric` flags the columns the HTML aligns right. */
  table?: { columns: string[]; numeric: boolean[]; rows: { cells: string[]; link?: string }[] };
}

function buildSections(report: InsightsReport, links: ReportLinks): Section[] {
  const { current, previous } = report.totals;
  const sections: Section[] = [
    {
      heading: 'Summary',
      lines: [
        {
          text: `Spend: ${formatUsd(current.costUsd)} (${formatChange(current.costUsd, previous.costUsd)}; before: ${formatUsd(previous.costUsd)})`,
        },
        {
          text: `Calls: ${formatCount(current.calls)} (${formatChange(current.calls, previous.calls)}; before: ${formatCount(previous.calls)})`,
        },
        {
          text: `Errors: ${formatCount(current.errors)} (${formatRate(current.errors, current.calls)} of calls; before: ${formatRate(previous.errors, previous.calls)})`,
        },
        {
          text: `Refusals: ${formatCount(current.refusals)} (${formatRate(current.refusals, current.calls)} of calls; before: ${formatRate(previous.refusals, previous.calls)})`,
        },
        { text: `Sessions: ${formatCount(current.sessions)}` },
        ...costNotes(current),
      ],
    },
  ];

  for (const [heading, rows] of [
    ['Cost by tool', report.byTool],
    ['Cost by model', report.byModel],
    ['Cost by person', report.byPerson],
  ] as const) {
    if (rows.length === 0) continue;
    sections.push({ heading, lines: [], table: breakdownTable(rows) });
  }

  if (report.topSessions.length > 0) {
    sections.push({
      heading: 'Top sessions by cost',
      lines: [],
      table: {
        columns: ['Session', 'Tool', 'Cost', 'Calls', 'Errors'],
        numeric: [false, false, true, true, true],
        rows: report.topSessions.map((session) => ({
          cells: [
            session.sessionId,
            session.tool ?? '–',
            formatUsd(session.costUsd),
            formatCount(session.calls),
            formatCount(session.errors),
          ],
          link: links.session(session.sessionId),
        })),
      },
    });
  }

  sections.push(promptSection(report, links));

  if (report.outcomes.length > 0) {
    sections.push({
      heading: 'Errors and refusals by tool',
      lines: [{ text: 'Failing calls of the period', link: links.errors }],
      table: {
        columns: ['Tool', 'Calls', 'Errors', 'Error rate', 'Before', 'Refusals', 'Refusal rate', 'Before'],
        numeric: [false, true, true, true, true, true, true, true],
        rows: report.outcomes.map((outcome) => ({
          cells: [
            outcome.tool,
            formatCount(outcome.calls),
            formatCount(outcome.errors),
            formatRate(outcome.errors, outcome.calls),
            formatRate(outcome.previousErrors, outcome.previousCalls),
            formatCount(outcome.refusals),
            formatRate(outcome.refusals, outcome.calls),
            formatRate(outcome.previousRefusals, outcome.previousCalls),
          ],
        })),
      },
    });
  }

  sections.push(checksSection(report));

  sections.push({
    heading: 'Unusual days',
    lines:
      report.anomalies.length === 0
        ? [{ text: 'No day spent far above the usual (3 times the median of the 28 days before, and at least $1).' }]
        : report.anomalies.map((anomaly) => ({
            text: `${formatDay(anomaly.day)}: ${formatUsd(anomaly.costUsd)}, ${
              anomaly.ratio === null
                ? 'where a usual day spends nothing'
                : `${anomaly.ratio}× the usual ${formatUsd(anomaly.typicalUsd)} a day`
            }`,
          })),
  });

  const judge = report.judge;
  if (judge) {
    const lines: Section['lines'] = [
      {
        text: `${formatCount(judge.scored)} calls scored by ${judge.model}${
          judge.averageScore === null ? '' : `, average ${formatScore(judge.averageScore)} of 10`
        }; ${formatCount(judge.failing)} below the pass score of ${formatScore(judge.passScore)}${
          judge.failedJudgings > 0 ? `; ${formatCount(judge.failedJudgings)} could not be scored` : ''
        }.`,
      },
      { text: `The judge's own calls: ${formatCount(judge.calls)}, costing ${formatUsd(judge.costUsd)}.` },
    ];
    if (!judge.enabled) lines.push({ text: 'The judge is off now.' });
    sections.push({
      heading: 'LLM judge',
      lines,
      ...(judge.lowest.length > 0 && {
        table: {
          columns: ['Call', 'Score', 'Reason'],
          numeric: [false, true, false],
          rows: judge.lowest.map((scored) => ({
            cells: [formatTime(scored.callStartedAt), `${formatScore(scored.score)} of 10`, scored.reason ?? '–'],
            link: links.call(scored.callId),
          })),
        },
      }),
    });
  }
  return sections;
}

function promptSection(report: InsightsReport, links: ReportLinks): Section {
  if (report.promptChanges.length === 0) {
    return { heading: 'New prompt versions and drifts', lines: [{ text: 'No prompt changed in this period.' }] };
  }
  return {
    heading: 'New prompt versions and drifts',
    lines: report.promptChanges.map((change) => ({ text: describePromptChange(change), link: links.prompts(change.groupId) })),
  };
}

/** One line per change; in privacy mode the prompt's own first line is left out and the tool stands for it. */
function describePromptChange(change: ReportPromptChange): string {
  const name = change.groupName ?? `${change.tool} prompt`;
  const versions = change.toolVersion ? ` (${change.previousToolVersion ?? '?'} to ${change.toolVersion})` : '';
  if (change.kind === 'metric_shift' && change.metric) {
    const before = change.costPerCallBefore;
    const by =
      change.metric.changePct === null
        ? 'changed'
        : `${change.metric.changePct > 0 ? 'rose' : 'fell'} ${Math.abs(change.metric.changePct)}%`;
    const cost =
      change.metric.label === 'cost per call' && before !== null && change.costPerCallAfter !== null
        ? ` (${formatMetric('cost_per_call_usd', before)} to ${formatMetric('cost_per_call_usd', change.costPerCallAfter)})`
        : '';
    return `Drift: ${change.metric.label} of ${name} ${by}${cost} after the prompt changed${versions}.`;
  }
  const cost =
    change.costPerCallBefore !== null && change.costPerCallAfter !== null
      ? `cost per call ${formatMetric('cost_per_call_usd', change.costPerCallBefore)} to ${formatMetric('cost_per_call_usd', change.costPerCallAfter)} (${formatChange(change.costPerCallAfter, change.costPerCallBefore)})`
      : 'cost per call not known yet';
  const diff = change.diff
    ? `; ${change.diff.linesAdded} instruction lines added, ${change.diff.linesRemoved} removed${
        change.diff.toolsAdded.length > 0 ? `, tools added: ${change.diff.toolsAdded.join(', ')}` : ''
      }${change.diff.toolsRemoved.length > 0 ? `, tools removed: ${change.diff.toolsRemoved.join(', ')}` : ''}`
    : '';
  return `New prompt version of ${name}${versions}, first seen ${formatTime(change.observedAt)}: ${cost}, ${formatCount(change.callsAfter)} calls since${diff}.`;
}

const CHECK_LABELS: Record<string, string> = {
  provider_error: 'Provider errors',
  refusal: 'Refusals',
  max_tokens: 'Answers cut at max tokens',
  stream_cut: 'Cut streams',
  tool_error: 'Failed tool calls',
  retry: 'Repeated requests',
  slow: 'Slow calls',
};

/** The deterministic checks of the insights job that read the request body count only calls that kept it. */
const BODY_CHECKS = new Set(['tool_error', 'retry']);

function checksSection(report: InsightsReport): Section {
  const { current, previous } = report.checks;
  const ids = Object.keys(CHECK_LABELS).filter((id) => (current.failed[id] ?? 0) > 0 || (previous.failed[id] ?? 0) > 0);
  const base = (checks: InsightsReport['checks']['current'], id: string) => (BODY_CHECKS.has(id) ? checks.bodyCalls : checks.calls);
  if (ids.length === 0) {
    return { heading: 'Failed checks', lines: [{ text: `No check failed on the ${formatCount(current.calls)} calls checked.` }] };
  }
  return {
    heading: 'Failed checks',
    lines: [{ text: `${formatCount(current.calls)} calls checked (before: ${formatCount(previous.calls)}).` }],
    table: {
      columns: ['Check', 'Failed', 'Rate', 'Before', 'Rate before'],
      numeric: [false, true, true, true, true],
      rows: ids.map((id) => ({
        cells: [
          CHECK_LABELS[id]!,
          formatCount(current.failed[id] ?? 0),
          formatRate(current.failed[id] ?? 0, base(current, id)),
          formatCount(previous.failed[id] ?? 0),
          formatRate(previous.failed[id] ?? 0, base(previous, id)),
        ],
      })),
    },
  };
}

function costNotes(totals: ReportTotals): Section['lines'] {
  const notes: Section['lines'] = [];
  if (totals.apiEquivalentUsd > 0) {
    notes.push({
      text: `Of the spend, ${formatUsd(totals.apiEquivalentUsd)} is subscription traffic priced at API rates, not billed per token.`,
    });
  }
  if (totals.unpricedCalls > 0) notes.push({ text: `${formatCount(totals.unpricedCalls)} calls have no known cost and count as $0.` });
  return notes;
}

function breakdownTable(rows: readonly ReportRow[]): NonNullable<Section['table']> {
  return {
    columns: ['Name', 'Cost', 'Change', 'Calls', 'Change'],
    numeric: [false, true, true, true, true],
    rows: rows.map((row) => ({
      cells: [
        row.label,
        formatUsd(row.current.costUsd),
        formatChange(row.current.costUsd, row.previous.costUsd),
        formatCount(row.current.calls),
        formatChange(row.current.calls, row.previous.calls),
      ],
    })),
  };
}

function renderText(title: string, report: InsightsReport, sections: Section[], links: ReportLinks): string {
  const out: string[] = [title, periodLine(report), ''];
  for (const section of sections) {
    out.push(section.heading, '-'.repeat(section.heading.length));
    for (const line of section.lines) {
      out.push(line.text);
      if (line.link) out.push(`  ${line.link}`);
    }
    if (section.table) out.push(...textTable(section.table));
    out.push('');
  }
  out.push(`Dashboard: ${links.overview}`);
  if (report.workspace.privacyMode) out.push('Privacy mode is on for this workspace, so this email shows figures only.');
  out.push(`Change how often you get this email: ${links.settings}`, '');
  return out.join('\n');
}

/** Lay a table out in aligned columns, with a row's link on the line below it. */
function textTable(table: NonNullable<Section['table']>): string[] {
  const widths = table.columns.map((column, index) =>
    Math.min(40, Math.max(column.length, ...table.rows.map((row) => oneLine(row.cells[index] ?? '').length))),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, index) => {
        const text = oneLine(cell);
        // The last column (a reason, say) may run on instead of being cut.
        return index === cells.length - 1 ? text : clip(text, widths[index]!).padEnd(widths[index]!);
      })
      .join('  ')
      .trimEnd();
  const lines = [`  ${line(table.columns)}`];
  for (const row of table.rows) {
    lines.push(`  ${line(row.cells)}`);
    if (row.link) lines.push(`    ${row.link}`);
  }
  return lines;
}

/** Inline styles of the HTML email; single quotes only, because each sits in a double-quoted attribute. */
const STYLE = {
  body: "margin:0;padding:24px;background:#f5f6f8;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1d2330;",
  card: 'max-width:720px;margin:0 auto;background:#ffffff;border:1px solid #dfe3ea;border-radius:8px;padding:24px;',
  h1: 'font-size:20px;margin:0 0 4px;',
  h2: 'font-size:16px;margin:24px 0 8px;',
  muted: 'color:#5c6577;font-size:13px;margin:0;',
  p: 'margin:4px 0;font-size:14px;line-height:1.45;',
  table: 'border-collapse:collapse;width:100%;font-size:13px;margin-top:6px;',
  th: 'text-align:left;padding:6px 8px;border-bottom:2px solid #dfe3ea;color:#5c6577;font-weight:600;',
  td: 'padding:6px 8px;border-bottom:1px solid #eef0f4;vertical-align:top;',
  link: 'color:#2457c5;',
  button: 'display:inline-block;background:#2457c5;color:#ffffff;text-decoration:none;padding:8px 14px;border-radius:6px;font-size:14px;',
};

function renderHtml(title: string, report: InsightsReport, sections: Section[], links: ReportLinks): string {
  const parts: string[] = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title></head>`,
    `<body style="${STYLE.body}"><div style="${STYLE.card}">`,
    `<h1 style="${STYLE.h1}">${escapeHtml(title)}</h1>`,
    `<p style="${STYLE.muted}">${escapeHtml(periodLine(report))}</p>`,
  ];
  for (const section of sections) {
    parts.push(`<h2 style="${STYLE.h2}">${escapeHtml(section.heading)}</h2>`);
    for (const line of section.lines) {
      parts.push(
        line.link
          ? `<p style="${STYLE.p}"><a style="${STYLE.link}" href="${escapeHtml(line.link)}">${escapeHtml(line.text)}</a></p>`
          : `<p style="${STYLE.p}">${escapeHtml(line.text)}</p>`,
      );
    }
    if (section.table) parts.push(htmlTable(section.table));
  }
  parts.push(`<p style="margin:24px 0 8px;"><a style="${STYLE.button}" href="${escapeHtml(links.overview)}">Open the dashboard</a></p>`);
  if (report.workspace.privacyMode) {
    parts.push(`<p style="${STYLE.muted}">Privacy mode is on for this workspace, so this email shows figures only.</p>`);
  }
  parts.push(
    `<p style="${STYLE.muted}"><a style="${STYLE.link}" href="${escapeHtml(links.settings)}">Change how often you get this email</a></p>`,
    '</div></body></html>',
  );
  return parts.join('\n');
}

function htmlTable(table: NonNullable<Section['table']>): string {
  const head = table.columns
    .map((column, index) => `<th style="${STYLE.th}${table.numeric[index] ? 'text-align:right;' : ''}">${escapeHtml(column)}</th>`)
    .join('');
  const rows = table.rows
    .map((row) => {
      const cells = row.cells
        .map((cell, index) => {
          const content =
            index === 0 && row.link ? `<a style="${STYLE.link}" href="${escapeHtml(row.link)}">${escapeHtml(cell)}</a>` : escapeHtml(cell);
          const align = table.numeric[index] ? 'text-align:right;' : '';
          return `<td style="${STYLE.td}${align}">${content}</td>`;
        })
        .join('');
      return `<tr>${cells}</tr>`;
    })
    .join('\n');
  return `<table role="presentation" style="${STYLE.table}"><thead><tr>${head}</tr></thead><tbody>\n${rows}\n</tbody></table>`;
}

function periodLine(report: InsightsReport): string {
  const from = new Date(report.period.from);
  const lastDay = new Date(Date.parse(report.period.to) - 86_400_000);
  const span =
    report.period.kind === 'week'
      ? `${formatDay(from.toISOString())} to ${formatDay(lastDay.toISOString())}`
      : formatDay(from.toISOString());
  return `${span} (UTC), compared with the ${report.period.kind} before.`;
}

/** USD with cents; amounts under a cent show as such, so a small cost never reads as free. */
export function formatUsd(usd: number): string {
  if (usd > 0 && usd < 0.005) return '<$0.01';
  return `$${usd.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

export function formatCount(count: number): string {
  return count.toLocaleString('en-US');
}

/** Relative change from `before` to `now`, e.g. `+23%`; `new` when there was nothing before. */
export function formatChange(now: number, before: number): string {
  if (before === 0) return now === 0 ? 'no change' : 'new';
  const percent = Math.round(((now - before) / before) * 100);
  if (percent === 0) {
    if (now === before) return 'no change';
    return now > before ? '+<1%' : '−<1%';
  }
  return percent > 0 ? `+${percent}%` : `−${Math.abs(percent)}%`;
}

export function formatRate(part: number, whole: number): string {
  if (whole === 0) return '–';
  return `${((part / whole) * 100).toFixed(1)}%`;
}

function formatScore(score: number): string {
  return Number.isInteger(score) ? String(score) : score.toFixed(1);
}

function formatDay(iso: string): string {
  return new Date(iso).toLocaleDateString('en-US', { timeZone: 'UTC', weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
}

function formatTime(iso: string): string {
  return `${new Date(iso).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function clip(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}
