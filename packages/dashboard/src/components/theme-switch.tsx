import { useState } from 'react';
import { applyTheme, storedTheme, type ThemeChoice } from '../lib/theme.js';
import { Field } from './common.js';

export function ThemeSwitch() {
  const [choice, setChoice] = useState<ThemeChoice>(storedTheme());
  return (
    <Field label="Theme">
      {(id) => (
        <select
          id={id}
          value={choice}
          onChange={(event) => {
            const next = event.target.value as ThemeChoice;
            setChoice(next);
            applyTheme(next);
          }}
        >
          <option value="system">System</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
      )}
    </Field>
  );
}
