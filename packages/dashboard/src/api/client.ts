/**
 * The dashboard's access to the server's JSON API under `/api/v1`. Requests ride on the browser's session
 * cookie; requests that change something carry the page's CSRF token (the server puts it in a
 * `<meta name="csrf-token">` of index.html), and every request names the chosen workspace.
 */

export const WORKSPACE_HEADER = 'x-tokenwise-workspace';
const CSRF_HEADER = 'x-csrf-token';
const WORKSPACE_STORAGE_KEY = 'tokenwise.workspace';

/** An error response of the API (`{"error": {"code", "message"}}`), or a failed request (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /**
   * True when this server has no such endpoint at all, as opposed to an unknown id: an older server or one
   * whose API lacks the feature. The page then says so instead of showing an error.
   */
  get notAvailable(): boolean {
    return this.status === 405 || this.status === 501 || (this.status === 404 && this.message.startsWith('no API endpoint'));
  }
}

let workspaceId: string | null = readStoredWorkspace();

export function currentWorkspaceId(): string | null {
  return workspaceId;
}

export function setCurrentWorkspaceId(id: string | null): void {
  workspaceId = id;
  try {
    if (id === null) localStorage.removeItem(WORKSPACE_STORAGE_KEY);
    else localStorage.setItem(WORKSPACE_STORAGE_KEY, id);
  } catch {
    // Storage can be disabled (private windows, policies); the choice then lasts until the page reloads.
  }
}

function readStoredWorkspace(): string | null {
  try {
    return localStorage.getItem(WORKSPACE_STORAGE_KEY);
  } catch {
    return null;
  }
}

function csrfToken(): string {
  return document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? '';
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** JSON body. */
  body?: unknown;
  /** Query parameters; undefined, null and empty values are left out. */
  query?: Record<string, string | number | boolean | null | undefined>;
  signal?: AbortSignal;
  /** Send no workspace header (for `/me`, which lists every workspace). */
  withoutWorkspace?: boolean;
}

/** Build `/api/v1{path}?{query}`, leaving out empty query values. */
export function apiUrl(path: string, query: RequestOptions['query'] = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue;
    params.set(key, String(value));
  }
  const search = params.toString();
  return `/api/v1${path}${search ? `?${search}` : ''}`;
}

/**
 * Send one API request and return its parsed JSON body. A 401 means the session ended, so the browser goes
 * to the sign-in page and comes back here afterwards.
 */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const method = options.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers[CSRF_HEADER] = csrfToken();
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (workspaceId && !options.withoutWorkspace) headers[WORKSPACE_HEADER] = workspaceId;

  let response: Response;
  try {
    response = await fetch(apiUrl(path, options.query), {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: 'same-origin',
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network_error', 'The server did not respond. Check that tokenwise serve is running.');
  }

  if (response.status === 401) {
    signInAgain();
    throw new ApiError(401, 'unauthorized', 'Your session ended. Sign in again.');
  }
  const text = await response.text();
  const parsed = parseJson(text);
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(response.status, error?.code ?? `http_${response.status}`, error?.message ?? `HTTP ${response.status}`);
  }
  return parsed as T;
}

/**
 * Read every page of a cursor-paginated list, following `next_cursor` until it is null, and return the
 * items under `key` in the list's order. For the short lists (devices, members, invites, prices, budgets,
 * prompt groups, rate limits), which a page shows whole.
 */
export async function apiAll<T>(path: string, key: string, options: Pick<RequestOptions, 'query' | 'signal'> = {}): Promise<T[]> {
  return (await apiAllWithFirstPage<T, unknown>(path, key, options)).items;
}

/**
 * Read every page like `apiAll`, and also return the first page, whose fields besides the list (such as
 * the prompt groups' `privacy` and `status`) describe the whole list.
 */
export async function apiAllWithFirstPage<T, Page>(
  path: string,
  key: string,
  options: Pick<RequestOptions, 'query' | 'signal'> = {},
): Promise<{ items: T[]; firstPage: Page }> {
  const items: T[] = [];
  let firstPage: Page | undefined;
  let cursor: string | null = null;
  do {
    const page: Record<string, unknown> = await api<Record<string, unknown>>(path, { ...options, query: { ...options.query, cursor } });
    firstPage ??= page as Page;
    const pageItems = page[key];
    if (!Array.isArray(pageItems)) throw new ApiError(0, 'invalid_response', `The server's response to ${path} has no "${key}" list.`);
    items.push(...(pageItems as T[]));
    const next = typeof page.next_cursor === 'string' ? page.next_cursor : null;
    // A server that returns the cursor it was sent would otherwise keep this loop going forever.
    if (next !== null && next === cursor)
      throw new ApiError(0, 'invalid_response', `The server returned the same cursor twice for ${path}. Reload the page.`);
    cursor = next;
  } while (cursor !== null);
  return { items, firstPage: firstPage as Page };
}

function parseJson(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

export function signInAgain(): void {
  const next = window.location.pathname + window.location.search;
  window.location.assign(`/login?next=${encodeURIComponent(next)}`);
}
