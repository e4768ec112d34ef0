import { TokenwiseError } from '@tokenwise/core';
import { type MailConfig, parseMailFrom, parseSmtpUrl } from './mailer.js';

/**
 * Read `--smtp-url` (TOKENWISE_SMTP_URL) and `--mail-from` (TOKENWISE_MAIL_FROM). Without an SMTP URL the
 * server sends no email; a sender without one is an error, since it would silently do nothing. The sender
 * defaults to `Tokenwise <tokenwise@HOST>`, HOST being the host name of `--public-url` or `localhost`.
 */
export function resolveMailConfig(
  flags: { smtpUrl?: string; mailFrom?: string },
  env: NodeJS.ProcessEnv,
  publicUrl: string | undefined,
): MailConfig | undefined {
  const smtpUrl = pickOption(flags.smtpUrl, '--smtp-url', env.TOKENWISE_SMTP_URL, 'TOKENWISE_SMTP_URL');
  const from = pickOption(flags.mailFrom, '--mail-from', env.TOKENWISE_MAIL_FROM, 'TOKENWISE_MAIL_FROM');
  if (!smtpUrl) {
    if (from)
      throw new TokenwiseError(
        'invalid_argument',
        `${from.source} was given without --smtp-url: add the SMTP server to send email through`,
      );
    return undefined;
  }
  return {
    smtpUrl: parseSmtpUrl(smtpUrl.value, smtpUrl.source),
    from: from ? parseMailFrom(from.value, from.source) : defaultSender(publicUrl),
  };
}

function defaultSender(publicUrl: string | undefined): string {
  const host = publicUrl ? new URL(publicUrl).hostname : '';
  // An IP address or a bare name is no mail domain, so those get localhost.
  const domain = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(host) && !/^[\d.]+$/.test(host) ? host : 'localhost';
  return `Tokenwise <tokenwise@${domain}>`;
}

function pickOption(flag: string | undefined, flagName: string, envValue: string | undefined, envName: string) {
  if (flag !== undefined) return { value: flag, source: flagName };
  if (envValue !== undefined && envValue !== '') return { value: envValue, source: envName };
  return undefined;
}
