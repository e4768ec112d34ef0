import { TokenwiseError } from '@tokenwise/core';
import type { PoolClient } from 'pg';
import { type Migration, type MigrationResult, newestVersion } from './migrations.js';

/**
 * First key of the advisory locks Tokenwise takes, one per purpose. The second key is the hash of the
 * schema, so installations in different schemas of one database do not wait for each other (unless their names
 * happen to share a hash).
 */
export const ADVISORY_LOCKS = {
  migrate: 0x746b0001,
  insertCalls: 0x746b0002,
  named: 0x746b0003,
} as const;

/**
 * The PostgreSQL schema, append-only like the SQLite one and with the same version numbers: version N here
 * has the tables and columns of SQLite's version N, so rows copy between the two.
 *
 * The types differ where PostgreSQL has a better one: BOOLEAN for flags, BIGINT for counts and times in
 * ms, DOUBLE PRECISION for SQLite's REAL, BYTEA for the gzip bodies. JSON columns stay TEXT, because JSONB
 * would reorder object keys and the record must read back byte for byte. Times stay ISO 8601 TEXT as in
 * SQLite, with `started_at_ms` for ordering and ranges. `seq` is an identity column; see `insertCalls`
 * for why cursors into it follow commit order.
 */
export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE workspaces (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        keep_bodies BOOLEAN NOT NULL DEFAULT TRUE,
        created_at TEXT NOT NULL
      );

      CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces (id),
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
      );

      CREATE TABLE route_tokens (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces (id),
        device_id TEXT REFERENCES devices (id),
        name TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        last_used_at TEXT
      );

      CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces (id),
        name TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        last_used_at TEXT
      );

      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );

      CREATE TABLE calls (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        started_at TEXT NOT NULL,
        started_at_ms BIGINT NOT NULL,
        workspace_id TEXT,
        device_id TEXT,
        route TEXT NOT NULL,
        provider TEXT NOT NULL,
        api_shape TEXT,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        tool TEXT NOT NULL,
        tool_version TEXT,
        user_agent TEXT,
        session_id TEXT,
        stream_requested BOOLEAN NOT NULL,
        streaming BOOLEAN NOT NULL,
        stream_format TEXT,
        model_requested TEXT,
        model_answered TEXT,
        http_status INTEGER,
        status TEXT NOT NULL,
        error_type TEXT,
        error_message TEXT,
        error_source TEXT,
        error_retry_after_s DOUBLE PRECISION,
        billable BOOLEAN NOT NULL,
        input_tokens BIGINT,
        uncached_input_tokens BIGINT,
        cache_read_tokens BIGINT,
        cache_write_tokens BIGINT,
        cache_write_5m_tokens BIGINT,
        cache_write_1h_tokens BIGINT,
        output_tokens BIGINT,
        reasoning_tokens BIGINT,
        web_search_requests BIGINT,
        stop_reason TEXT,
        stop_reasons TEXT,
        stop_reason_normalized TEXT,
        tool_calls INTEGER NOT NULL,
        server_tool_calls TEXT NOT NULL,
        ttft_ms DOUBLE PRECISION,
        total_ms DOUBLE PRECISION NOT NULL,
        headers_ms DOUBLE PRECISION,
        upstream_request_id TEXT,
        response_id TEXT,
        cost_usd DOUBLE PRECISION,
        cost_basis TEXT NOT NULL,
        cost_price_key TEXT,
        cost_breakdown TEXT NOT NULL,
        price_data_version TEXT,
        request_bytes BIGINT NOT NULL,
        response_bytes BIGINT NOT NULL
      );

      CREATE INDEX calls_by_start ON calls (started_at_ms DESC, seq DESC);
      CREATE INDEX calls_by_workspace_start ON calls (workspace_id, started_at_ms DESC);
      CREATE INDEX calls_by_session ON calls (session_id, started_at_ms) WHERE session_id IS NOT NULL;

      CREATE TABLE call_bodies (
        call_id TEXT PRIMARY KEY REFERENCES calls (id),
        request_kept BOOLEAN NOT NULL,
        request_body BYTEA,
        request_bytes BIGINT,
        request_truncated BOOLEAN,
        request_content_type TEXT,
        request_encoding_error TEXT,
        response_kept BOOLEAN NOT NULL,
        response_body BYTEA,
        response_bytes BIGINT,
        response_truncated BOOLEAN,
        response_content_type TEXT,
        response_encoding_error TEXT,
        request_headers TEXT NOT NULL,
        response_headers TEXT NOT NULL
      );
    `,
  },
  // Accounts, sessions, invites, password resets, device pairing (RFC 8628), device details and privacy
  // settings. memberships, sessions and password_resets reference users; the rest stay loose like calls.
  {
    version: 2,
    name: 'accounts and device pairing',
    sql: `
      ALTER TABLE workspaces ADD COLUMN body_retention_days BIGINT;
      ALTER TABLE devices ADD COLUMN os TEXT;
      ALTER TABLE devices ADD COLUMN user_id TEXT;
      ALTER TABLE devices ADD COLUMN last_seen_at TEXT;
      ALTER TABLE devices ADD COLUMN privacy_mode BOOLEAN NOT NULL DEFAULT FALSE;
      ALTER TABLE devices ADD COLUMN revoked_at TEXT;
      ALTER TABLE api_tokens ADD COLUMN user_id TEXT;

      CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        password_changed_at TEXT NOT NULL
      );

      CREATE TABLE memberships (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces (id),
        user_id TEXT NOT NULL REFERENCES users (id),
        role TEXT NOT NULL CHECK (role IN ('owner', 'member')),
        created_at TEXT NOT NULL,
        UNIQUE (workspace_id, user_id)
      );
      CREATE INDEX memberships_by_user ON memberships (user_id);

      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users (id),
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        user_agent TEXT
      );

      CREATE TABLE invites (
        id TEXT PRIMARY KEY,
        workspace_id TEXT REFERENCES workspaces (id),
        role TEXT NOT NULL CHECK (role IN ('owner', 'member')),
        email TEXT,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_by TEXT,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        accepted_at TEXT,
        accepted_by TEXT,
        revoked_at TEXT
      );

      CREATE TABLE password_resets (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users (id),
        token_sha256 TEXT NOT NULL UNIQUE,
        created_by TEXT,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT
      );

      CREATE TABLE device_codes (
        id TEXT PRIMARY KEY,
        device_code_sha256 TEXT NOT NULL UNIQUE,
        user_code TEXT NOT NULL UNIQUE,
        device_name TEXT NOT NULL,
        os TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'issued')),
        workspace_id TEXT,
        user_id TEXT,
        device_id TEXT,
        interval_s INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        last_polled_at TEXT
      );

      -- Every route token belongs to a device: tokens made before devices were tracked get one each.
      INSERT INTO devices (id, workspace_id, name, created_at)
        SELECT 'device-' || id, workspace_id, name, created_at FROM route_tokens WHERE device_id IS NULL;
      UPDATE route_tokens SET device_id = 'device-' || id WHERE device_id IS NULL;
      UPDATE devices SET revoked_at = (SELECT max(t.revoked_at) FROM route_tokens t WHERE t.device_id = devices.id)
        WHERE EXISTS (SELECT 1 FROM route_tokens t WHERE t.device_id = devices.id)
          AND NOT EXISTS (SELECT 1 FROM route_tokens t WHERE t.device_id = devices.id AND t.revoked_at IS NULL);

      CREATE INDEX route_tokens_by_device ON route_tokens (device_id);
      CREATE INDEX calls_by_device ON calls (device_id, started_at_ms);
    `,
  },
  // See SQLite's version 3. PostgreSQL's keyset order needs `seq` in the index, which SQLite's rowid gives
  // every index for free.
  {
    version: 3,
    name: 'dashboard',
    sql: `
      ALTER TABLE calls ADD COLUMN proxy_before_ms DOUBLE PRECISION;
      ALTER TABLE calls ADD COLUMN proxy_after_ms DOUBLE PRECISION;
      ALTER TABLE calls ADD COLUMN price_source TEXT;
      ALTER TABLE workspaces ADD COLUMN redact_bodies BOOLEAN NOT NULL DEFAULT TRUE;

      CREATE TABLE call_prompts (
        call_id TEXT PRIMARY KEY REFERENCES calls (id),
        text TEXT NOT NULL
      );

      CREATE TABLE call_rate_limits (
        call_id TEXT PRIMARY KEY REFERENCES calls (id),
        workspace_id TEXT,
        device_id TEXT,
        route TEXT NOT NULL,
        tool TEXT NOT NULL,
        provider TEXT NOT NULL,
        started_at_ms BIGINT NOT NULL,
        headers TEXT NOT NULL
      );
      CREATE INDEX call_rate_limits_latest ON call_rate_limits (workspace_id, device_id, route, tool, started_at_ms);

      CREATE TABLE custom_prices (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces (id),
        model TEXT NOT NULL,
        provider TEXT,
        effective_from TEXT NOT NULL,
        effective_from_ms BIGINT NOT NULL,
        input_mtok DOUBLE PRECISION NOT NULL,
        output_mtok DOUBLE PRECISION NOT NULL,
        cache_read_mtok DOUBLE PRECISION,
        cache_write_mtok DOUBLE PRECISION,
        cache_write_1h_mtok DOUBLE PRECISION,
        created_at TEXT NOT NULL,
        created_by TEXT
      );
      CREATE INDEX custom_prices_by_model ON custom_prices (workspace_id, model, effective_from_ms);

      CREATE INDEX calls_by_workspace_start_seq ON calls (workspace_id, started_at_ms DESC, seq DESC);
      CREATE INDEX calls_by_workspace_session ON calls (workspace_id, session_id, started_at_ms) WHERE session_id IS NOT NULL;
      CREATE INDEX calls_by_workspace_tool ON calls (workspace_id, tool, started_at_ms);
    `,
  },
  // See SQLite's version 4.
  {
    version: 4,
    name: 'budgets and alerts',
    sql: `
      ALTER TABLE workspaces ADD COLUMN budgets_fail_closed BOOLEAN NOT NULL DEFAULT FALSE;

      CREATE TABLE budgets (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces (id),
        name TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('workspace', 'device', 'user')),
        -- The device or user id; '' for a workspace budget, so it can be part of keys.
        scope_id TEXT NOT NULL,
        cost_kind TEXT NOT NULL CHECK (cost_kind IN ('api', 'api_equivalent')),
        period TEXT NOT NULL CHECK (period IN ('day', 'week', 'month')),
        amount_usd DOUBLE PRECISION NOT NULL,
        alert_threshold DOUBLE PRECISION,
        action TEXT NOT NULL CHECK (action IN ('alert', 'block')),
        webhook_url TEXT,
        -- A JSON array of addresses.
        email_to TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX budgets_by_workspace ON budgets (workspace_id, created_at);

      CREATE TABLE budget_spend (
        workspace_id TEXT NOT NULL,
        scope TEXT NOT NULL,
        scope_id TEXT NOT NULL,
        cost_kind TEXT NOT NULL,
        -- Start of the UTC day, in ms since the epoch.
        day_ms BIGINT NOT NULL,
        usd DOUBLE PRECISION NOT NULL,
        max_call_usd DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (workspace_id, scope, scope_id, cost_kind, day_ms)
      );

      CREATE TABLE budget_leases (
        budget_id TEXT NOT NULL,
        period_start_ms BIGINT NOT NULL,
        holder_id TEXT NOT NULL,
        reserved_usd DOUBLE PRECISION NOT NULL,
        expires_at_ms BIGINT NOT NULL,
        PRIMARY KEY (budget_id, period_start_ms, holder_id)
      );
      CREATE INDEX budget_leases_by_holder ON budget_leases (holder_id);

      CREATE TABLE budget_alerts (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        budget_id TEXT NOT NULL,
        budget_name TEXT NOT NULL,
        period_start_ms BIGINT NOT NULL,
        level TEXT NOT NULL CHECK (level IN ('threshold', 'limit')),
        spent_usd DOUBLE PRECISION NOT NULL,
        amount_usd DOUBLE PRECISION NOT NULL,
        message TEXT NOT NULL,
        created_at TEXT NOT NULL,
        email_to TEXT NOT NULL,
        webhook_state TEXT NOT NULL CHECK (webhook_state IN ('none', 'pending', 'sent', 'failed')),
        webhook_attempts INTEGER NOT NULL,
        webhook_next_at_ms BIGINT,
        webhook_error TEXT,
        email_state TEXT NOT NULL CHECK (email_state IN ('none', 'pending', 'sent', 'failed')),
        email_attempts INTEGER NOT NULL,
        email_next_at_ms BIGINT,
        email_error TEXT,
        UNIQUE (budget_id, period_start_ms, level)
      );
      CREATE INDEX budget_alerts_by_workspace ON budget_alerts (workspace_id, created_at);

      -- Counters for the calls stored before this version, so budgets count them from the start.
      INSERT INTO budget_spend (workspace_id, scope, scope_id, cost_kind, day_ms, usd, max_call_usd)
        SELECT workspace_id, scope, scope_id, cost_kind, day_ms, SUM(usd), MAX(usd) FROM (
          SELECT c.workspace_id AS workspace_id, 'workspace' AS scope, '' AS scope_id, CASE WHEN c.cost_basis = 'api_equivalent' THEN 'api_equivalent' ELSE 'api' END AS cost_kind,
            c.started_at_ms - (c.started_at_ms % 86400000) AS day_ms, c.cost_usd AS usd
          FROM calls c WHERE c.workspace_id IS NOT NULL AND c.cost_usd > 0 AND c.cost_basis IN ('exact', 'partial', 'api_equivalent')
          UNION ALL
          SELECT c.workspace_id, 'device', c.device_id, CASE WHEN c.cost_basis = 'api_equivalent' THEN 'api_equivalent' ELSE 'api' END, c.started_at_ms - (c.started_at_ms % 86400000), c.cost_usd
          FROM calls c WHERE c.workspace_id IS NOT NULL AND c.cost_usd > 0 AND c.cost_basis IN ('exact', 'partial', 'api_equivalent') AND c.device_id IS NOT NULL
          UNION ALL
          SELECT c.workspace_id, 'user', d.user_id, CASE WHEN c.cost_basis = 'api_equivalent' THEN 'api_equivalent' ELSE 'api' END, c.started_at_ms - (c.started_at_ms % 86400000), c.cost_usd
          FROM calls c JOIN devices d ON d.id = c.device_id WHERE c.workspace_id IS NOT NULL AND c.cost_usd > 0 AND c.cost_basis IN ('exact', 'partial', 'api_equivalent') AND d.user_id IS NOT NULL
        ) AS charges
        GROUP BY workspace_id, scope, scope_id, cost_kind, day_ms;
    `,
  },
  // See SQLite's version 5.
  {
    version: 5,
    name: 'insights',
    sql: `
      CREATE TABLE prompt_groups (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('template', 'not_kept', 'unreadable')),
        template_key TEXT,
        opening TEXT,
        created_at TEXT NOT NULL
      );
      CREATE INDEX prompt_groups_by_workspace ON prompt_groups (workspace_id);

      CREATE TABLE prompt_versions (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        first_call_id TEXT NOT NULL,
        first_seen_ms BIGINT NOT NULL,
        tool_version TEXT,
        system_text TEXT,
        tools_json TEXT,
        tool_count INTEGER NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX prompt_versions_by_group ON prompt_versions (workspace_id, group_id, first_seen_ms);

      CREATE TABLE call_insights (
        call_id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        device_id TEXT,
        session_id TEXT,
        started_at_ms BIGINT NOT NULL,
        group_id TEXT,
        version_id TEXT,
        request_sha256 TEXT
      );
      CREATE INDEX call_insights_by_workspace ON call_insights (workspace_id, started_at_ms);
      CREATE INDEX call_insights_by_group ON call_insights (group_id, started_at_ms);
      CREATE INDEX call_insights_by_version ON call_insights (version_id);
      CREATE INDEX call_insights_by_session ON call_insights (workspace_id, session_id, started_at_ms) WHERE session_id IS NOT NULL;
      CREATE INDEX call_insights_by_request ON call_insights (workspace_id, request_sha256, started_at_ms) WHERE request_sha256 IS NOT NULL;

      CREATE TABLE call_scores (
        id TEXT PRIMARY KEY,
        call_id TEXT NOT NULL,
        scorer TEXT NOT NULL,
        workspace_id TEXT NOT NULL,
        started_at_ms BIGINT NOT NULL,
        passed BOOLEAN NOT NULL,
        value DOUBLE PRECISION,
        detail TEXT NOT NULL
      );
      CREATE INDEX call_scores_by_call ON call_scores (call_id);
      CREATE INDEX call_scores_by_workspace ON call_scores (workspace_id, started_at_ms);

      CREATE TABLE insights (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('version_change', 'metric_shift')),
        group_id TEXT NOT NULL,
        version_id TEXT,
        observed_at_ms BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        summary TEXT NOT NULL,
        details TEXT NOT NULL
      );
      CREATE INDEX insights_by_workspace ON insights (workspace_id, observed_at_ms);

      CREATE TABLE insight_settings (
        workspace_id TEXT PRIMARY KEY,
        latency_target_ms BIGINT NOT NULL,
        metric_shift_pct DOUBLE PRECISION NOT NULL,
        updated_at TEXT NOT NULL
      );
    `,
  },
  // See SQLite's version 6.
  {
    version: 6,
    name: 'hourly call rollups',
    sql: `
      CREATE TABLE call_rollups (
        workspace_id TEXT NOT NULL,
        hour_ms BIGINT NOT NULL,
        tool TEXT NOT NULL,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        route TEXT NOT NULL,
        device_id TEXT NOT NULL,
        status TEXT NOT NULL,
        calls BIGINT NOT NULL,
        cost_usd DOUBLE PRECISION NOT NULL,
        api_usd DOUBLE PRECISION NOT NULL,
        api_equivalent_usd DOUBLE PRECISION NOT NULL,
        input_tokens BIGINT NOT NULL,
        uncached_input_tokens BIGINT NOT NULL,
        cache_read_tokens BIGINT NOT NULL,
        cache_write_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        reasoning_tokens BIGINT NOT NULL,
        unpriced_calls BIGINT NOT NULL,
        unknown_cost_calls BIGINT NOT NULL,
        ratio_read_tokens BIGINT NOT NULL,
        ratio_input_tokens BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, hour_ms, tool, model, provider, route, device_id, status)
      );
      INSERT INTO call_rollups (workspace_id, hour_ms, tool, model, provider, route, device_id, status, calls, cost_usd, api_usd,
          api_equivalent_usd, input_tokens, uncached_input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,
          reasoning_tokens, unpriced_calls, unknown_cost_calls, ratio_read_tokens, ratio_input_tokens)
        SELECT workspace_id, started_at_ms - started_at_ms % 3600000, tool, COALESCE(model_answered, model_requested, ''), provider,
          route, COALESCE(device_id, ''), status, COUNT(*), SUM(COALESCE(cost_usd, 0)),
          SUM(CASE WHEN cost_basis IN ('exact', 'partial') THEN COALESCE(cost_usd, 0) ELSE 0 END),
          SUM(CASE WHEN cost_basis = 'api_equivalent' THEN COALESCE(cost_usd, 0) ELSE 0 END),
          SUM(COALESCE(input_tokens, 0)), SUM(COALESCE(uncached_input_tokens, 0)), SUM(COALESCE(cache_read_tokens, 0)),
          SUM(COALESCE(cache_write_tokens, 0)), SUM(COALESCE(output_tokens, 0)), SUM(COALESCE(reasoning_tokens, 0)),
          SUM(CASE WHEN cost_basis = 'unpriced' THEN 1 ELSE 0 END), SUM(CASE WHEN cost_basis = 'unknown' THEN 1 ELSE 0 END),
          SUM(CASE WHEN input_tokens IS NOT NULL AND cache_read_tokens IS NOT NULL THEN cache_read_tokens ELSE 0 END),
          SUM(CASE WHEN input_tokens IS NOT NULL AND cache_read_tokens IS NOT NULL THEN input_tokens ELSE 0 END)
        FROM calls WHERE workspace_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
      CREATE INDEX calls_by_workspace_tool_model
        ON calls (workspace_id, tool, COALESCE(model_answered, model_requested), started_at_ms DESC, seq DESC);
    `,
  },
  // See SQLite's version 7.
  {
    version: 7,
    name: 'insights email and LLM judge',
    sql: `
      CREATE TABLE insights_email_settings (
        workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
        frequency TEXT NOT NULL CHECK (frequency IN ('weekly', 'daily', 'off')),
        updated_at TEXT NOT NULL,
        updated_by TEXT
      );

      CREATE TABLE insights_email_preferences (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL REFERENCES workspaces (id),
        user_id TEXT NOT NULL REFERENCES users (id),
        frequency TEXT NOT NULL CHECK (frequency IN ('weekly', 'daily', 'off')),
        updated_at TEXT NOT NULL,
        UNIQUE (workspace_id, user_id)
      );

      CREATE TABLE insights_email_sends (
        id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        frequency TEXT NOT NULL CHECK (frequency IN ('weekly', 'daily')),
        period_start TEXT NOT NULL,
        period_end TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed', 'skipped')),
        attempts INTEGER NOT NULL,
        claimed_at_ms BIGINT NOT NULL,
        finished_at TEXT,
        message_id TEXT,
        error TEXT,
        UNIQUE (workspace_id, user_id, frequency, period_start)
      );

      CREATE TABLE judge_settings (
        workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
        enabled BOOLEAN NOT NULL,
        route TEXT NOT NULL,
        model TEXT NOT NULL,
        rubric TEXT NOT NULL,
        sample_rate DOUBLE PRECISION NOT NULL,
        pass_score DOUBLE PRECISION NOT NULL,
        device_id TEXT,
        scan_from_ms BIGINT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT
      );

      CREATE TABLE judge_scores (
        call_id TEXT PRIMARY KEY REFERENCES calls (id),
        workspace_id TEXT NOT NULL,
        call_started_at_ms BIGINT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'scored', 'failed')),
        score DOUBLE PRECISION,
        reason TEXT,
        route TEXT NOT NULL,
        model TEXT NOT NULL,
        response_id TEXT,
        error TEXT,
        attempts INTEGER NOT NULL,
        claimed_at_ms BIGINT NOT NULL,
        finished_at TEXT
      );
      CREATE INDEX judge_scores_by_workspace ON judge_scores (workspace_id, call_started_at_ms);
    `,
  },
  // See SQLite's version 8.
  {
    version: 8,
    name: 'model server timings',
    sql: `
      ALTER TABLE calls ADD COLUMN model_load_ms DOUBLE PRECISION;
      ALTER TABLE calls ADD COLUMN prompt_eval_ms DOUBLE PRECISION;
      ALTER TABLE calls ADD COLUMN eval_ms DOUBLE PRECISION;
    `,
  },
  // See SQLite's version 9.
  {
    version: 9,
    name: 'list order indexes',
    sql: `
      CREATE INDEX devices_by_workspace_created ON devices (workspace_id, created_at, id);
      CREATE INDEX route_tokens_by_workspace_created ON route_tokens (workspace_id, created_at, id);
      CREATE INDEX invites_by_workspace_created ON invites (workspace_id, created_at, id);
      CREATE INDEX memberships_by_workspace_created ON memberships (workspace_id, created_at, id);
      CREATE INDEX api_tokens_by_user_created ON api_tokens (user_id, created_at, id);
      CREATE INDEX custom_prices_by_workspace_effective ON custom_prices (workspace_id, effective_from_ms DESC, created_at DESC, id);

      DROP INDEX budgets_by_workspace;
      CREATE INDEX budgets_by_workspace_created ON budgets (workspace_id, created_at, id);
      DROP INDEX budget_alerts_by_workspace;
      CREATE INDEX budget_alerts_by_workspace_created ON budget_alerts (workspace_id, created_at, id);
      DROP INDEX insights_by_workspace;
      CREATE INDEX insights_by_workspace_observed ON insights (workspace_id, observed_at_ms DESC, id);
    `,
  },
  // See SQLite's version 10.
  {
    version: 10,
    name: 'latency bins and session hours',
    sql: `
      CREATE TABLE call_latency_bins (
        workspace_id TEXT NOT NULL,
        hour_ms BIGINT NOT NULL,
        metric TEXT NOT NULL,
        bin INTEGER NOT NULL,
        calls BIGINT NOT NULL,
        PRIMARY KEY (workspace_id, hour_ms, metric, bin)
      );
      INSERT INTO call_latency_bins (workspace_id, hour_ms, metric, bin, calls)
        SELECT workspace_id, started_at_ms - started_at_ms % 3600000, 'total',
          CASE WHEN total_ms < 1 THEN 0 ELSE CAST(FLOOR(LN(total_ms) / CAST(0.03922071315328133 AS DOUBLE PRECISION)) AS INTEGER) + 1 END, COUNT(*)
        FROM calls WHERE workspace_id IS NOT NULL AND status = 'success' AND total_ms IS NOT NULL GROUP BY 1, 2, 3, 4;
      INSERT INTO call_latency_bins (workspace_id, hour_ms, metric, bin, calls)
        SELECT workspace_id, started_at_ms - started_at_ms % 3600000, 'ttft',
          CASE WHEN ttft_ms < 1 THEN 0 ELSE CAST(FLOOR(LN(ttft_ms) / CAST(0.03922071315328133 AS DOUBLE PRECISION)) AS INTEGER) + 1 END, COUNT(*)
        FROM calls WHERE workspace_id IS NOT NULL AND status = 'success' AND ttft_ms IS NOT NULL GROUP BY 1, 2, 3, 4;

      CREATE TABLE call_session_hours (
        workspace_id TEXT NOT NULL,
        hour_ms BIGINT NOT NULL,
        session_id TEXT NOT NULL,
        calls BIGINT NOT NULL,
        errors BIGINT NOT NULL,
        cost_usd DOUBLE PRECISION NOT NULL,
        api_usd DOUBLE PRECISION NOT NULL,
        api_equivalent_usd DOUBLE PRECISION NOT NULL,
        input_tokens BIGINT NOT NULL,
        cache_read_tokens BIGINT NOT NULL,
        cache_write_tokens BIGINT NOT NULL,
        output_tokens BIGINT NOT NULL,
        first_ms BIGINT NOT NULL,
        last_ms BIGINT NOT NULL,
        end_ms DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (workspace_id, hour_ms, session_id)
      );
      INSERT INTO call_session_hours (workspace_id, hour_ms, session_id, calls, errors, cost_usd, api_usd, api_equivalent_usd,
          input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, first_ms, last_ms, end_ms)
        SELECT workspace_id, started_at_ms - started_at_ms % 3600000, session_id, COUNT(*),
          SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), SUM(COALESCE(cost_usd, 0)),
          SUM(CASE WHEN cost_basis IN ('exact', 'partial') THEN COALESCE(cost_usd, 0) ELSE 0 END),
          SUM(CASE WHEN cost_basis = 'api_equivalent' THEN COALESCE(cost_usd, 0) ELSE 0 END),
          SUM(COALESCE(input_tokens, 0)), SUM(COALESCE(cache_read_tokens, 0)), SUM(COALESCE(cache_write_tokens, 0)),
          SUM(COALESCE(output_tokens, 0)), MIN(started_at_ms), MAX(started_at_ms), MAX(started_at_ms + total_ms)
        FROM calls WHERE workspace_id IS NOT NULL AND session_id IS NOT NULL GROUP BY 1, 2, 3;
    `,
  },
];

/**
 * Bring the schema in the connection's `search_path` to the newest version, in one transaction under an
 * advisory lock: a second server starting at the same moment waits, then finds the work done. PostgreSQL
 * DDL is transactional, so a failed migration leaves the schema as it was. Rejects a schema written by a
 * newer Tokenwise instead of guessing at it.
 */
export async function migratePostgres(client: PoolClient, migrations: readonly Migration[] = postgresMigrations): Promise<MigrationResult> {
  const schema = await currentSchema(client);
  const newest = newestVersion(migrations);

  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ADVISORY_LOCKS.migrate, schema]);
    await client.query(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TEXT NOT NULL
      )
    `);

    const found = await readPostgresSchemaVersion(client);
    if (found > newest) {
      throw new TokenwiseError(
        'store_failed',
        `database schema version ${found} in schema "${schema}" is newer than this Tokenwise supports (${newest}); upgrade Tokenwise or use another --database-url`,
      );
    }

    // Every version missing from the table is applied, as in SQLite: a lower reserved version can arrive
    // after the schema already has a higher one.
    const present = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const appliedBefore = new Set(present.rows.map((row) => Number(row.version)));
    const applied: number[] = [];
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (appliedBefore.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        new Date().toISOString(),
      ]);
      applied.push(migration.version);
    }

    await client.query('COMMIT');
    return { version: newest, applied };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Return the schema version recorded in the connection's schema, 0 when it has no migrations table. */
export async function readPostgresSchemaVersion(client: Pick<PoolClient, 'query'>): Promise<number> {
  const table = await client.query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
  if (!table.rows[0]?.present) return 0;
  const result = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
  return result.rows[0]?.version ?? 0;
}

/**
 * Return the schema new tables go to: the first existing schema in `search_path`. Null means none of them
 * exists, which PostgreSQL reports only later as "no schema has been selected to create in".
 */
export async function currentSchema(client: Pick<PoolClient, 'query'>): Promise<string> {
  const result = await client.query<{ schema: string | null; search_path: string }>(
    'SELECT current_schema() AS schema, current_setting($1) AS search_path',
    ['search_path'],
  );
  const row = result.rows[0];
  if (!row?.schema) {
    throw new TokenwiseError(
      'store_failed',
      `no schema of the search_path "${row?.search_path ?? ''}" exists in this database: create it first (CREATE SCHEMA name) or change search_path in --database-url`,
    );
  }
  return row.schema;
}
