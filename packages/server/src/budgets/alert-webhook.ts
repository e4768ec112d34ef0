import { lookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { TokenwiseError } from '@tokenwise/core';
import { Agent, request } from 'undici';

/** Time one webhook POST may take, headers and body together, in ms. */
const WEBHOOK_TIMEOUT_MS = 10_000;

/** The outcome of one delivery attempt; `permanent` failures are not retried. */
export type DeliveryResult = { ok: true } | { ok: false; permanent: boolean; error: string };

export interface WebhookSender {
  /** POST `{"text": text}`, the payload of a Slack incoming webhook, which Mattermost and others accept too. */
  send(url: string, text: string): Promise<DeliveryResult>;
  close(): Promise<void>;
}

/**
 * Addresses a webhook may not reach unless the operator allows private webhooks: loopback, private
 * networks (RFC 1918, RFC 4193), link-local (cloud metadata services live at 169.254.169.254), carrier-grade
 * NAT, and the unspecified, benchmarking and multicast ranges. A workspace owner picks the URL, and the
 * server must not become their way into the network it runs in.
 */
const PRIVATE_RANGES: [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['224.0.0.0', 3, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['fc00::', 7, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
];

const privateAddresses = new BlockList();
for (const [network, prefix, family] of PRIVATE_RANGES) privateAddresses.addSubnet(network, prefix, family);

/** True for an address webhooks may not reach by default; an IPv4-mapped IPv6 address counts as its IPv4 one. */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return privateAddresses.check(mapped, 'ipv4');
  const family = isIP(address);
  if (family === 0) return false;
  return privateAddresses.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Check a webhook URL as a workspace owner enters it: http or https, without a user name or password.
 * Unless private webhooks are allowed, it may not name a private address or `localhost`; host names are
 * checked again when each delivery resolves them. Returns the URL as parsed.
 */
export function parseWebhookUrl(value: string, allowPrivate: boolean): string {
  let url: URL | null = null;
  try {
    url = new URL(value.trim());
  } catch {
    // Reported below with the expected form.
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) {
    throw new TokenwiseError(
      'invalid_argument',
      'invalid webhook_url: expected an http or https URL without a user name or password, e.g. https://hooks.slack.com/services/…',
    );
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && (isPrivateAddress(host) || host === 'localhost' || host.endsWith('.localhost'))) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid webhook_url: ${host} is a local or private address, which this server does not send to; start it with --allow-private-webhooks to allow that`,
    );
  }
  return url.toString();
}

/** Mask a webhook URL for display: its origin only, because the path of a Slack webhook is its secret. */
export function maskWebhookUrl(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return '…';
  }
}

/**
 * Create the sender of webhook alerts. Each POST goes through an agent whose DNS lookup rejects private
 * addresses (unless allowed), so a name that resolves to one, at any time, is not reached. Redirects are
 * not followed. Error texts never contain the URL, whose path is a secret.
 */
export function createWebhookSender(options: { allowPrivate: boolean; timeoutMs?: number }): WebhookSender {
  const timeoutMs = options.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  const checkedLookup: LookupFunction = (hostname, lookupOptions, callback) => {
    lookup(hostname, { ...lookupOptions, all: true }, (error, addresses) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      const allowed = addresses.filter((entry) => options.allowPrivate || !isPrivateAddress(entry.address));
      if (allowed.length === 0) {
        const refused = Object.assign(new Error(`${hostname} resolves only to private addresses`), { code: 'EPRIVATEADDRESS' });
        callback(refused, '', 0);
        return;
      }
      if (lookupOptions.all) callback(null, allowed);
      else callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
  const agent = new Agent({ connect: { lookup: checkedLookup, timeout: timeoutMs } });

  return {
    async send(url, text) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        return { ok: false, permanent: true, error: 'the webhook URL is invalid' };
      }
      const host = parsed.hostname.replace(/^\[|\]$/g, '');
      if (!options.allowPrivate && isPrivateAddress(host)) {
        return { ok: false, permanent: true, error: 'the webhook address is private; the server runs without --allow-private-webhooks' };
      }
      try {
        const response = await request(parsed, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json', 'user-agent': 'Tokenwise budget alerts' },
          body: JSON.stringify({ text }),
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: AbortSignal.timeout(timeoutMs),
        });
        await response.body.dump();
        if (response.statusCode >= 200 && response.statusCode < 300) return { ok: true };
        // A 4xx other than 408 and 429 means the receiver rejects this request as it is: trying again will not help.
        const permanent =
          response.statusCode >= 400 && response.statusCode < 500 && response.statusCode !== 408 && response.statusCode !== 429;
        return { ok: false, permanent, error: `the webhook returned HTTP ${response.statusCode}` };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).name;
        const permanent = code === 'EPRIVATEADDRESS';
        const reason = permanent ? 'its host resolves only to private addresses' : `the request failed (${code})`;
        return { ok: false, permanent, error: `the webhook could not be reached: ${reason}` };
      }
    },
    close: () => agent.close(),
  };
}
