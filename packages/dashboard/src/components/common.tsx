import type { UseQueryResult } from '@tanstack/react-query';
import { type ReactNode, useId, useState } from 'react';
import { ApiError } from '../api/client.js';

export function PageHead({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="page-head">
      <h1>{title}</h1>
      {children}
    </div>
  );
}

/** The state of a feature this server's API does not have yet; never replaced by made-up numbers. */
export function NotAvailable({ what }: { what: string }) {
  return (
    <div className="notice" role="status">
      <strong>{what} is not available on this server.</strong>{' '}
      <span className="muted">Its API route is missing, so this server runs an older Tokenwise. Update it to see this.</span>
    </div>
  );
}

/**
 * A form control with its label above it. The label points at the control with `for` instead of wrapping
 * it, so the control's accessible name is the label text alone, without a select's chosen option or an
 * input's value mixed in.
 */
export function Field({ label, children }: { label: ReactNode; children: (id: string) => ReactNode }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children(id)}
    </div>
  );
}

export function ErrorNotice({ error }: { error: unknown }) {
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div className="notice error" role="alert">
      {message}
    </div>
  );
}

/** Render a query: a loading line, the error, "not available" for a missing route, else the data. */
export function QueryView<T>({ query, what, children }: { query: UseQueryResult<T>; what: string; children: (data: T) => ReactNode }) {
  if (query.isPending) return <p className="muted">Loading {what.toLowerCase()}…</p>;
  if (query.isError) {
    if (query.error instanceof ApiError && query.error.notAvailable) return <NotAvailable what={what} />;
    return <ErrorNotice error={query.error} />;
  }
  return <>{children(query.data)}</>;
}

export function isNotAvailable(error: unknown): boolean {
  return error instanceof ApiError && error.notAvailable;
}

export function CopyButton({ text, label = 'Copy', ariaLabel }: { text: string; label?: string; ariaLabel?: string }) {
  const [state, setState] = useState<'idle' | 'copied' | 'failed'>('idle');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setState('copied');
    } catch {
      setState('failed');
    }
    setTimeout(() => setState('idle'), 2000);
  };
  return (
    <button type="button" onClick={copy} aria-live="polite" aria-label={state === 'idle' ? ariaLabel : undefined}>
      {state === 'copied' ? 'Copied' : state === 'failed' ? 'Copy failed: select the text' : label}
    </button>
  );
}

export function CopyLine({ text, label }: { text: string; label: string }) {
  return (
    <div className="copy-line">
      <code>{text}</code>
      <CopyButton text={text} label="Copy" ariaLabel={`Copy the ${label.charAt(0).toLowerCase()}${label.slice(1)}`} />
    </div>
  );
}

export function Stat({ label, value, sub }: { label: string; value: ReactNode; sub?: ReactNode }) {
  return (
    <div className="panel stat">
      <div className="label">{label}</div>
      <div className="value">{value}</div>
      {sub !== undefined && <div className="sub">{sub}</div>}
    </div>
  );
}

export function StatusBadge({ status, httpStatus }: { status: string; httpStatus?: number | null }) {
  const tone = status === 'success' ? 'ok' : status === 'error' ? 'error' : 'warn';
  return (
    <span className={`badge ${tone}`}>
      {status}
      {httpStatus && status !== 'success' ? ` ${httpStatus}` : ''}
    </span>
  );
}
