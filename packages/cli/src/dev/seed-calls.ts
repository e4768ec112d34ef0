import { type ApiShape, type CallBodies, type CallRecord, computeCost, type ToolId, type Usage } from '@tokenwise/core';
import type { CallToStore } from '@tokenwise/storage';
import {
  ANSWERS,
  COMMAND_OUTPUTS,
  COMMANDS,
  FILES,
  SCREENSHOT_PNG_BASE64,
  SCRIPT_PROMPTS,
  SYSTEM_PROMPTS,
  TASK_SUBJECTS,
  TASK_VERBS,
  THOUGHTS,
} from './seed-content.js';

/**
 * Plausible calls for demos, tests and benchmarks: agent sessions of Claude Code, Codex and Gemini CLI
 * and one-off SDK scripts, spread over working hours of the last days, across a few devices. Token counts
 * grow through a session as an agent's context does, with most of the input read from the prompt cache;
 * costs are computed with the bundled prices, as the proxy computes them. Everything comes from a seeded
 * pseudo-random generator, so a seed value gives the same calls on every run.
 */

/** A seeded device: its tools, and whether they bill a subscription or an API key. */
export interface SeedDeviceProfile {
  name: string;
  os: string;
  tools: readonly SeedToolName[];
  subscription: boolean;
}

export type SeedToolName = 'claude-code' | 'codex' | 'gemini-cli' | 'anthropic-sdk' | 'openai-sdk';

export const SEED_DEVICES: readonly SeedDeviceProfile[] = [
  { name: 'ada-macbook', os: 'darwin', tools: ['claude-code', 'codex'], subscription: true },
  { name: 'bo-thinkpad', os: 'linux', tools: ['claude-code', 'gemini-cli', 'codex'], subscription: false },
  { name: 'ci-runner', os: 'linux', tools: ['claude-code', 'anthropic-sdk'], subscription: false },
  { name: 'dev-vm', os: 'linux', tools: ['codex', 'openai-sdk'], subscription: false },
];

export interface SeedOptions {
  /** Number of calls to generate, at least 1. */
  calls: number;
  /** The calls start within this many days before `now`. */
  days: number;
  now: Date;
  workspaceId: string;
  /** Store ids of the devices, in the order of `SEED_DEVICES`. */
  deviceIds: readonly string[];
  /** False in privacy mode: no bodies are generated, as the proxy would keep none. */
  keepBodies: boolean;
  /** Seed of the pseudo-random generator. */
  seed: number;
  /** Calls per yielded batch. */
  batchSize: number;
}

interface ModelChoice {
  requested: string;
  answered: string;
  weight: number;
}

interface ToolProfile {
  tool: ToolId;
  /** The route when the device bills a subscription, and when it uses an API key. */
  route: { subscription: string; apiKey: string };
  provider: CallRecord['provider'];
  apiShape: ApiShape;
  path: (model: string) => string;
  userAgent: string;
  version: string;
  models: readonly ModelChoice[];
  /** Calls per session, min and max; 0 makes calls without a session (scripts). */
  sessionCalls: readonly [number, number];
  /** Prompt tokens a session starts with (system prompt and tool definitions). */
  baseInputTokens: number;
}

const TOOL_PROFILES: Record<SeedToolName, ToolProfile> = {
  'claude-code': {
    tool: 'claude-code',
    route: { subscription: 'anthropic', apiKey: 'anthropic' },
    provider: 'anthropic',
    apiShape: 'anthropic.messages',
    path: () => '/v1/messages',
    userAgent: 'claude-cli/2.1.197 (external, cli)',
    version: '2.1.197',
    models: [
      { requested: 'claude-sonnet-4-5', answered: 'claude-sonnet-4-5-20250929', weight: 70 },
      { requested: 'claude-haiku-4-5', answered: 'claude-haiku-4-5-20251001', weight: 20 },
      { requested: 'claude-opus-4-1', answered: 'claude-opus-4-1-20250805', weight: 10 },
    ],
    sessionCalls: [3, 80],
    baseInputTokens: 14_000,
  },
  codex: {
    tool: 'codex',
    route: { subscription: 'chatgpt', apiKey: 'openai' },
    provider: 'openai',
    apiShape: 'openai.responses',
    path: () => '/v1/responses',
    userAgent: 'codex_cli_rs/0.171.0 (Mac OS 15.6.1; arm64) ghostty/1.2.0',
    version: '0.171.0',
    models: [
      { requested: 'gpt-5-codex', answered: 'gpt-5-codex', weight: 75 },
      { requested: 'gpt-5', answered: 'gpt-5-2025-08-07', weight: 25 },
    ],
    sessionCalls: [2, 50],
    baseInputTokens: 6_000,
  },
  'gemini-cli': {
    tool: 'gemini-cli',
    route: { subscription: 'gemini', apiKey: 'gemini' },
    provider: 'google',
    apiShape: 'gemini.stream_generate_content',
    path: (model) => `/v1beta/models/${model}:streamGenerateContent`,
    userAgent: 'GeminiCLI/0.9.0 (linux; x64)',
    version: '0.9.0',
    models: [
      { requested: 'gemini-2.5-pro', answered: 'gemini-2.5-pro', weight: 60 },
      { requested: 'gemini-2.5-flash', answered: 'gemini-2.5-flash', weight: 40 },
    ],
    sessionCalls: [2, 30],
    baseInputTokens: 9_000,
  },
  'anthropic-sdk': {
    tool: 'anthropic-sdk',
    route: { subscription: 'anthropic', apiKey: 'anthropic' },
    provider: 'anthropic',
    apiShape: 'anthropic.messages',
    path: () => '/v1/messages',
    userAgent: 'Anthropic/Python 0.69.0',
    version: '0.69.0',
    models: [{ requested: 'claude-haiku-4-5', answered: 'claude-haiku-4-5-20251001', weight: 1 }],
    sessionCalls: [0, 0],
    baseInputTokens: 600,
  },
  'openai-sdk': {
    tool: 'openai-sdk',
    route: { subscription: 'openai', apiKey: 'openai' },
    provider: 'openai',
    apiShape: 'openai.chat_completions',
    path: () => '/v1/chat/completions',
    userAgent: 'OpenAI/Python 2.3.0',
    version: '2.3.0',
    models: [{ requested: 'gpt-4.1-mini', answered: 'gpt-4.1-mini-2025-04-14', weight: 1 }],
    sessionCalls: [0, 0],
    baseInputTokens: 400,
  },
};

/** The `@pydantic/genai-prices` provider id of each route the seeded tools use, as the route registry sets it. */
const PRICE_PROVIDERS: Record<string, string> = { anthropic: 'anthropic', openai: 'openai', chatgpt: 'openai', gemini: 'google' };

/** Generate `options.calls` calls in batches of `options.batchSize`. */
export function* generateSeedCalls(options: SeedOptions): Generator<CallToStore[]> {
  const random = mulberry32(options.seed);
  let remaining = options.calls;
  let batch: CallToStore[] = [];

  while (remaining > 0) {
    const deviceIndex = Math.floor(random() * SEED_DEVICES.length);
    const device = SEED_DEVICES[deviceIndex]!;
    const profile = TOOL_PROFILES[pick(random, device.tools)];
    const [minCalls, maxCalls] = profile.sessionCalls;
    // Session lengths lean short with a long tail, as agent sessions do.
    const length = maxCalls === 0 ? 1 : Math.min(maxCalls, minCalls + Math.floor(-Math.log(1 - random()) * ((maxCalls - minCalls) / 4)));
    const count = Math.min(length, remaining);
    const session: SessionPlan = {
      profile,
      device,
      deviceId: options.deviceIds[deviceIndex] ?? null,
      sessionId: null,
      task: maxCalls === 0 ? pick(random, SCRIPT_PROMPTS) : `${pick(random, TASK_VERBS)} ${pick(random, TASK_SUBJECTS)}`,
      model: weightedPick(random, profile.models),
      startMs: workingHourStart(random, options.now.getTime(), options.days),
      oneHourCache: random() < 0.1,
      withImage: random() < 0.03,
    };
    if (maxCalls > 0) session.sessionId = sessionIdFor(profile.tool, session.startMs, random);

    for (const call of sessionCalls(session, count, options, random)) {
      batch.push(call);
      if (batch.length >= options.batchSize) {
        yield batch;
        batch = [];
      }
    }
    remaining -= count;
  }
  if (batch.length > 0) yield batch;
}

interface SessionPlan {
  profile: ToolProfile;
  device: SeedDeviceProfile;
  deviceId: string | null;
  sessionId: string | null;
  task: string;
  model: ModelChoice;
  startMs: number;
  oneHourCache: boolean;
  withImage: boolean;
}

function* sessionCalls(session: SessionPlan, count: number, options: SeedOptions, random: () => number): Generator<CallToStore> {
  const { profile } = session;
  let atMs = session.startMs;
  let contextTokens = profile.baseInputTokens + Math.floor(random() * 2000);

  for (let index = 0; index < count; index += 1) {
    // A quick side call (titles, summaries) on a small model now and then, as Claude Code makes them.
    const model = profile.tool === 'claude-code' && index > 0 && random() < 0.15 ? profile.models[1]! : session.model;
    const call = makeCall({ session, model, index, atMs, contextTokens, options, random });
    yield call;

    // The next call starts after this one ended and the agent ran its tool (a second to half a minute).
    atMs += call.record.timing.total_ms + 1000 + Math.floor(random() * 30_000);
    if (atMs > options.now.getTime()) atMs = options.now.getTime() - Math.floor(random() * 60_000);
    contextTokens += 300 + Math.floor(random() * 3000);
    // Agents compact a long context into a summary.
    if (contextTokens > 160_000) contextTokens = profile.baseInputTokens + 8_000;
  }
}

interface CallPlan {
  session: SessionPlan;
  model: ModelChoice;
  index: number;
  atMs: number;
  contextTokens: number;
  options: SeedOptions;
  random: () => number;
}

function makeCall(plan: CallPlan): CallToStore {
  const { session, model, index, random } = plan;
  const { profile, device } = session;
  const route = device.subscription ? profile.route.subscription : profile.route.apiKey;
  const subscriptionBilled = device.subscription && (route === 'chatgpt' || profile.tool === 'claude-code');

  const roll = random();
  const status: CallRecord['status'] = roll < 0.02 ? 'error' : roll < 0.025 ? 'aborted' : 'success';
  const usage = usageFor(plan, status);
  const outputTokens = usage.output_tokens ?? 0;
  const ttftMs = status === 'error' ? null : 300 + Math.floor(random() * 2500);
  const totalMs = status === 'error' ? 150 + Math.floor(random() * 900) : (ttftMs ?? 0) + Math.floor(outputTokens * (8 + random() * 20));
  const errorCall = status === 'error' ? errorFor(profile.provider, random) : null;
  const startedAt = new Date(plan.atMs);

  const record: CallRecord = {
    id: uuidV7(plan.atMs, random),
    started_at: startedAt.toISOString(),
    workspace_id: plan.options.workspaceId,
    device_id: session.deviceId,
    route,
    provider: profile.provider,
    api_shape: profile.apiShape,
    method: 'POST',
    path: profile.path(model.requested),
    tool: profile.tool,
    tool_version: profile.version,
    user_agent: profile.userAgent,
    session_id: session.sessionId,
    stream_requested: profile.sessionCalls[1] > 0,
    streaming: profile.sessionCalls[1] > 0 && status !== 'error',
    stream_format: profile.sessionCalls[1] > 0 && status !== 'error' ? 'sse' : null,
    model_requested: model.requested,
    model_answered: status === 'error' ? null : model.answered,
    http_status: errorCall ? errorCall.httpStatus : 200,
    status,
    error: errorCall ? errorCall.error : null,
    billable: status !== 'error',
    usage,
    stop_reason: status === 'success' ? stopReasonFor(profile.provider, index, plan) : null,
    stop_reason_normalized: status === 'success' ? (isToolTurn(index, plan) ? 'tool_use' : 'end') : null,
    tool_calls: status === 'success' && isToolTurn(index, plan) ? 1 : 0,
    server_tool_calls: {},
    timing: {
      ttft_ms: ttftMs,
      total_ms: totalMs,
      headers_ms: Math.min(totalMs, 120 + Math.floor(random() * 400)),
      proxy_before_ms: round3(0.1 + random() * 0.6),
      proxy_after_ms: round3(0.05 + random() * 0.3),
    },
    upstream_request_id: `req_${hex(random, 24)}`,
    response_id: status === 'error' ? null : `${profile.provider === 'anthropic' ? 'msg_' : 'resp_'}${hex(random, 24)}`,
    cost: computeCost({
      usage,
      billable: status !== 'error',
      modelRequested: model.requested,
      modelAnswered: status === 'error' ? null : model.answered,
      priceProviderId: PRICE_PROVIDERS[route] ?? profile.provider,
      subscriptionBilled,
      at: startedAt,
    }),
    request_bytes: 0,
    response_bytes: 0,
  };

  const rateLimits = rateLimitHeaders(route, subscriptionBilled, plan);
  if (rateLimits) record.rate_limits = rateLimits;

  const bodies = plan.options.keepBodies ? bodiesFor(record, plan) : null;
  record.request_bytes = bodies?.request?.bytes ?? 900 + Math.floor(random() * 4000);
  record.response_bytes = bodies?.response?.bytes ?? 400 + outputTokens * 4;
  return { record, bodies };
}

function usageFor(plan: CallPlan, status: CallRecord['status']): Usage {
  const { session, index, random, contextTokens } = plan;
  if (status === 'error') {
    return {
      input_tokens: null,
      uncached_input_tokens: null,
      cache_read_tokens: null,
      cache_write_tokens: null,
      cache_write_5m_tokens: null,
      cache_write_1h_tokens: null,
      output_tokens: null,
      reasoning_tokens: null,
      web_search_requests: null,
    };
  }

  const provider = session.profile.provider;
  const input = contextTokens;
  // The first call of a session writes the prompt cache; later ones read what earlier calls wrote.
  const cacheRead = index === 0 || session.sessionId === null ? 0 : Math.floor(input * (0.82 + random() * 0.15));
  // Anthropic bills writing the prompt cache; OpenAI and Google cache without a write.
  let cacheWrite = 0;
  if (provider === 'anthropic' && index === 0) cacheWrite = Math.floor(input * 0.9);
  else if (provider === 'anthropic') cacheWrite = Math.min(input - cacheRead, 200 + Math.floor(random() * 3000));

  const output = status === 'aborted' ? null : Math.max(5, Math.floor(Math.exp(4 + random() * 3.2)));
  // Anthropic reports thinking only inside the output count, and gpt-4.1-mini does not reason.
  let reasoning: number | null = null;
  if (output !== null) {
    const reasons = provider !== 'anthropic' && session.profile.tool !== 'openai-sdk';
    reasoning = reasons ? Math.floor(output * (0.2 + random() * 0.6)) : 0;
  }
  const oneHour = session.oneHourCache ? cacheWrite : 0;
  return {
    input_tokens: input,
    uncached_input_tokens: Math.max(0, input - cacheRead - cacheWrite),
    cache_read_tokens: cacheRead,
    cache_write_tokens: cacheWrite,
    cache_write_5m_tokens: cacheWrite - oneHour,
    cache_write_1h_tokens: oneHour,
    output_tokens: output,
    reasoning_tokens: reasoning,
    web_search_requests: 0,
  };
}

/** True for the calls that end in a tool call: agents call tools three times, then reply in text. */
function isToolTurn(index: number, plan: CallPlan): boolean {
  return plan.session.sessionId !== null && index % 4 !== 3;
}

function stopReasonFor(provider: string, index: number, plan: CallPlan): string {
  const tool = isToolTurn(index, plan);
  if (provider === 'anthropic') return tool ? 'tool_use' : 'end_turn';
  if (provider === 'google') return 'STOP';
  return plan.session.profile.apiShape === 'openai.responses' ? 'completed' : 'stop';
}

function errorFor(provider: string, random: () => number): { httpStatus: number; error: NonNullable<CallRecord['error']> } {
  const overloaded = random() < 0.5;
  if (provider === 'anthropic') {
    return overloaded
      ? { httpStatus: 529, error: { type: 'overloaded_error', message: 'Overloaded', source: 'http', retry_after_s: null } }
      : {
          httpStatus: 429,
          error: {
            type: 'rate_limit_error',
            message: "This request would exceed your organization's rate limit of 400,000 output tokens per minute for this model.",
            source: 'http',
            retry_after_s: 20,
          },
        };
  }
  return overloaded
    ? {
        httpStatus: 503,
        error: { type: 'server_error', message: 'The server is overloaded. Please try again.', source: 'http', retry_after_s: null },
      }
    : {
        httpStatus: 429,
        error: { type: 'rate_limit_exceeded', message: 'Rate limit reached for requests.', source: 'http', retry_after_s: 8 },
      };
}

/** Build the rate-limit headers each provider sends, with usage that rises through the working day. */
function rateLimitHeaders(route: string, subscription: boolean, plan: CallPlan): Record<string, string> | null {
  const { random, atMs } = plan;
  const dayShare = (new Date(atMs).getHours() - 8) / 10;
  const used = Math.min(0.98, Math.max(0.02, dayShare * 0.8 + random() * 0.2));
  const resetIso = new Date(atMs + 60_000).toISOString().replace(/\.\d+Z$/, 'Z');

  if (route === 'anthropic' && subscription) {
    return {
      'anthropic-ratelimit-unified-status': 'allowed',
      'anthropic-ratelimit-unified-5h-utilization': used.toFixed(2),
      'anthropic-ratelimit-unified-5h-reset': String(Math.floor(atMs / 1000) + 3 * 3600),
      'anthropic-ratelimit-unified-7d-utilization': (used * 0.4).toFixed(2),
      'anthropic-ratelimit-unified-7d-reset': String(Math.floor(atMs / 1000) + 4 * 86_400),
    };
  }
  if (route === 'anthropic') {
    return {
      'anthropic-ratelimit-requests-limit': '4000',
      'anthropic-ratelimit-requests-remaining': String(Math.round(4000 * (1 - used * 0.3))),
      'anthropic-ratelimit-requests-reset': resetIso,
      'anthropic-ratelimit-input-tokens-limit': '2000000',
      'anthropic-ratelimit-input-tokens-remaining': String(Math.round(2_000_000 * (1 - used))),
      'anthropic-ratelimit-input-tokens-reset': resetIso,
    };
  }
  if (route === 'chatgpt') {
    return {
      'x-codex-primary-used-percent': String(Math.round(used * 100)),
      'x-codex-primary-window-minutes': '300',
      'x-codex-primary-reset-after-seconds': String(Math.floor(random() * 18_000)),
      'x-codex-secondary-used-percent': String(Math.round(used * 35)),
      'x-codex-secondary-window-minutes': '10080',
      'x-codex-secondary-reset-after-seconds': String(Math.floor(random() * 604_800)),
    };
  }
  if (route === 'openai') {
    return {
      'x-ratelimit-limit-requests': '5000',
      'x-ratelimit-remaining-requests': String(Math.round(5000 * (1 - used * 0.2))),
      'x-ratelimit-reset-requests': '12ms',
      'x-ratelimit-limit-tokens': '4000000',
      'x-ratelimit-remaining-tokens': String(Math.round(4_000_000 * (1 - used))),
      'x-ratelimit-reset-tokens': '1s',
    };
  }
  return null;
}

// Bodies

function bodiesFor(record: CallRecord, plan: CallPlan): CallBodies {
  const { session, index, random } = plan;
  const tool = isToolTurn(index, plan);
  const file = pick(random, FILES);
  const command = pick(random, COMMANDS);
  const commandOutput = pick(random, COMMAND_OUTPUTS);
  const answer = pick(random, ANSWERS);
  const thought = random() < 0.3 ? pick(random, THOUGHTS) : null;
  const system = SYSTEM_PROMPTS[session.profile.tool] ?? '';
  const previous = index === 0 ? null : { command, output: commandOutput };
  const context: BodyContext = { record, task: session.task, system, previous, tool, file, answer, thought, withImage: session.withImage };

  let request: string;
  let response: string;
  switch (session.profile.apiShape) {
    case 'openai.responses':
      [request, response] = [responsesRequest(context), responsesResponse(context)];
      break;
    case 'openai.chat_completions':
      [request, response] = [chatRequest(context), chatResponse(context)];
      break;
    case 'gemini.stream_generate_content':
      [request, response] = [geminiRequest(context), geminiResponse(context)];
      break;
    default:
      [request, response] = [anthropicRequest(context), anthropicResponse(context)];
  }
  if (record.status === 'error')
    response = JSON.stringify({ type: 'error', error: { type: record.error?.type, message: record.error?.message } });

  const streamed = record.streaming;
  return {
    request: captured(request, 'application/json'),
    response: captured(response, streamed ? 'text/event-stream; charset=utf-8' : 'application/json'),
    request_headers: requestHeaders(record),
    response_headers: {
      'content-type': streamed ? 'text/event-stream; charset=utf-8' : 'application/json',
      'request-id': record.upstream_request_id ?? '',
      ...(record.rate_limits ?? {}),
    },
  };
}

interface BodyContext {
  record: CallRecord;
  task: string;
  system: string;
  previous: { command: string; output: string } | null;
  tool: boolean;
  file: string;
  answer: string;
  thought: string | null;
  withImage: boolean;
}

function captured(text: string, contentType: string) {
  return { text, bytes: Buffer.byteLength(text), truncated: false, content_type: contentType, encoding_error: null };
}

function requestHeaders(record: CallRecord): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': record.user_agent ?? '' };
  if (record.provider === 'anthropic') headers['anthropic-version'] = '2023-06-01';
  if (record.tool === 'claude-code' && record.session_id) headers['x-claude-code-session-id'] = record.session_id;
  if (record.tool === 'codex' && record.session_id) {
    headers.originator = 'codex_cli_rs';
    headers['session-id'] = record.session_id;
  }
  return headers;
}

function anthropicRequest(context: BodyContext): string {
  const userContent: unknown[] = [{ type: 'text', text: context.task }];
  if (context.withImage)
    userContent.push({ type: 'image', source: { type: 'base64', media_type: 'image/png', data: SCREENSHOT_PNG_BASE64 } });
  const messages: unknown[] = [{ role: 'user', content: userContent }];
  if (context.previous) {
    messages.push(
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'Bash', input: { command: context.previous.command } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: context.previous.output }] },
    );
  }
  return JSON.stringify({
    model: context.record.model_requested,
    max_tokens: 32_000,
    stream: context.record.stream_requested,
    system: [{ type: 'text', text: context.system }],
    messages,
    tools: context.record.tool === 'claude-code' ? AGENT_TOOLS.anthropic : undefined,
  });
}

function anthropicResponse(context: BodyContext): string {
  const { record } = context;
  const content: Record<string, unknown>[] = [];
  if (context.thought) content.push({ type: 'thinking', thinking: context.thought, signature: 'c2lnbmF0dXJl' });
  if (context.tool) content.push({ type: 'tool_use', id: 'toolu_02', name: 'Read', input: { file_path: context.file } });
  else content.push({ type: 'text', text: context.answer });
  const usage = {
    input_tokens: record.usage.uncached_input_tokens,
    cache_read_input_tokens: record.usage.cache_read_tokens,
    cache_creation_input_tokens: record.usage.cache_write_tokens,
    output_tokens: record.usage.output_tokens,
  };
  if (!record.streaming)
    return JSON.stringify({ id: record.response_id, type: 'message', role: 'assistant', model: record.model_answered, content, usage });

  const events: [string, unknown][] = [
    ['message_start', { type: 'message_start', message: { id: record.response_id, model: record.model_answered, content: [], usage } }],
  ];
  content.forEach((block, index) => {
    const start =
      block.type === 'text'
        ? { type: 'text', text: '' }
        : block.type === 'thinking'
          ? { type: 'thinking', thinking: '' }
          : { ...block, input: {} };
    events.push(['content_block_start', { type: 'content_block_start', index, content_block: start }]);
    if (block.type === 'text')
      events.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: block.text } }]);
    if (block.type === 'thinking') {
      events.push([
        'content_block_delta',
        { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: block.thinking } },
      ]);
    }
    if (block.type === 'tool_use') {
      events.push([
        'content_block_delta',
        { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.input) } },
      ]);
    }
    events.push(['content_block_stop', { type: 'content_block_stop', index }]);
  });
  if (record.status === 'aborted') return sse(events);
  events.push(
    [
      'message_delta',
      { type: 'message_delta', delta: { stop_reason: record.stop_reason }, usage: { output_tokens: record.usage.output_tokens } },
    ],
    ['message_stop', { type: 'message_stop' }],
  );
  return sse(events);
}

function responsesRequest(context: BodyContext): string {
  const input: unknown[] = [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: context.task }] }];
  if (context.previous) {
    input.push(
      {
        type: 'function_call',
        call_id: 'call_01',
        name: 'shell',
        arguments: JSON.stringify({ command: ['bash', '-lc', context.previous.command] }),
      },
      { type: 'function_call_output', call_id: 'call_01', output: context.previous.output },
    );
  }
  return JSON.stringify({
    model: context.record.model_requested,
    instructions: context.system,
    input,
    tools: AGENT_TOOLS.openai,
    stream: true,
    store: false,
    reasoning: { effort: 'medium', summary: 'auto' },
  });
}

function responsesResponse(context: BodyContext): string {
  const { record } = context;
  const output: unknown[] = [];
  if (context.thought) output.push({ type: 'reasoning', summary: [{ type: 'summary_text', text: context.thought }] });
  if (context.tool) {
    output.push({
      type: 'function_call',
      call_id: 'call_02',
      name: 'shell',
      arguments: JSON.stringify({ command: ['cat', context.file] }),
    });
  } else {
    output.push({ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: context.answer }] });
  }
  const response = {
    id: record.response_id,
    model: record.model_answered,
    status: record.status === 'aborted' ? 'in_progress' : 'completed',
    output,
    usage: {
      input_tokens: record.usage.input_tokens,
      input_tokens_details: { cached_tokens: record.usage.cache_read_tokens },
      output_tokens: record.usage.output_tokens,
      output_tokens_details: { reasoning_tokens: record.usage.reasoning_tokens },
    },
  };
  if (record.status === 'aborted') return sse([['response.created', { type: 'response.created', response: { ...response, output: [] } }]]);
  return sse([
    ['response.created', { type: 'response.created', response: { ...response, status: 'in_progress', output: [] } }],
    ['response.completed', { type: 'response.completed', response }],
  ]);
}

function chatRequest(context: BodyContext): string {
  return JSON.stringify({
    model: context.record.model_requested,
    messages: [
      { role: 'system', content: context.system },
      { role: 'user', content: context.task },
    ],
  });
}

function chatResponse(context: BodyContext): string {
  const { record } = context;
  return JSON.stringify({
    id: record.response_id,
    object: 'chat.completion',
    model: record.model_answered,
    choices: [{ index: 0, message: { role: 'assistant', content: 'billing' }, finish_reason: 'stop' }],
    usage: {
      prompt_tokens: record.usage.input_tokens,
      completion_tokens: record.usage.output_tokens,
      prompt_tokens_details: { cached_tokens: record.usage.cache_read_tokens },
    },
  });
}

function geminiRequest(context: BodyContext): string {
  const contents: unknown[] = [{ role: 'user', parts: [{ text: context.task }] }];
  if (context.previous) {
    contents.push(
      { role: 'model', parts: [{ functionCall: { name: 'run_shell_command', args: { command: context.previous.command } } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'run_shell_command', response: { output: context.previous.output } } }] },
    );
  }
  return JSON.stringify({ contents, systemInstruction: { parts: [{ text: context.system }] } });
}

function geminiResponse(context: BodyContext): string {
  const { record } = context;
  const parts: unknown[] = [];
  if (context.thought) parts.push({ text: context.thought, thought: true });
  parts.push(context.tool ? { functionCall: { name: 'read_file', args: { absolute_path: context.file } } } : { text: context.answer });
  const chunk = {
    candidates: [{ content: { role: 'model', parts }, finishReason: 'STOP' }],
    usageMetadata: {
      promptTokenCount: record.usage.input_tokens,
      cachedContentTokenCount: record.usage.cache_read_tokens,
      candidatesTokenCount: (record.usage.output_tokens ?? 0) - (record.usage.reasoning_tokens ?? 0),
      thoughtsTokenCount: record.usage.reasoning_tokens,
    },
    modelVersion: record.model_answered,
  };
  return sse([[null, chunk]]);
}

const AGENT_TOOLS = {
  anthropic: [
    { name: 'Bash', description: 'Run a shell command.', input_schema: objectSchema({ command: { type: 'string' } }) },
    { name: 'Read', description: 'Read a file.', input_schema: objectSchema({ file_path: { type: 'string' } }) },
    {
      name: 'Edit',
      description: 'Replace text in a file.',
      input_schema: objectSchema({ file_path: { type: 'string' }, new_string: { type: 'string' } }),
    },
  ],
  openai: [
    { type: 'function', name: 'shell', description: 'Run a shell command.', parameters: objectSchema({ command: { type: 'array' } }) },
  ],
};

function objectSchema(properties: Record<string, unknown>) {
  return { type: 'object', properties, required: Object.keys(properties) };
}

function sse(events: [string | null, unknown][]): string {
  return events.map(([name, data]) => `${name ? `event: ${name}\n` : ''}data: ${JSON.stringify(data)}\n\n`).join('');
}

// Time, ids and the pseudo-random generator

/**
 * Pick a session start in the last `days` days, mostly between 8:00 and 19:00 local time on weekdays, as
 * people work; a few start in the evening or at the weekend.
 */
function workingHourStart(random: () => number, nowMs: number, days: number): number {
  for (let attempt = 0; attempt < 8; attempt += 1) {
    const at = new Date(nowMs - random() * days * 86_400_000);
    const hour = at.getHours() + at.getMinutes() / 60;
    const weekend = at.getDay() === 0 || at.getDay() === 6;
    const working = hour >= 8 && hour < 19 && !weekend;
    if (working || random() < 0.12) return at.getTime();
  }
  return nowMs - random() * days * 86_400_000;
}

function sessionIdFor(tool: ToolId, startMs: number, random: () => number): string {
  // Codex names sessions with UUIDv7, Claude Code and Gemini CLI with UUIDv4.
  if (tool === 'codex') return uuidV7(startMs, random);
  const value = hex(random, 32).split('');
  value[12] = '4';
  value[16] = '89ab'[Math.floor(random() * 4)]!;
  const text = value.join('');
  return `${text.slice(0, 8)}-${text.slice(8, 12)}-${text.slice(12, 16)}-${text.slice(16, 20)}-${text.slice(20)}`;
}

/** A UUIDv7 (RFC 9562) for `unixMs`, so call ids sort by start time as the proxy's do. */
function uuidV7(unixMs: number, random: () => number): string {
  const time = Math.floor(unixMs).toString(16).padStart(12, '0');
  const rest = hex(random, 19).split('');
  rest[3] = '89ab'[Math.floor(random() * 4)]!;
  const tail = rest.join('');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${tail.slice(0, 3)}-${tail.slice(3, 7)}-${tail.slice(7, 19)}`;
}

function hex(random: () => number, length: number): string {
  let text = '';
  while (text.length < length)
    text += Math.floor(random() * 0x100000000)
      .toString(16)
      .padStart(8, '0');
  return text.slice(0, length);
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function weightedPick(random: () => number, choices: readonly ModelChoice[]): ModelChoice {
  const total = choices.reduce((sum, choice) => sum + choice.weight, 0);
  let roll = random() * total;
  for (const choice of choices) {
    roll -= choice.weight;
    if (roll < 0) return choice;
  }
  return choices.at(-1)!;
}

/** Mulberry32: a small, fast 32-bit generator; plenty for made-up demo data, not for anything secret. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}
