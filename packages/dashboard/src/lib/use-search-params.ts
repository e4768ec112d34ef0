import { useCallback } from 'react';
import { useLocation, useSearch } from 'wouter';

/**
 * The page's query string as state, so a filtered view can be bookmarked, shared and restored with Back.
 * `update` replaces the history entry: changing a filter is not a new page.
 */
export function useSearchParams(): [URLSearchParams, (changes: Record<string, string | null>) => void] {
  const search = useSearch();
  const [location, navigate] = useLocation();
  const params = new URLSearchParams(search);

  const update = useCallback(
    (changes: Record<string, string | null>) => {
      const next = new URLSearchParams(search);
      for (const [key, value] of Object.entries(changes)) {
        if (value === null || value === '') next.delete(key);
        else next.set(key, value);
      }
      const text = next.toString();
      navigate(`${location}${text ? `?${text}` : ''}`, { replace: true });
    },
    [search, location, navigate],
  );
  return [params, update];
}
