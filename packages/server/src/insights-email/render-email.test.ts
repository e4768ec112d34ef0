import { describe, expect, it } from 'vitest';
import { escapeHtml, formatChange, formatRate, formatUsd, renderInsightsEmail } from './render-email.js';
import type { InsightsReport } from './report-data.js';

const NO_CHECKS = { calls: 0, bodyCalls: 0, failed: {} };

function report(overrides: Partial<InsightsReport> = {}): InsightsReport {
  return {
    workspace: { id: 'ws-1', name: 'Team <b>"A"</b>', privacyMode: false },
    period: { kind: 'week', from: '2026-11-30T00:00:00.000Z', to: '2026-12-07T00:00:00.000Z', previousFrom: '2026-11-23T00:00:00.000Z' },
    totals: {
      current: { calls: 1234, costUsd: 12.5, apiUsd: 10, apiEquivalentUsd: 2.5, errors: 12, refusals: 3, sessions: 7, unpricedCalls: 0 },
      previous: { calls: 1000, costUsd: 10, apiUsd: 10, apiEquivalentUsd: 0, errors: 5, refusals: 0, sessions: 5, unpricedCalls: 0 },
    },
    byTool: [{ key: 'claude-code', label: 'claude-code', current: { calls: 1234, costUsd: 12.5 }, previous: { calls: 1000, costUsd: 10 } }],
    byModel: [],
    byPerson: [{ key: 'u1', label: 'Ada <script>', current: { calls: 1, costUsd: 0.001 }, previous: { calls: 0, costUsd: 0 } }],
    topSessions: [
      {
        sessionId: 'sess/<1>',
        tool: 'claude-code',
        calls: 40,
        errors: 1,
        costUsd: 3.21,
        firstCallAt: '2026-12-01T10:00:00.000Z',
        lastCallAt: '2026-12-01T11:00:00.000Z',
      },
    ],
    outcomes: [{ tool: 'claude-code', calls: 1234, errors: 12, refusals: 3, previousCalls: 1000, previousErrors: 5, previousRefusals: 0 }],
    anomalies: [{ day: '2026-12-02T00:00:00.000Z', costUsd: 9, typicalUsd: 2, ratio: 4.5 }],
    promptChanges: [],
    checks: { current: NO_CHECKS, previous: NO_CHECKS },
    judge: null,
    ...overrides,
  };
}

describe('renderInsightsEmail', () => {
  it('states the totals against the period before', () => {
    const email = renderInsightsEmail(report(), 'https://tokenwise.example.com');

    expect(email.subject).toBe('Tokenwise weekly insights: Team <b>"A"</b>: $12.50 (+25%), 1,234 calls');
    expect(email.text).toContain('Spend: $12.50 (+25%; before: $10.00)');
    expect(email.text).toContain('Calls: 1,234 (+23%; before: 1,000)');
    expect(email.text).toContain('Errors: 12 (1.0% of calls; before: 0.5%)');
    expect(email.text).toContain('Refusals: 3 (0.2% of calls; before: 0.0%)');
    expect(email.text).toContain('Of the spend, $2.50 is subscription traffic priced at API rates');
    expect(email.text).toContain('Wed, Dec 2, 2026: $9.00, 4.5× the usual $2.00 a day');
  });

  it('escapes every stored value in the HTML', () => {
    const { html } = renderInsightsEmail(report(), 'https://tokenwise.example.com');

    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<b>"A"</b>');
    expect(html).toContain('Team &#60;b&#62;&#34;A&#34;&#60;/b&#62;');
    expect(html).toContain('Ada &#60;script&#62;');
    expect(html).toContain('href="https://tokenwise.example.com/sessions/sess%2F%3C1%3E"');
  });

  it('keeps every inline style whole', () => {
    const { html } = renderInsightsEmail(report(), 'https://tokenwise.example.com');
    const styles = [...html.matchAll(/style="([^"]*)"/g)].map((match) => match[1]);

    expect(styles.length).toBeGreaterThan(10);
    for (const style of styles) expect(style).toMatch(/;$/);
  });

  it('links into the dashboard for the period', () => {
    const { text } = renderInsightsEmail(report(), 'https://tokenwise.example.com/');

    expect(text).toContain('Dashboard: https://tokenwise.example.com/?from=2026-11-30T00%3A00%3A00.000Z&to=2026-12-07T00%3A00%3A00.000Z');
    expect(text).toContain('https://tokenwise.example.com/calls?status=error&from=2026-11-30T00%3A00%3A00.000Z');
    expect(text).toContain('Change how often you get this email: https://tokenwise.example.com/settings#insights-email');
  });

  it('leaves prompt text out in privacy mode', () => {
    const change = {
      kind: 'version_change' as const,
      groupId: 'g1',
      versionId: 'v2',
      observedAt: '2026-12-03T12:00:00.000Z',
      tool: 'claude-code',
      groupName: null,
      toolVersion: '2.1.198',
      previousToolVersion: '2.1.197',
      costPerCallBefore: 0.02,
      costPerCallAfter: 0.03,
      callsBefore: 10,
      callsAfter: 12,
      diff: { linesAdded: 2, linesRemoved: 1, toolsAdded: ['WebFetch'], toolsRemoved: [], toolsChanged: [] },
      metric: null,
    };
    const { text } = renderInsightsEmail(
      report({ workspace: { id: 'ws-1', name: 'Team', privacyMode: true }, promptChanges: [change] }),
      'https://t.example.com',
    );

    expect(text).toContain(
      'New prompt version of claude-code prompt (2.1.197 to 2.1.198), first seen 2026-12-03 12:00 UTC: cost per call $0.020 to $0.030 (+50%), 12 calls since; 2 instruction lines added, 1 removed, tools added: WebFetch.',
    );
    expect(text).toContain('Privacy mode is on for this workspace, so this email shows figures only.');
  });
});

describe('figure formats', () => {
  it.each([
    [12.5, 10, '+25%'],
    [8, 10, '−20%'],
    [5, 0, 'new'],
    [0, 0, 'no change'],
    [1001, 1000, '+<1%'],
  ])('formats the change from %d to %d', (now, before, expected) => {
    expect(formatChange(now, before)).toBe(expected);
  });

  it('never shows a small cost as free', () => {
    expect(formatUsd(0.001)).toBe('<$0.01');
    expect(formatUsd(0)).toBe('$0.00');
    expect(formatUsd(1234.567)).toBe('$1,234.57');
  });

  it('shows a rate of nothing as a dash', () => {
    expect(formatRate(1, 0)).toBe('–');
    expect(formatRate(1, 3)).toBe('33.3%');
  });

  it('escapes quotes and angle brackets', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
  });
});
