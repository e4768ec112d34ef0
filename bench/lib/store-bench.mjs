// The store's side: records/s into SQLite and PostgreSQL through `Store.insertCalls` in batches, as the
// proxy's batching sink writes them, and the queries the dashboard needs, timed on 100k and 1M calls.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createHttpCapture, createRouteRegistry, uuidV7 } from '@tokenwise/core';
import { PostgresStore, rebuildRollupsSteps, SqliteStore } from '@tokenwise/storage';
import Database from 'better-sqlite3';
import pg from 'pg';
import { anthropicJsonResponse, anthropicRequestBody, anthropicRequestHeaders } from './payloads.mjs';
import { median } from './probe.mjs';

/** Records per `insertCalls` call: the batching sink's default `maxBatchSize`. */
const BATCH_SIZE = 200;
const DAY_MS = 86_400_000;
const SPAN_MS = 30 * DAY_MS;
const MAIN_WORKSPACE = 'ws-bench-main';
/** Calls per seeded session. */
const SESSION_CALLS = 40;

/** Capture a ~20 KB request and a ~2 KB JSON response with the core's capture; returns the record and bodies. */
function capturedCall() {
  const route = createRouteRegistry().get('anthropic');
  const headers = Object.fromEntries(Object.entries(anthropicRequestHeaders).map(([name, value]) => [name.toLowerCase(), value]));
  const capture = createHttpCapture(
    { route, method: 'POST', target: '/v1/messages', headers, workspaceId: MAIN_WORKSPACE, deviceId: 'device-bench' },
    { keepBodies: true },
  );
  capture.requestChunk(anthropicRequestBody(20_000, { stream: false, gap: false }));
  capture.requestEnd();
  capture.responseHead(200, { 'content-type': 'application/json' });
  capture.responseChunk(anthropicJsonResponse());
  return capture.finish({ kind: 'complete' });
}

/**
 * Make `count` copies of the captured call with start times in order over the last 30 days, and ids from
 * them as the capture makes ids (UUIDv7, which sort by time). Random ids would scatter the inserts over
 * the id index, which the proxy's inserts never do: SQLite took about 40% more time per record with them.
 */
function makeCalls(count, withBodies) {
  const { record, bodies } = capturedCall();
  const firstMs = Date.now() - SPAN_MS;
  return Array.from({ length: count }, (_, index) => {
    const startedMs = firstMs + Math.floor((index * SPAN_MS) / count);
    return {
      record: { ...record, id: uuidV7(startedMs), started_at: new Date(startedMs).toISOString() },
      bodies: withBodies ? bodies : null,
    };
  });
}

/** Rounds of each insert measurement; the median is reported, because one disk stall skews a single round. */
const INSERT_ROUNDS = 3;

/** Insert `count` new calls in batches one after another, `INSERT_ROUNDS` times; returns the median records/s. */
async function insertRate(store, count, withBodies) {
  const rates = [];
  for (let round = 0; round < INSERT_ROUNDS; round += 1) {
    const calls = makeCalls(count, withBodies);
    const startMs = performance.now();
    for (let offset = 0; offset < calls.length; offset += BATCH_SIZE) {
      await store.insertCalls(calls.slice(offset, offset + BATCH_SIZE));
    }
    rates.push(count / ((performance.now() - startMs) / 1000));
  }
  return Math.round(median(rates));
}

/**
 * Column expressions that vary the seeded rows; other columns copy the template row. Every 40 consecutive
 * rows (`i / 40`) form one session of one workspace and one tool, as an agent session is.
 */
function seedOverrides(dialect) {
  const random = dialect === 'sqlite' ? '(abs(random()) % 1000000) / 1000000.0' : 'random()';
  const integer = (max) => (dialect === 'sqlite' ? `(abs(random()) % ${max})` : `floor(random() * ${max})::bigint`);
  const pick = (values, divisor) =>
    `CASE (i / ${divisor}) % ${values.length} ${values.map((value, index) => `WHEN ${index} THEN '${value}'`).join(' ')} END`;
  const models = [
    'claude-sonnet-4-5-20250929',
    'claude-opus-4-1-20250805',
    'claude-haiku-4-5-20251001',
    'gpt-5-codex',
    'gpt-5',
    'gemini-2.5-pro',
  ];
  return {
    id: dialect === 'sqlite' ? "printf('seed-%s-%d', :tag, i)" : "'seed-' || :tag || '-' || i",
    started_at_ms: 'ms',
    started_at:
      dialect === 'sqlite'
        ? "strftime('%Y-%m-%dT%H:%M:%fZ', ms / 1000.0, 'unixepoch')"
        : `to_char(to_timestamp(ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
    workspace_id: `CASE WHEN (i / ${SESSION_CALLS}) % 10 < 7 THEN '${MAIN_WORKSPACE}' ELSE 'ws-bench-' || ((i / ${SESSION_CALLS}) % 3) END`,
    tool: pick(['claude-code', 'codex', 'gemini-cli', 'anthropic-sdk'], SESSION_CALLS),
    model_requested: pick(models, 4),
    model_answered: pick(models, 4),
    session_id: `'session-' || :tag || '-' || (i / ${SESSION_CALLS})`,
    status: "CASE WHEN i % 50 = 0 THEN 'error' ELSE 'success' END",
    input_tokens: integer(60_000),
    output_tokens: integer(4_000),
    cache_read_tokens: integer(40_000),
    cost_usd: `${random} * 0.4`,
    total_ms: integer(60_000),
  };
}

/**
 * Build the start time of seeded row `i`. Its session starts at a pseudo-random time in the span, a
 * multiplicative hash of the session number. Its calls follow 45 s apart with up to 15 s of jitter, so a
 * session lasts under 30 minutes.
 */
function seedStartMs(dialect) {
  const session = `(i / ${SESSION_CALLS})`;
  const step = `(i % ${SESSION_CALLS}) * 45000`;
  if (dialect === 'sqlite') {
    return `:nowMs - :spanMs + (${session} * 2654435761) % (:spanMs - 3600000) + ${step} + abs(random()) % 15000`;
  }
  const span = 'CAST(:spanMs AS BIGINT)';
  return `CAST(:nowMs AS BIGINT) - ${span} + (${session} * 2654435761) % (${span} - 3600000) + ${step} + floor(random() * 15000)::bigint`;
}

function seedSql({ dialect, columns, tablePrefix = '' }) {
  const overrides = seedOverrides(dialect);
  const select = columns.map((column) => overrides[column] ?? `t.${column}`).join(', ');
  if (dialect === 'sqlite') {
    return `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
      INSERT INTO calls (${columns.join(', ')})
      SELECT ${select} FROM (SELECT i, ${seedStartMs(dialect)} AS ms FROM n) AS g,
        (SELECT * FROM calls WHERE seq = :templateSeq) AS t`;
  }
  return `INSERT INTO ${tablePrefix}calls (${columns.join(', ')})
    SELECT ${select} FROM (SELECT i, ${seedStartMs(dialect)} AS ms FROM generate_series(1, :count) AS s(i)) AS g,
      (SELECT * FROM ${tablePrefix}calls WHERE seq = :templateSeq) AS t`;
}

/** Return the dashboard's queries. Their `:name` parameters are bound per dialect. */
function dashboardQueries() {
  const listColumns =
    'seq, id, started_at, tool, model_requested, model_answered, status, input_tokens, output_tokens, cost_usd, total_ms, ttft_ms';
  const overview = `SELECT tool, coalesce(model_answered, model_requested) AS model, count(*) AS calls,
      sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,
      sum(cost_usd) AS cost_usd, sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors
    FROM calls WHERE workspace_id = :workspace AND started_at_ms >= :from AND started_at_ms < :to
    GROUP BY tool, coalesce(model_answered, model_requested) ORDER BY cost_usd DESC`;
  return {
    'overview 24h': { sql: overview, params: (nowMs) => ({ workspace: MAIN_WORKSPACE, from: nowMs - DAY_MS, to: nowMs }) },
    'overview 7d': { sql: overview, params: (nowMs) => ({ workspace: MAIN_WORKSPACE, from: nowMs - 7 * DAY_MS, to: nowMs }) },
    'overview 30d': { sql: overview, params: (nowMs) => ({ workspace: MAIN_WORKSPACE, from: nowMs - SPAN_MS, to: nowMs }) },
    'daily cost 30d': {
      sql: `SELECT started_at_ms / ${DAY_MS} AS day, count(*) AS calls, sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens,
          sum(output_tokens) AS output_tokens
        FROM calls WHERE workspace_id = :workspace AND started_at_ms >= :from AND started_at_ms < :to
        GROUP BY started_at_ms / ${DAY_MS} ORDER BY day`,
      params: (nowMs) => ({ workspace: MAIN_WORKSPACE, from: nowMs - SPAN_MS, to: nowMs }),
    },
    'calls list, first page': {
      sql: `SELECT ${listColumns} FROM calls WHERE workspace_id = :workspace ORDER BY started_at_ms DESC, seq DESC LIMIT 50`,
      params: () => ({ workspace: MAIN_WORKSPACE }),
    },
    'calls list, page at 15 days': {
      sql: `SELECT ${listColumns} FROM calls WHERE workspace_id = :workspace AND started_at_ms < :before
        ORDER BY started_at_ms DESC, seq DESC LIMIT 50`,
      params: (nowMs) => ({ workspace: MAIN_WORKSPACE, before: nowMs - 15 * DAY_MS }),
    },
    'calls list, by tool and model': {
      sql: `SELECT ${listColumns} FROM calls WHERE workspace_id = :workspace AND tool = 'codex' AND model_answered = 'gpt-5'
        ORDER BY started_at_ms DESC, seq DESC LIMIT 50`,
      params: () => ({ workspace: MAIN_WORKSPACE }),
    },
  };
}

/**
 * Time the store's own dashboard reads (`Store.overview`, `searchCalls`, `callFacets`, `listSessions`),
 * the ones the dashboard calls; returns the median ms of each.
 */
async function timeStoreMethods(store, repeats) {
  const nowMs = Date.now();
  const range = (days) => ({ workspaceId: MAIN_WORKSPACE, from: new Date(nowMs - days * DAY_MS), to: new Date(nowMs) });
  const methods = {
    'overview 24h, hourly': () => store.overview({ filter: range(1), bucketMs: 3_600_000, groupBy: 'tool', top: 10 }),
    'overview 7d, daily': () => store.overview({ filter: range(7), bucketMs: DAY_MS, groupBy: 'tool', top: 10 }),
    'overview 30d, daily': () => store.overview({ filter: range(30), bucketMs: DAY_MS, groupBy: 'model', top: 10 }),
    'searchCalls, first page': () => store.searchCalls({ workspaceId: MAIN_WORKSPACE }, { limit: 50 }),
    'searchCalls, tool and model': () =>
      store.searchCalls({ workspaceId: MAIN_WORKSPACE, tools: ['codex'], models: ['gpt-5'] }, { limit: 50 }),
    'callFacets 7d': () => store.callFacets(range(7), 10),
    'listSessions 7d': () => store.listSessions(range(7), { limit: 50 }),
  };
  const timings = {};
  for (const [name, method] of Object.entries(methods)) {
    await method();
    const samples = [];
    for (let index = 0; index < repeats; index += 1) {
      const startMs = performance.now();
      await method();
      samples.push(performance.now() - startMs);
    }
    timings[name] = Math.round(median(samples) * 10) / 10;
  }
  return timings;
}

/** Indexes the queries above would use; created only in the bench database, to measure what they change. */
const SUGGESTED_INDEXES = [
  `CREATE INDEX bench_calls_overview ON calls (workspace_id, started_at_ms, tool, model_answered, model_requested, status,
    input_tokens, output_tokens, cache_read_tokens, cost_usd)`,
  'CREATE INDEX bench_calls_by_tool_model ON calls (workspace_id, tool, model_answered, started_at_ms DESC, seq DESC)',
];

/** Return the overview queries above, read from the store's hourly rollup (`call_rollups`) over whole hours. */
function rollupQueries() {
  const overview = `SELECT tool, model, sum(calls) AS calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
      sum(cache_read_tokens) AS cache_read_tokens, sum(cost_usd) AS cost_usd, sum(CASE WHEN status = 'error' THEN calls ELSE 0 END) AS errors
    FROM call_rollups WHERE workspace_id = :workspace AND hour_ms >= :fromMs AND hour_ms < :toMs
    GROUP BY tool, model ORDER BY cost_usd DESC`;
  const range = (days) => (nowMs) => ({
    workspace: MAIN_WORKSPACE,
    fromMs: Math.floor((nowMs - days * DAY_MS) / 3_600_000) * 3_600_000,
    toMs: (Math.floor(nowMs / 3_600_000) + 1) * 3_600_000,
  });
  return {
    'overview 24h': { sql: overview, params: range(1) },
    'overview 7d': { sql: overview, params: range(7) },
    'overview 30d': { sql: overview, params: range(30) },
    'daily cost 30d': {
      sql: `SELECT hour_ms / ${DAY_MS} AS day, sum(calls) AS calls, sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens,
          sum(output_tokens) AS output_tokens
        FROM call_rollups WHERE workspace_id = :workspace AND hour_ms >= :fromMs AND hour_ms < :toMs
        GROUP BY hour_ms / ${DAY_MS} ORDER BY day`,
      params: range(30),
    },
  };
}

/** Rewrite `:name` parameters as `$n` for pg; returns the text and the values in order. */
function toPg(sql, params) {
  const names = [];
  const text = sql.replace(/(?<!:):([a-z][a-zA-Z]*)/g, (_, name) => {
    let index = names.indexOf(name);
    if (index === -1) index = names.push(name) - 1;
    return `$${index + 1}`;
  });
  return { text, values: names.map((name) => params[name]) };
}

async function timeQueries(runQuery, repeats, queries = dashboardQueries()) {
  const nowMs = Date.now();
  const timings = {};
  for (const [name, query] of Object.entries(queries)) {
    const params = query.params(nowMs);
    await runQuery(query.sql, params);
    const samples = [];
    for (let index = 0; index < repeats; index += 1) {
      const startMs = performance.now();
      await runQuery(query.sql, params);
      samples.push(performance.now() - startMs);
    }
    timings[name] = Math.round(median(samples) * 10) / 10;
  }
  return timings;
}

/**
 * SQLite: insert rates, then queries at each size in `sizes` (seeded with SQL from a stored call),
 * as shipped and with the suggested indexes.
 */
export async function benchSqlite({ dir, insertCount, bodiesCount, sizes, repeats, log }) {
  const file = path.join(dir, 'store-bench.db');
  const store = new SqliteStore(file);
  const result = { backend: 'sqlite', insert: {}, queries: {}, store_methods: {} };
  const db = new Database(file);
  try {
    result.insert.records_per_s_metrics_only = await insertRate(store, insertCount, false);
    result.insert.records_per_s_with_bodies = await insertRate(store, bodiesCount, true);
    log(
      `sqlite: ${result.insert.records_per_s_metrics_only} records/s metrics only, ${result.insert.records_per_s_with_bodies} with bodies`,
    );

    db.pragma('journal_mode = WAL');
    const columns = db
      .prepare('PRAGMA table_info(calls)')
      .all()
      .map((column) => column.name)
      .filter((name) => name !== 'seq');
    const templateSeq = db.prepare('SELECT min(seq) AS seq FROM calls').get().seq;
    const seed = db.prepare(seedSql({ dialect: 'sqlite', columns }));
    const run = async (sql, params) => db.prepare(sql).all(params);

    for (const size of sizes) {
      const have = db.prepare('SELECT count(*) AS n FROM calls').get().n;
      if (have < size) {
        seed.run({ count: size - have, nowMs: Date.now(), spanMs: SPAN_MS, templateSeq, tag: `s${size}` });
        // The seed writes into `calls` around the store, so the store's hourly rollups are rebuilt from them.
        for (const step of rebuildRollupsSteps()) db.prepare(step.sql).run();
      }
      result.queries[size] = { shipped: await timeQueries(run, repeats) };
      result.store_methods[size] = await timeStoreMethods(store, repeats);
      log(`sqlite ${size} calls: ${JSON.stringify(result.queries[size].shipped)} ${JSON.stringify(result.store_methods[size])}`);
    }
    const largest = sizes[sizes.length - 1];
    for (const index of SUGGESTED_INDEXES) db.exec(index);
    result.queries[largest].with_suggested_indexes = await timeQueries(run, repeats);
    log(`sqlite ${largest} calls with suggested indexes: ${JSON.stringify(result.queries[largest].with_suggested_indexes)}`);
    result.queries[largest].hourly_rollup_table = await timeQueries(run, repeats, rollupQueries());
    log(`sqlite ${largest} calls, hourly rollup table: ${JSON.stringify(result.queries[largest].hourly_rollup_table)}`);
  } finally {
    db.close();
    await store.close();
  }
  return result;
}

/** PostgreSQL in a schema of its own, created here and dropped at the end. */
export async function benchPostgres({ url, insertCount, bodiesCount, sizes, repeats, log }) {
  const schema = `tokenwise_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const result = { backend: 'postgres', insert: {}, queries: {}, store_methods: {} };
  let store = null;
  try {
    result.server_version = (await admin.query('SHOW server_version')).rows[0].server_version;
    await admin.query(`CREATE SCHEMA ${schema}`);
    const scopedUrl = `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    store = await PostgresStore.open(scopedUrl);
    result.insert.records_per_s_metrics_only = await insertRate(store, insertCount, false);
    result.insert.records_per_s_with_bodies = await insertRate(store, bodiesCount, true);
    log(
      `postgres: ${result.insert.records_per_s_metrics_only} records/s metrics only, ${result.insert.records_per_s_with_bodies} with bodies`,
    );

    await admin.query(`SET search_path = ${schema}`);
    const columns = (
      await admin.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'calls' ORDER BY ordinal_position",
        [schema],
      )
    ).rows
      .map((row) => row.column_name)
      .filter((name) => name !== 'seq');
    const templateSeq = (await admin.query('SELECT min(seq) AS seq FROM calls')).rows[0].seq;
    const run = (sql, params) => {
      const { text, values } = toPg(sql, params);
      return admin.query(text, values);
    };

    for (const size of sizes) {
      const have = Number((await admin.query('SELECT count(*) AS n FROM calls')).rows[0].n);
      if (have < size) {
        await run(seedSql({ dialect: 'postgres', columns }), {
          count: size - have,
          nowMs: Date.now(),
          spanMs: SPAN_MS,
          templateSeq,
          tag: `s${size}`,
        });
        for (const step of rebuildRollupsSteps()) await admin.query(step.sql);
        // Autovacuum vacuums and analyzes a table within minutes of such an insert. Doing it now gives the
        // planner its statistics and index-only scans their visibility map.
        await admin.query('VACUUM ANALYZE calls');
        await admin.query('VACUUM ANALYZE call_rollups');
        await admin.query('VACUUM ANALYZE call_latency_bins');
        await admin.query('VACUUM ANALYZE call_session_hours');
      }
      result.queries[size] = { shipped: await timeQueries(run, repeats) };
      result.store_methods[size] = await timeStoreMethods(store, repeats);
      log(`postgres ${size} calls: ${JSON.stringify(result.queries[size].shipped)} ${JSON.stringify(result.store_methods[size])}`);
    }
    const largest = sizes[sizes.length - 1];
    for (const index of SUGGESTED_INDEXES) await admin.query(index);
    await admin.query('VACUUM ANALYZE calls');
    result.queries[largest].with_suggested_indexes = await timeQueries(run, repeats);
    log(`postgres ${largest} calls with suggested indexes: ${JSON.stringify(result.queries[largest].with_suggested_indexes)}`);
    result.queries[largest].hourly_rollup_table = await timeQueries(run, repeats, rollupQueries());
    log(`postgres ${largest} calls, hourly rollup table: ${JSON.stringify(result.queries[largest].hourly_rollup_table)}`);
  } finally {
    await store?.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.end();
  }
  return result;
}

export { SUGGESTED_INDEXES };
