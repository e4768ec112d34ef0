import { fileURLToPath } from 'node:url';

/**
 * The single-file connect CLI that `npm run build` writes next to the compiled CLI
 * (scripts/build-connect-bundle.mjs) and `tokenwise serve` serves to its connect scripts.
 */
export const CONNECT_BUNDLE_FILE = fileURLToPath(new URL('../tokenwise-connect.mjs', import.meta.url));
