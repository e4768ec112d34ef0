/**
 * A browser stand-in for the server's HTML pages: a cookie jar, redirects followed by hand (so tests see
 * each status), and the CSRF token read from the page's form, as a person's browser would post it.
 */
export interface Page {
  status: number;
  url: string;
  text: string;
  headers: Headers;
}

export class Browser {
  private readonly cookies = new Map<string, string>();

  constructor(private readonly origin: string) {}

  /** Cookies the server set, by name. */
  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  /** Carry a cookie over from another browser, e.g. a session across a server restart on a new port. */
  setCookie(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  cookieHeader(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<Page> {
    return this.request('GET', path, undefined, headers);
  }

  /** Post a form with the given fields; adds `csrf_token` from `page` unless the fields carry one. */
  async submit(path: string, fields: Record<string, string>, page?: Page, headers: Record<string, string> = {}): Promise<Page> {
    const csrf = fields.csrf_token ?? (page ? csrfTokenOf(page) : undefined);
    const body = new URLSearchParams({ ...fields, ...(csrf === undefined ? {} : { csrf_token: csrf }) });
    return this.request('POST', path, body.toString(), {
      'content-type': 'application/x-www-form-urlencoded',
      origin: this.origin,
      ...headers,
    });
  }

  /** Call the JSON API with the session cookie, and for a change the page's CSRF token in `x-csrf-token`. */
  async api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const csrf: Record<string, string> = method === 'GET' ? {} : { 'x-csrf-token': await this.csrfToken() };
    return fetch(`${this.origin}${path}`, {
      method,
      headers: { cookie: this.cookieHeader(), 'content-type': 'application/json', ...csrf, ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  /** The CSRF token of the signed-in session, as the home page exposes it. */
  async csrfToken(): Promise<string> {
    const home = await this.get('/');
    const token = /<meta name="csrf-token" content="([^"]+)">/.exec(home.text)?.[1];
    if (!token) throw new Error(`no CSRF token on the home page (status ${home.status}): is the browser signed in?`);
    return token;
  }

  private async request(method: string, path: string, body: string | undefined, headers: Record<string, string>): Promise<Page> {
    let url = `${this.origin}${path}`;
    let currentMethod = method;
    let currentBody = body;
    for (let hops = 0; hops < 5; hops += 1) {
      const response = await fetch(url, {
        method: currentMethod,
        redirect: 'manual',
        headers: { ...headers, cookie: this.cookieHeader() },
        body: currentBody,
      });
      this.keepCookies(response);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.arrayBuffer();
        url = new URL(location, url).toString();
        currentMethod = 'GET';
        currentBody = undefined;
        delete headers['content-type'];
        continue;
      }
      return { status: response.status, url, text: await response.text(), headers: response.headers };
    }
    throw new Error(`too many redirects from ${path}`);
  }

  private keepCookies(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const separator = pair!.indexOf('=');
      const name = pair!.slice(0, separator).trim();
      const value = pair!.slice(separator + 1).trim();
      if (value === '' || /max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

export function csrfTokenOf(page: Page): string {
  const token = /name="csrf_token" value="([^"]+)"/.exec(page.text)?.[1];
  if (!token) throw new Error(`no CSRF token in the page at ${page.url} (status ${page.status})`);
  return token;
}
