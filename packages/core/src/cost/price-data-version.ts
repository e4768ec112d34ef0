/**
 * The `@pydantic/genai-prices` release whose bundled price data core uses, stored on every priced record.
 * Its unit test compares it with the installed package, so an upgrade that leaves it unchanged fails.
 */
export const PRICE_DATA_VERSION = '@pydantic/genai-prices@0.1.8';
