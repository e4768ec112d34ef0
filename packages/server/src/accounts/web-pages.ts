import type { ServerResponse } from 'node:http';

/** Escape text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** A template literal tag that escapes every interpolated value unless it is already `Html`. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let text = strings[0]!;
  values.forEach((value, index) => {
    text += renderValue(value) + strings[index + 1]!;
  });
  return new Html(text);
}

/** Markup that is safe as it is; everything else passed to `html` gets escaped. */
export class Html {
  constructor(readonly text: string) {}
}

function renderValue(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(renderValue).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

const STYLE = `
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; }
  h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
  label { display: block; margin: .8rem 0 .2rem; font-weight: 600; }
  input[type=text], input[type=email], input[type=password], select { width: 100%; padding: .45rem; font: inherit; box-sizing: border-box; }
  button { margin-top: 1rem; padding: .45rem 1rem; font: inherit; cursor: pointer; }
  .error { background: #fde8e8; border: 1px solid #f5b5b5; padding: .6rem .8rem; }
  .note { color: #555; }
  .code { font: 600 1.6rem/1.2 ui-monospace, monospace; letter-spacing: .15em; }
  table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ddd; }
  form.inline { display: inline; } form.inline button { margin: 0; }
  header { display: flex; justify-content: space-between; align-items: baseline; }
`;

/**
 * Send a full page. Pages carry one-time links and codes in their URLs, so nothing may cache them or send
 * them to another site as a Referer, and no other site may frame them. The policy is `same-origin`, not
 * `no-referrer`: under `no-referrer` browsers send `Origin: null` with a form POST, which the origin check
 * of every form rejects.
 */
export function sendPage(res: ServerResponse, status: number, title: string, body: Html, headers: Record<string, string> = {}): void {
  const text = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/favicon.svg" type="image/svg+xml"><title>${escapeHtml(title)} · Tokenwise</title><style>${STYLE}</style></head>
<body>${body.text}</body></html>
`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'referrer-policy': 'same-origin',
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    'content-security-policy':
      "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ...headers,
  });
  res.end(text);
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location, 'cache-control': 'no-store', 'content-length': 0 });
  res.end();
}

export function errorBox(message: string | null): Html {
  return message ? html`<p class="error" role="alert">${message}</p>` : html``;
}

export function csrfField(token: string): Html {
  return html`<input type="hidden" name="csrf_token" value="${token}">`;
}
