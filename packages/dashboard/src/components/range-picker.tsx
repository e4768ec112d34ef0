import { useState } from 'react';
import { RANGE_PRESETS, toLocalInput } from '../lib/range.js';
import { useSearchParams } from '../lib/use-search-params.js';
import { Field } from './common.js';

/** Range presets and a custom from/to interval, kept in the query string (`range`, or `from` and `to`). */
export function RangePicker({ fallback }: { fallback: string }) {
  const [params, update] = useSearchParams();
  const custom = params.has('from') && params.has('to');
  const current = custom ? 'custom' : (params.get('range') ?? fallback);
  const [showCustom, setShowCustom] = useState(custom);
  const now = new Date();
  const [from, setFrom] = useState(params.get('from') ?? toLocalInput(new Date(now.getTime() - 86_400_000)));
  const [to, setTo] = useState(params.get('to') ?? toLocalInput(now));

  return (
    <div className="row">
      <fieldset className="segmented" aria-label="Time range" style={{ padding: 0, margin: 0 }}>
        {RANGE_PRESETS.map((preset) => (
          <button
            key={preset.value}
            type="button"
            aria-pressed={current === preset.value}
            onClick={() => {
              setShowCustom(false);
              update({ range: preset.value, from: null, to: null });
            }}
          >
            {preset.label}
          </button>
        ))}
        <button type="button" aria-pressed={current === 'custom' || showCustom} onClick={() => setShowCustom(true)}>
          Custom
        </button>
      </fieldset>
      {showCustom && (
        <form
          className="row"
          onSubmit={(event) => {
            event.preventDefault();
            update({ from, to, range: null });
          }}
        >
          <Field label="From">
            {(id) => <input id={id} type="datetime-local" value={from} onChange={(event) => setFrom(event.target.value)} required />}
          </Field>
          <Field label="To">
            {(id) => <input id={id} type="datetime-local" value={to} onChange={(event) => setTo(event.target.value)} required />}
          </Field>
          <button type="submit" style={{ alignSelf: 'flex-end' }}>
            Apply
          </button>
        </form>
      )}
    </div>
  );
}
