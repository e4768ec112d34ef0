import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, relative, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Logger } from 'pino';
import { escapeHtml } from './accounts/web-pages.js';

/**
 * The dashboard's production build (`packages/dashboard/dist/web`), read into memory once at start: the
 * build never changes while the server runs, and it is under a megabyte. Only files found in the build are
 * served, so no request path reaches the file system.
 */
export interface DashboardFiles {
  /** False when no build was found; `/` then shows the server's plain HTML home page. */
  readonly available: boolean;
  /** True for a GET or HEAD of a file of the build other than index.html. */
  matchesFile(req: IncomingMessage): boolean;
  serveFile(req: IncomingMessage, res: ServerResponse): void;
  /** Send index.html for a signed-in person, with the page's CSRF token in `<meta name="csrf-token">`. */
  sendIndex(req: IncomingMessage, res: ServerResponse, csrfToken: string): void;
}

/** The paths the dashboard routes in the browser; each is answered with index.html. */
const APP_PATHS = /^\/(?:|calls|calls\/[^/]+|sessions|sessions\/[^/]+|prompts|prompts\/[^/]+|devices|budgets|settings)$/;

export function isDashboardPath(path: string): boolean {
  return APP_PATHS.test(path);
}

/**
 * Paths the server never gives to the browser app: the API, the proxy, the connect scripts, the build's
 * assets and the health checks. A path whose last segment has a dot names a file, and gets a 404 of its own
 * when no such file exists.
 */
const RESERVED_PATHS = /^\/(?:api|r|connect|assets|metrics|healthz|readyz)(?:[/.]|$)|\.[^/]*$/;

export function isReservedPath(path: string): boolean {
  return RESERVED_PATHS.test(path);
}

/**
 * Decide whether a request for a path that no server route takes gets the dashboard's index.html, so that the
 * app shows its own not-found page. That holds for a GET or HEAD from a browser (`Accept` names text/html) of
 * a path that is not reserved. API clients such as curl and fetch keep getting the JSON 404.
 */
export function wantsAppPage(req: IncomingMessage, path: string): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (isReservedPath(path)) return false;
  return /\btext\/html\b/.test(String(req.headers.accept ?? ''));
}

/** Map "/settings/" to the app path "/settings" that the browser meant; null for any other path. */
export function withoutTrailingSlash(path: string): string | null {
  if (path.length < 2 || !path.endsWith('/')) return null;
  const trimmed = path.replace(/\/+$/, '');
  return isDashboardPath(trimmed) ? trimmed : null;
}

/**
 * Scripts and styles only from this server, no inline script or style element (React and uPlot set styles
 * through the CSSOM, which style-src does not govern), images also from `data:` and `blob:` URLs because
 * stored requests carry base64 images, frames only of this server (the insights email preview), and no
 * request to any other host.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; manifest-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

/** Files at least this large are also kept gzip-compressed, for browsers that accept it. */
const GZIP_MIN_BYTES = 1024;

interface StaticFile {
  body: Buffer;
  gzip: Buffer | null;
  contentType: string;
  etag: string;
  /** Vite puts a content hash in every name under /assets/, so those can be cached for good. */
  immutable: boolean;
}

export async function loadDashboardFiles(dir: string | undefined, logger: Logger): Promise<DashboardFiles> {
  const files = new Map<string, StaticFile>();
  let index: string | null = null;
  if (dir !== undefined) {
    try {
      index = await readFile(join(dir, 'index.html'), 'utf8');
      for (const file of await listFiles(dir)) {
        const urlPath = `/${relative(dir, file).split(sep).join('/')}`;
        if (urlPath === '/index.html') continue;
        const body = await readFile(file);
        files.set(urlPath, {
          body,
          gzip: body.length >= GZIP_MIN_BYTES ? gzipSync(body) : null,
          contentType: CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
          etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
          immutable: urlPath.startsWith('/assets/'),
        });
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      index = null;
      files.clear();
      logger.warn({ dir }, 'no dashboard build found; / shows the plain HTML pages. Run "npm run build" to build the dashboard');
    }
  }

  return {
    available: index !== null,

    matchesFile(req) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      return files.has(pathOf(req));
    },

    serveFile(req, res) {
      const file = files.get(pathOf(req))!;
      const headers: Record<string, string> = {
        'content-type': file.contentType,
        'cache-control': file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        etag: file.etag,
        vary: 'accept-encoding',
        'x-content-type-options': 'nosniff',
        'content-security-policy': DASHBOARD_CSP,
      };
      if (req.headers['if-none-match'] === file.etag) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      const gzip = file.gzip !== null && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
      const body = gzip ? file.gzip! : file.body;
      if (gzip) headers['content-encoding'] = 'gzip';
      headers['content-length'] = String(body.length);
      res.writeHead(200, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    },

    sendIndex(req, res, csrfToken) {
      const text = index!.replace('</head>', `<meta name="csrf-token" content="${escapeHtml(csrfToken)}">\n</head>`);
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-length': Buffer.byteLength(text),
        // The page carries the CSRF token of this session, so it must not be cached or shared. Its sign-out
        // form needs a real Origin header, which `no-referrer` would turn into `null`.
        'cache-control': 'no-store',
        'referrer-policy': 'same-origin',
        'x-frame-options': 'DENY',
        'x-content-type-options': 'nosniff',
        'content-security-policy': DASHBOARD_CSP,
      });
      res.end(req.method === 'HEAD' ? undefined : text);
    },
  };
}

function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://localhost').pathname;
}

async function listFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await listFiles(full)));
    else if (entry.isFile()) found.push(full);
  }
  return found;
}
