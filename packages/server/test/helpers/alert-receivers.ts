import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>/hooks/<secret path>`, shaped like a Slack incoming webhook URL. */
  url: string;
  /** Parsed JSON bodies of the POSTs answered 2xx, in arrival order. */
  delivered: unknown[];
  /** Every POST received, answered or failed. */
  attempts(): number;
  /** Answer the next `count` POSTs with this status instead of 200. */
  failNext(count: number, status: number): void;
  close(): Promise<void>;
}

/** Start a Slack-style webhook receiver on 127.0.0.1 that records each JSON body it accepts. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const delivered: unknown[] = [];
  let attempts = 0;
  let failures = 0;
  let failureStatus = 500;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      attempts += 1;
      if (failures > 0) {
        failures -= 1;
        res.writeHead(failureStatus, { 'content-type': 'text/plain' }).end('failing on purpose');
        return;
      }
      if (req.method !== 'POST' || req.headers['content-type'] !== 'application/json') {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('invalid_payload');
        return;
      }
      delivered.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/T000FAKE/B000FAKE/webhooksecretFAKE`,
    delivered,
    attempts: () => attempts,
    failNext(count, status) {
      failures = count;
      failureStatus = status;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ReceivedMail {
  from: string;
  to: string[];
  /** The decoded subject and text body. */
  subject: string;
  text: string;
}

export interface SmtpReceiver {
  /** `smtp://127.0.0.1:<port>`. */
  url: string;
  mails: ReceivedMail[];
  close(): Promise<void>;
}

/** Start an SMTP server on 127.0.0.1 without TLS or authentication that keeps every message it accepts. */
export async function startSmtpReceiver(): Promise<SmtpReceiver> {
  const mails: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        simpleParser(Buffer.concat(chunks))
          .then((parsed) => {
            mails.push({
              from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
              to: session.envelope.rcptTo.map((recipient) => recipient.address),
              subject: parsed.subject ?? '',
              text: parsed.text ?? '',
            });
            callback();
          })
          .catch((error: Error) => callback(error));
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
