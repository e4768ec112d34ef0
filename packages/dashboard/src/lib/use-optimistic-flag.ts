import { useEffect, useState } from 'react';

/**
 * The state of a checkbox whose value lives on the server. A click shows at once, as a checkbox must (a
 * controlled input that waits for the server reads as unchanged right after the click); a failed save
 * puts the server's value back, and a new server value replaces the shown one.
 */
export function useOptimisticFlag(serverValue: boolean, save: (next: boolean) => Promise<unknown>): [boolean, (next: boolean) => void] {
  const [shown, setShown] = useState(serverValue);
  useEffect(() => setShown(serverValue), [serverValue]);

  const change = (next: boolean) => {
    setShown(next);
    // The caller's mutation reports the error; here it only undoes the optimistic value.
    save(next).catch(() => setShown(serverValue));
  };
  return [shown, change];
}
