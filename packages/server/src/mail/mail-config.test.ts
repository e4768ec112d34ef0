import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveJudgeApiKey } from '../judge/judge-key.js';
import { resolveMailConfig } from './mail-config.js';
import { describeSmtpUrl } from './mailer.js';

describe('resolveMailConfig', () => {
  it('sends nothing without an SMTP URL', () => {
    expect(resolveMailConfig({}, {}, undefined)).toBeUndefined();
  });

  it('takes the flag over the variable', () => {
    const config = resolveMailConfig(
      { smtpUrl: 'smtp://127.0.0.1:2525', mailFrom: 'Ops <ops@example.com>' },
      { TOKENWISE_SMTP_URL: 'smtp://other:25' },
      undefined,
    );

    expect(config).toEqual({ smtpUrl: 'smtp://127.0.0.1:2525', from: 'Ops <ops@example.com>' });
  });

  it('names the sender after the public host', () => {
    expect(resolveMailConfig({}, { TOKENWISE_SMTP_URL: 'smtps://mail.example.com' }, 'https://tokenwise.example.com')?.from).toBe(
      'Tokenwise <tokenwise@tokenwise.example.com>',
    );
    expect(resolveMailConfig({}, { TOKENWISE_SMTP_URL: 'smtp://127.0.0.1' }, 'http://10.0.0.5:4747')?.from).toBe(
      'Tokenwise <tokenwise@localhost>',
    );
  });

  it('rejects a sender without a server', () => {
    expect(() => resolveMailConfig({ mailFrom: 'a@example.com' }, {}, undefined)).toThrow(
      '--mail-from was given without --smtp-url: add the SMTP server to send email through',
    );
  });

  it('rejects another scheme without quoting the URL', () => {
    const attempt = () => resolveMailConfig({}, { TOKENWISE_SMTP_URL: 'http://user:hunter2@mail.example.com' }, undefined);

    expect(attempt).toThrow('invalid TOKENWISE_SMTP_URL: expected smtp://[user:password@]host[:port] or smtps://');
    expect(attempt).not.toThrow(/hunter2/);
  });

  it('rejects a sender with a line break', () => {
    expect(() => resolveMailConfig({ smtpUrl: 'smtp://h', mailFrom: 'a@example.com\r\nBcc: b@example.com' }, {}, undefined)).toThrow(
      /invalid --mail-from/,
    );
  });

  it('describes the server without its password', () => {
    expect(describeSmtpUrl('smtp://alerts:hunter2@mail.example.com:587?secure=false')).toBe('smtp://alerts@mail.example.com:587');
  });
});

describe('resolveJudgeApiKey', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tokenwise-judge-key-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the variable, or the file trimmed', async () => {
    const file = join(dir, 'key');
    await writeFile(file, 'sk-ant-api03-FAKE-judge\n');

    expect(resolveJudgeApiKey({}, { TOKENWISE_JUDGE_API_KEY: 'sk-FAKE-env' })).toBe('sk-FAKE-env');
    expect(resolveJudgeApiKey({ judgeApiKeyFile: file }, {})).toBe('sk-ant-api03-FAKE-judge');
    expect(resolveJudgeApiKey({}, { TOKENWISE_JUDGE_API_KEY_FILE: file })).toBe('sk-ant-api03-FAKE-judge');
    expect(resolveJudgeApiKey({}, {})).toBeUndefined();
  });

  it('rejects both sources at once', async () => {
    expect(() => resolveJudgeApiKey({ judgeApiKeyFile: join(dir, 'key') }, { TOKENWISE_JUDGE_API_KEY: 'sk-FAKE' })).toThrow(
      'both TOKENWISE_JUDGE_API_KEY and --judge-api-key-file are set: keep one of them',
    );
  });

  it('names a missing file and a bad key without quoting it', async () => {
    const file = join(dir, 'key');
    await writeFile(file, 'two words');

    expect(() => resolveJudgeApiKey({ judgeApiKeyFile: join(dir, 'missing') }, {})).toThrow(
      `failed to read the judge API key file ${join(dir, 'missing')} named by --judge-api-key-file (ENOENT)`,
    );
    expect(() => resolveJudgeApiKey({ judgeApiKeyFile: file }, {})).toThrow(`invalid judge API key in the file ${file} (9 characters)`);
    expect(() => resolveJudgeApiKey({ judgeApiKeyFile: file }, {})).not.toThrow(/two words/);
  });
});
