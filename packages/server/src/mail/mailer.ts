import { TokenwiseError } from '@tokenwise/core';
import nodemailer from 'nodemailer';

/** The SMTP server (`--smtp-url`) and the sender (`--mail-from`) of the server's emails. */
export interface MailConfig {
  /** `smtp://[user:password@]host[:port]` (STARTTLS when the server offers it) or `smtps://…` (TLS from the start). */
  smtpUrl: string;
  /** The `From` address, e.g. `Tokenwise <tokenwise@example.com>`. */
  from: string;
}

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** Extra headers, e.g. `List-Unsubscribe`. */
  headers?: Record<string, string>;
}

export interface SentMail {
  /** The `Message-ID` of the sent email. */
  messageId: string;
  accepted: string[];
  rejected: string[];
}

/** One SMTP transport shared by every feature that sends email (the insights email, budget alerts). */
export interface Mailer {
  /** The SMTP server's URL without its password, safe to log. */
  readonly server: string;
  readonly from: string;
  /** Send one email; rejects with a `MailSendError` naming the SMTP server (never its password) on failure. */
  send(mail: OutgoingMail): Promise<SentMail>;
  close(): void;
}

/** The SMTP server could not be reached, or it rejected the email. */
export class MailSendError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MailSendError';
  }
}

/** Timeouts of one SMTP exchange, in ms, so a server that stops answering cannot hold a job for long. */
const CONNECTION_TIMEOUT_MS = 30_000;
const GREETING_TIMEOUT_MS = 30_000;
const SOCKET_TIMEOUT_MS = 60_000;

export function createMailer(config: MailConfig): Mailer {
  const server = describeSmtpUrl(config.smtpUrl);
  const transport = nodemailer.createTransport({
    url: config.smtpUrl,
    connectionTimeout: CONNECTION_TIMEOUT_MS,
    greetingTimeout: GREETING_TIMEOUT_MS,
    socketTimeout: SOCKET_TIMEOUT_MS,
    // The messages are built here from text and HTML strings; nothing may read files or URLs into them.
    disableFileAccess: true,
    disableUrlAccess: true,
  });

  return {
    server,
    from: config.from,
    async send(mail: OutgoingMail): Promise<SentMail> {
      try {
        const info = await transport.sendMail({
          from: config.from,
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          ...(mail.html === undefined ? {} : { html: mail.html }),
          ...(mail.headers === undefined ? {} : { headers: mail.headers }),
        });
        return {
          messageId: info.messageId,
          accepted: info.accepted.map(String),
          rejected: info.rejected.map(String),
        };
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new MailSendError(`sending email through ${server} failed: ${redactUrlPassword(reason, config.smtpUrl)}`, { cause: error });
      }
    },
    close() {
      transport.close();
    },
  };
}

/** Check `--smtp-url`: an smtp or smtps URL with a host. The message never repeats the URL, which may carry a password. */
export function parseSmtpUrl(value: string, source: string): string {
  const text = value.trim();
  let url: URL | null = null;
  try {
    url = new URL(text);
  } catch {
    // Reported below with the expected form.
  }
  if (!url || (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') || url.hostname === '') {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${source}: expected smtp://[user:password@]host[:port] or smtps://[user:password@]host[:port]`,
    );
  }
  return text;
}

/** Check `--mail-from`: one address, optionally with a display name (`Tokenwise <tokenwise@example.com>`). */
export function parseMailFrom(value: string, source: string): string {
  const text = value.trim();
  const address = /<([^<>\s]+)>$/.exec(text)?.[1] ?? text;
  if (!/^[^@\s<>",]+@[^@\s<>",]+$/.test(address) || /[\r\n]/.test(text)) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${source} "${text}": expected an address such as "Tokenwise <tokenwise@example.com>"`,
    );
  }
  return text;
}

/** Return the URL without its password and query, e.g. `smtp://alerts@mail.example.com:587`. */
export function describeSmtpUrl(smtpUrl: string): string {
  try {
    const url = new URL(smtpUrl);
    const user = url.username ? `${decodeURIComponent(url.username)}@` : '';
    return `${url.protocol}//${user}${url.host}`;
  } catch {
    return 'the configured SMTP server';
  }
}

function redactUrlPassword(message: string, smtpUrl: string): string {
  try {
    const password = decodeURIComponent(new URL(smtpUrl).password);
    return password ? message.split(password).join('***') : message;
  } catch {
    return message;
  }
}
