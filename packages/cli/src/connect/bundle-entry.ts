// Entry point of the single-file connect bundle that the server serves to its connect scripts.
import { runConnectBundle } from './bundle-main.js';

process.exitCode = await runConnectBundle(process.argv.slice(2));
