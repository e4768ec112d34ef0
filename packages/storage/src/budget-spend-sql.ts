import type { SqlStep } from './sql-runner.js';

const DAY_MS = 86_400_000;

/** The budget cost kind of a call row `c`; null for a call that counts toward no budget. */
const COST_KIND = `CASE WHEN c.cost_basis IN ('exact', 'partial') THEN 'api' WHEN c.cost_basis = 'api_equivalent' THEN 'api_equivalent' END`;

/**
 * Build the statement that adds the cost of the calls matching `callCondition` (a condition on `calls c`)
 * to the spend counters: per UTC day, once for the workspace, once for the device and once for the
 * device's person. `sign` is an SQL expression, 1 to add and -1 to take a cost back out when a call is
 * re-priced. Runs unchanged on SQLite and PostgreSQL; rows are grouped first because PostgreSQL's upsert
 * may not touch one row twice in a statement.
 */
export function spendUpsertSql(sign: string, callCondition: string): string {
  const charges = (scope: string, scopeId: string, join: string, condition: string) =>
    `SELECT c.workspace_id AS workspace_id, '${scope}' AS scope, ${scopeId} AS scope_id, ${COST_KIND} AS cost_kind,
       c.started_at_ms - (c.started_at_ms % ${DAY_MS}) AS day_ms, ${sign} * c.cost_usd AS usd
     FROM calls c ${join}
     WHERE ${callCondition} AND c.workspace_id IS NOT NULL AND c.cost_usd > 0
       AND c.cost_basis IN ('exact', 'partial', 'api_equivalent')${condition}`;
  return `INSERT INTO budget_spend (workspace_id, scope, scope_id, cost_kind, day_ms, usd, max_call_usd)
    SELECT workspace_id, scope, scope_id, cost_kind, day_ms, SUM(usd), MAX(usd) FROM (
      ${charges('workspace', "''", '', '')}
      UNION ALL
      ${charges('device', 'c.device_id', '', ' AND c.device_id IS NOT NULL')}
      UNION ALL
      ${charges('user', 'd.user_id', 'JOIN devices d ON d.id = c.device_id', ' AND d.user_id IS NOT NULL')}
    ) AS charges WHERE true
    GROUP BY workspace_id, scope, scope_id, cost_kind, day_ms
    ON CONFLICT (workspace_id, scope, scope_id, cost_kind, day_ms) DO UPDATE SET
      usd = budget_spend.usd + excluded.usd,
      max_call_usd = CASE WHEN excluded.max_call_usd > budget_spend.max_call_usd THEN excluded.max_call_usd ELSE budget_spend.max_call_usd END`;
}

/** The statement for one call by id with `?` placeholders: its params are `[sign, id]` for each of the three scopes. */
const ONE_CALL_SPEND_SQL = spendUpsertSql('?', 'c.id = ?');

/** Build a step that adds (`sign` 1) or takes back (`sign` -1) the current cost of one stored call in the spend counters. */
export function oneCallSpendStep(id: string, sign: 1 | -1): SqlStep {
  return { sql: ONE_CALL_SPEND_SQL, params: [sign, id, sign, id, sign, id] };
}
