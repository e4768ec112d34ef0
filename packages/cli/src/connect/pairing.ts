import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { CliError } from '../cli-error.js';
import { describeFetchFailure } from './fetch-failure.js';

/** The `grant_type` of a device access token request (RFC 8628 section 3.4). */
const DEVICE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';
const CLIENT_ID = 'tokenwise-cli';
const REQUEST_TIMEOUT_MS = 10_000;

export interface PairedToken {
  token: string;
  tokenId: string | null;
  deviceId: string;
  workspaceName: string;
  /** The origin the tools send calls to; the server's own URL unless it names another. */
  proxyBaseUrl: string;
}

export interface PairingOptions {
  /** Prints one line for the person at the terminal. */
  say(line: string): void;
  /** Open the approval page in a browser when this machine has one. */
  openBrowser: boolean;
  env: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  /** Waits between polls; tests pass a fast one. */
  sleep?: (ms: number) => Promise<void>;
}

interface CodeAnswer {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete?: string;
  expires_in: number;
  interval?: number;
}

/**
 * Pair this machine with the server through the device authorization grant (RFC 8628). It requests a
 * code, shows the short URL and the code (and opens the page when a browser is at hand), then polls until
 * a person approves it and the server hands out this device's route token. Returns null when the server
 * has no pairing endpoint (an older version).
 */
export async function pairThisDevice(serverUrl: string, options: PairingOptions): Promise<PairedToken | null> {
  const platform = options.platform ?? process.platform;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));

  const codeResponse = await post(serverUrl, '/api/v1/device/code', {
    client_id: CLIENT_ID,
    device_name: hostname().slice(0, 100) || 'unnamed device',
    os: platform,
  });
  if (codeResponse.status === 404) return null;
  if (codeResponse.status !== 200)
    throw new CliError(`the server at ${serverUrl} refused to start pairing: ${describeError(codeResponse.body)}`);
  const code = codeResponse.body as unknown as CodeAnswer;

  options.say(`To pair this machine, open ${code.verification_uri} and enter the code ${code.user_code}`);
  const pageUrl = code.verification_uri_complete ?? code.verification_uri;
  if (options.openBrowser && hasBrowser(options.env, platform) && openInBrowser(pageUrl, platform)) {
    options.say(`Opened ${pageUrl} in your browser. Waiting for approval…`);
  } else {
    options.say(`Or open ${pageUrl}`);
    options.say('Waiting for approval…');
  }

  let intervalMs = Math.max(1, code.interval ?? 5) * 1000;
  const deadline = Date.now() + code.expires_in * 1000;
  for (;;) {
    await sleep(intervalMs);
    if (Date.now() > deadline) throw new CliError('the pairing code expired before it was approved: run tokenwise connect again');

    const answer = await post(serverUrl, '/api/v1/device/token', {
      grant_type: DEVICE_GRANT_TYPE,
      device_code: code.device_code,
      client_id: CLIENT_ID,
    });
    if (answer.status === 200) return toPairedToken(answer.body, serverUrl);

    switch (answer.body.error) {
      case 'authorization_pending':
        continue;
      case 'slow_down':
        // RFC 8628 section 3.5: wait 5 s longer from now on; the server also sends the new interval.
        intervalMs = typeof answer.body.interval === 'number' ? answer.body.interval * 1000 : intervalMs + 5000;
        continue;
      case 'access_denied':
        throw new CliError('the pairing was denied in the browser, so nothing was changed');
      case 'expired_token':
        throw new CliError('the pairing code expired before it was approved: run tokenwise connect again');
      default:
        throw new CliError(`pairing failed: ${describeError(answer.body)}`);
    }
  }
}

function toPairedToken(body: Record<string, unknown>, serverUrl: string): PairedToken {
  const token = body.access_token;
  if (typeof token !== 'string' || !/^[A-Za-z0-9_-]{8,200}$/.test(token) || typeof body.device_id !== 'string') {
    throw new CliError(`the server at ${serverUrl} answered the pairing without a valid route token`);
  }
  return {
    token,
    tokenId: typeof body.route_token_id === 'string' ? body.route_token_id : null,
    deviceId: body.device_id,
    workspaceName: typeof body.workspace_name === 'string' ? body.workspace_name : '',
    proxyBaseUrl:
      typeof body.proxy_base_url === 'string' && /^https?:\/\//.test(body.proxy_base_url)
        ? body.proxy_base_url.replace(/\/+$/, '')
        : serverUrl,
  };
}

async function post(
  serverUrl: string,
  path: string,
  fields: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  let response: Response;
  try {
    response = await fetch(`${serverUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(fields).toString(),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new CliError(
      `failed to reach the Tokenwise server at ${serverUrl}: ${describeFetchFailure(error)}. Check the --server URL and that "tokenwise serve" runs there.`,
    );
  }
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status: response.status, body: { error: `HTTP ${response.status}`, error_description: text.slice(0, 200) } };
  }
}

function describeError(body: Record<string, unknown>): string {
  const description = typeof body.error_description === 'string' ? body.error_description : '';
  return [String(body.error ?? 'unknown error'), description].filter(Boolean).join(': ');
}

/**
 * True when a browser can show a page for the person at this terminal: a desktop session on Linux (X11 or
 * Wayland, which over SSH means forwarding), and macOS or Windows unless the terminal is an SSH session.
 */
export function hasBrowser(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): boolean {
  if (env.TOKENWISE_NO_BROWSER && env.TOKENWISE_NO_BROWSER !== '0') return false;
  const overSsh = Boolean(env.SSH_CONNECTION || env.SSH_TTY);
  if (platform === 'linux' || platform === 'freebsd' || platform === 'openbsd') return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
  if (platform === 'darwin' || platform === 'win32') return !overSsh;
  return false;
}

/** Start the platform's URL opener without waiting for it; false when it could not be started. */
function openInBrowser(url: string, platform: NodeJS.Platform): boolean {
  const [command, args] =
    platform === 'darwin'
      ? ['open', [url]]
      : platform === 'win32'
        ? // rundll32 passes the URL on untouched; `cmd /c start` would read & and ^ in it.
          ['rundll32', ['url.dll,FileProtocolHandler', url]]
        : ['xdg-open', [url]];
  try {
    const child = spawn(command, args, { detached: true, stdio: 'ignore' });
    child.on('error', () => undefined);
    child.unref();
    return true;
  } catch {
    return false;
  }
}
