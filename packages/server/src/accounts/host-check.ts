import { isIP } from 'node:net';

/**
 * Decide which `Host` headers the web UI and cookie-signed requests accept, against DNS rebinding. A page on
 * another site that points its own name at this server's address sends requests with its own name in
 * `Host`, so only names this server is known by pass: the host of `--public-url`, `localhost`, and any IP
 * address (a rebinding page cannot make the browser send a bare IP as its host).
 */
export function createHostCheck(publicUrl: string | undefined): (host: string | undefined) => boolean {
  const publicHost = publicUrl === undefined ? null : new URL(publicUrl).host.toLowerCase();
  return (host) => {
    if (!host) return false;
    const lower = host.toLowerCase();
    if (lower === publicHost) return true;
    const name = hostName(lower);
    if (name === null) return false;
    return name === 'localhost' || isIP(name) !== 0;
  };
}

/** `example.com:4747` -> `example.com`, `[::1]:4747` -> `::1`; null for a malformed value. */
function hostName(host: string): string | null {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end === -1) return null;
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return null;
    return host.slice(1, end);
  }
  const match = /^([a-z0-9.-]+)(?::\d{1,5})?$/.exec(host);
  return match ? match[1]! : null;
}

/**
 * True when a browser's `Origin` names the host the request went to (or is absent, as for a form posted by
 * an older browser). A cross-site form post carries the other site's origin.
 */
export function originMatchesHost(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  if (origin === 'null' || !host) return false;
  try {
    return new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}
