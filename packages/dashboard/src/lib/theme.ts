/** The person's theme choice, kept in localStorage; `system` follows prefers-color-scheme. */
export type ThemeChoice = 'system' | 'light' | 'dark';

const STORAGE_KEY = 'tokenwise.theme';

export function storedTheme(): ThemeChoice {
  try {
    const value = localStorage.getItem(STORAGE_KEY);
    return value === 'light' || value === 'dark' ? value : 'system';
  } catch {
    return 'system';
  }
}

export function applyTheme(choice: ThemeChoice): void {
  if (choice === 'system') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.setAttribute('data-theme', choice);
  try {
    if (choice === 'system') localStorage.removeItem(STORAGE_KEY);
    else localStorage.setItem(STORAGE_KEY, choice);
  } catch {
    // Without storage the choice lasts until the page reloads.
  }
  window.dispatchEvent(new Event('tokenwise-theme'));
}

export function applyStoredTheme(): void {
  const choice = storedTheme();
  if (choice !== 'system') document.documentElement.setAttribute('data-theme', choice);
}

/** True when the page currently renders dark, by choice or by the system setting. */
export function isDark(): boolean {
  const attribute = document.documentElement.getAttribute('data-theme');
  if (attribute) return attribute === 'dark';
  return window.matchMedia('(prefers-color-scheme: dark)').matches;
}
