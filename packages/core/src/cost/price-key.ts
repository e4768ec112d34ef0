/** Date suffixes of model snapshots: `-20250929` (Anthropic) and `-2024-07-18` (OpenAI). */
const DATE_SUFFIX = /-(?:20\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])|20\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))$/;

/** Return the name a call is priced under: the model with a trailing snapshot date removed. */
export function priceKeyFor(model: string): string {
  return model.trim().replace(DATE_SUFFIX, '');
}
