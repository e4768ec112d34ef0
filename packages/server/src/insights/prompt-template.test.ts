import { join } from 'node:path';
import type { ApiShape } from '@tokenwise/core';
import { fixturesRoot, loadWireFixture } from '@tokenwise/testkit';
import { describe, expect, it } from 'vitest';
import { extractPromptParts } from './prompt-parts.js';
import { groupOpening, normalizePromptText, type PromptTemplate, promptTemplate } from './prompt-template.js';

type Body = Record<string, unknown>;

/** The request body of a fixture case, as a fresh copy a test may change. */
function fixtureBody(corpus: string, name: string): Body {
  return structuredClone(loadWireFixture(join(fixturesRoot(), corpus, name)).request.body) as Body;
}

function templateOf(tool: string, apiShape: ApiShape, body: Body, models: string[] = []): PromptTemplate {
  return promptTemplate(tool, extractPromptParts(apiShape, body), models);
}

/** What differs between two machines and two days: the directory, the date, the git state and the ids. */
const MACHINES = [
  {
    cwd: '/home/ada/src/payments',
    date: '2026-12-01',
    longDate: 'Tuesday, December 1, 2026',
    branch: 'main',
    commits: ['a1b2c3d Fix the refund rounding', '9f8e7d6 Add the ledger export'],
    status: ' M src/ledger.ts',
    billing: 'cc_version=2.1.197.123; cc_entrypoint=cli;',
    session: '2b9e4c1a-6f3d-4e8b-9a7c-5d1e0f2a3b4c',
    os: 'Linux 6.1.0-27-amd64',
  },
  {
    cwd: '/Users/carol/work/website',
    date: '2026-12-04',
    longDate: 'Friday, December 4, 2026',
    branch: 'feature/login',
    commits: ['0c1d2e3 Style the sign-in form'],
    status: '?? notes.md\n M index.html',
    billing: 'cc_version=2.1.197.d9c; cc_entrypoint=sdk-cli;',
    session: '7d3f1a2b-0c4e-4f5a-8b6c-9d0e1f2a3b4c',
    os: 'Darwin 24.1.0',
  },
] as const;

type Machine = (typeof MACHINES)[number];

/** Claude Code 2.1's system blocks: the billing line, then the instructions with the `<env>` block and the git snapshot. */
function claudeCodeBody(machine: Machine, instructions?: string): Body {
  const body = fixtureBody('llm-wire-extra', 'anthropic-stream-client-abort');
  const system = body.system as { type: string; text: string }[];
  system[0]!.text = `x-anthropic-billing-header: ${machine.billing}`;
  system[1]!.text = [
    instructions ?? system[1]!.text,
    '',
    'Here is useful information about the environment you are running in:',
    '<env>',
    `Working directory: ${machine.cwd}`,
    'Is directory a git repo: Yes',
    'Platform: linux',
    `OS Version: ${machine.os}`,
    `Today's date: ${machine.date}`,
    '</env>',
    'You are powered by the model named Sonnet 4.5. The exact model ID is claude-sonnet-4-5-20250929.',
    '',
    `When a command fails, report it with the session id ${machine.session} and the path ${machine.cwd}/.claude/logs.`,
    '',
    'gitStatus: This is the git status at the start of the conversation. Note that this status is a snapshot in time.',
    `Current branch: ${machine.branch}`,
    '',
    'Status:',
    machine.status,
    '',
    'Recent commits:',
    ...machine.commits,
  ].join('\n');
  body.tools = [
    { name: 'Bash', description: 'Run a shell command.', input_schema: { type: 'object', properties: { command: { type: 'string' } } } },
    {
      name: 'Read',
      description: `Read a file. Example: ${machine.cwd}/README.md`,
      input_schema: { type: 'object', properties: { file_path: { type: 'string' } } },
      cache_control: { type: 'ephemeral' },
    },
  ];
  return body;
}

/** Codex 0.171's Responses body: the instructions as a developer message, then its `<environment_context>`. */
function codexBody(machine: Machine): Body {
  const body = fixtureBody('llm-wire-extra', 'chatgpt-responses-stream');
  const input = body.input as { content: { type: string; text: string }[] }[];
  input[0]!.content.push({
    type: 'input_text',
    text: `<environment_context>\n  <cwd>${machine.cwd}</cwd>\n  <approval_policy>never</approval_policy>\n  <shell>bash</shell>\n</environment_context>`,
  });
  body.prompt_cache_key = machine.session;
  return body;
}

/** Gemini CLI 0.61 on Code Assist: the system instruction ends with the date and the working directory in prose. */
function geminiBody(machine: Machine): Body {
  const body = fixtureBody('llm-wire-extra', 'codeassist-stream-sse');
  const request = body.request as { systemInstruction: { parts: { text: string }[] }; session_id: string };
  request.systemInstruction.parts[0]!.text +=
    `\n\nToday's date is ${machine.longDate}.\nMy operating system is: ${machine.os}\nI'm currently working in the directory: ${machine.cwd}`;
  request.session_id = machine.session;
  return body;
}

describe('promptTemplate on the recorded tools', () => {
  it.each([
    ['claude-code', 'anthropic.messages', claudeCodeBody],
    ['codex', 'openai.responses', codexBody],
    ['gemini-cli', 'gemini.stream_generate_content', geminiBody],
  ] as const)('gives two machines of %s one version', (tool, apiShape, build) => {
    const [first, second] = MACHINES.map((machine) => templateOf(tool, apiShape, build(machine)));

    expect(second!.system).toBe(first!.system);
    expect(second!.tools).toEqual(first!.tools);
    expect(second!.fingerprint).toBe(first!.fingerprint);
    expect(second!.templateKey).toBe(first!.templateKey);
  });

  it('names the Claude Code template by its instructions, not its billing line', () => {
    const template = templateOf('claude-code', 'anthropic.messages', claudeCodeBody(MACHINES[0]));

    expect(template.opening).toBe('You are an interactive CLI tool that helps with software engineering tasks.');
    expect(template.system).not.toContain('cc_version');
  });

  it('names the Codex template by its developer message', () => {
    const template = templateOf('codex', 'openai.responses', codexBody(MACHINES[0]));

    expect(template.opening).toBe('You are Codex, a coding agent. Sandbox: read-only.');
  });

  it('reads Codex instructions from the top-level field', () => {
    const body = fixtureBody('llm-wire', 'openai-responses-codex-cli');
    const template = templateOf('codex', 'openai.responses', body);

    expect(template.opening).toMatch(/^You are a coding agent running in a terminal on the user's machine\./);
    expect(template.opening.length).toBeLessThanOrEqual(100);
    expect(template.tools.map((tool) => tool.name)).toEqual(['shell', 'update_plan']);
  });

  it('replaces every per-call part of the Claude Code prompt', () => {
    const template = templateOf('claude-code', 'anthropic.messages', claudeCodeBody(MACHINES[1]));

    expect(template.system).toBe(
      [
        'You are an interactive CLI tool that helps with software engineering tasks.',
        '',
        'Here is useful information about the environment you are running in:',
        '<env>…</env>',
        'You are powered by the model named <model>. The exact model ID is <model>.',
        '',
        'When a command fails, report it with the session id <id> and the path <path>.',
        '',
        'gitStatus: <git status>',
      ].join('\n'),
    );
    expect(template.tools[1]!.definition).toBe(
      '{"description":"Read a file. Example: <path>","input_schema":{"properties":{"file_path":{"type":"string"}},"type":"object"},"name":"Read"}',
    );
  });
});

describe('promptTemplate versions', () => {
  const base = () => claudeCodeBody(MACHINES[0]);

  it('keeps the group and changes the version when the instructions change', () => {
    const before = templateOf('claude-code', 'anthropic.messages', base());
    const after = templateOf(
      'claude-code',
      'anthropic.messages',
      claudeCodeBody(
        MACHINES[1],
        'You are an interactive CLI tool that helps with software engineering tasks.\n\nPrefer small, reviewed edits.',
      ),
    );

    expect(after.templateKey).toBe(before.templateKey);
    expect(after.fingerprint).not.toBe(before.fingerprint);
  });

  it('changes the version when a tool is added', () => {
    const body = base();
    (body.tools as unknown[]).push({ name: 'WebFetch', description: 'Fetch a URL.', input_schema: { type: 'object' } });

    expect(templateOf('claude-code', 'anthropic.messages', body).fingerprint).not.toBe(
      templateOf('claude-code', 'anthropic.messages', base()).fingerprint,
    );
  });

  it('ignores MCP tools and the order of tools', () => {
    const body = base();
    const tools = body.tools as unknown[];
    tools.reverse();
    tools.push({ name: 'mcp__github__create_issue', description: 'Create an issue.', input_schema: { type: 'object' } });

    expect(templateOf('claude-code', 'anthropic.messages', body).fingerprint).toBe(
      templateOf('claude-code', 'anthropic.messages', base()).fingerprint,
    );
  });

  it('keeps the version when the model changes', () => {
    const sonnet = base();
    const opus = base();
    const system = opus.system as { text: string }[];
    system[1]!.text = system[1]!.text.replace(
      'the model named Sonnet 4.5. The exact model ID is claude-sonnet-4-5-20250929.',
      'the model named Opus 4.1. The exact model ID is claude-opus-4-1-20250805.',
    );

    expect(templateOf('claude-code', 'anthropic.messages', opus, ['claude-opus-4-1']).fingerprint).toBe(
      templateOf('claude-code', 'anthropic.messages', sonnet, ['claude-sonnet-4-5']).fingerprint,
    );
  });

  it('separates tools that share a system prompt', () => {
    const body = base();

    expect(templateOf('anthropic-sdk', 'anthropic.messages', body).templateKey).not.toBe(
      templateOf('claude-code', 'anthropic.messages', body).templateKey,
    );
  });

  it('separates a tool-less request with the same opening', () => {
    const agent = base();
    const utility = base();
    delete utility.tools;
    const mcpOnly = base();
    mcpOnly.tools = [{ name: 'mcp__github__create_issue', description: 'Create an issue.', input_schema: { type: 'object' } }];

    const agentTemplate = templateOf('claude-code', 'anthropic.messages', agent);
    const utilityTemplate = templateOf('claude-code', 'anthropic.messages', utility);
    expect(utilityTemplate.opening).toBe(agentTemplate.opening);
    expect(utilityTemplate.templateKey).not.toBe(agentTemplate.templateKey);
    expect(groupOpening(utilityTemplate)).toBe(`${agentTemplate.opening} (no tools)`);
    expect(groupOpening(agentTemplate)).toBe(agentTemplate.opening);
    expect(templateOf('claude-code', 'anthropic.messages', mcpOnly).templateKey).toBe(agentTemplate.templateKey);
  });

  it('groups requests without a system prompt by tool', () => {
    const template = templateOf('anthropic-sdk', 'anthropic.messages', fixtureBody('llm-wire-extra', 'anthropic-oauth-web-search'));

    expect(template.opening).toBe('');
    expect(template.tools.map((tool) => tool.name)).toEqual(['web_search']);
  });
});

describe('normalizePromptText', () => {
  it.each([
    ["Today's date is Friday, December 4, 2026.", "Today's date is <date>."],
    ['Generated at 2026-12-04T10:15:00Z by the hook', 'Generated at <date> by the hook'],
    ['Local time 14:05, 4 Dec 2026', 'Local time <time>, <date>'],
    ['Edit C:\\Users\\ada\\app\\main.ts now', 'Edit <path> now'],
    ['See https://docs.example.org/guide/start and ~/notes/todo.md', 'See https://docs.example.org/guide/start and <path>'],
    ['Use /help or /compact and read and/or write', 'Use /help or /compact and read and/or write'],
    ['commit 3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a', 'commit <hex>'],
    ['Knowledge cutoff: January 2025', 'Knowledge cutoff: <date>'],
    ['Assistant knowledge cutoff is January 2025.', 'Assistant knowledge cutoff is <date>.'],
    ['line one   \r\n\r\n\r\n\r\nline two', 'line one\n\nline two'],
  ])('normalizes %j', (input, expected) => {
    expect(normalizePromptText(input)).toBe(expected);
  });
});
