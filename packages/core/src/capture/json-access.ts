/** Narrowing helpers for JSON values of unknown shape: they return undefined or null instead of throwing. */

export type JsonObject = Record<string, unknown>;

export function asObject(value: unknown): JsonObject | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : undefined;
}

export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function asString(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** Read a count or an index: a non-negative safe integer (at most 2^53 - 1), else null. */
export function asCount(value: unknown): number | null {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : null;
}

/**
 * Reads the token counts of one usage report and remembers each field whose value was present but not
 * a count (a string, a negative or fractional number, or one beyond 2^53 - 1 such as `1e300`). Such a
 * count is unknown (`null`), and `problems()` lists it for the record's warnings. Descriptions name the
 * kind of value, never the value itself.
 */
export class CountReader {
  readonly #invalid = new Map<string, string>();

  /** Return the count in `value`; `absent` when the field is missing or `null`, and null when it is invalid. */
  read<Absent extends number | null | undefined>(value: unknown, field: string, absent: Absent): number | null | Absent {
    if (value === undefined || value === null) return absent;
    const count = asCount(value);
    if (count === null) this.#invalid.set(field, describeInvalidCount(value));
    return count;
  }

  /** Add counts; null when one is unknown or the total is not a safe integer (then `field` is listed). */
  sum(field: string, ...counts: (number | null)[]): number | null {
    let total = 0;
    for (const count of counts) {
      if (count === null) return null;
      total += count;
    }
    if (Number.isSafeInteger(total)) return total;
    this.#invalid.set(field, 'a total beyond 2^53 - 1');
    return null;
  }

  problems(): string[] {
    return [...this.#invalid].map(
      ([field, description]) => `usage field ${field} is ${description}, not a non-negative integer: recorded as unknown`,
    );
  }
}

function describeInvalidCount(value: unknown): string {
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'boolean') return 'a boolean';
  if (typeof value !== 'number') return Array.isArray(value) ? 'an array' : 'an object';
  if (!Number.isFinite(value)) return 'not finite';
  if (value < 0) return 'negative';
  if (!Number.isInteger(value)) return 'fractional';
  return 'beyond 2^53 - 1';
}

export function nonEmptyString(value: unknown): boolean {
  return typeof value === 'string' && value.length > 0;
}
