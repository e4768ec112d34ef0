/** Bundle the compiled Worker into one ES module; returns the path of the written file (default dist/worker.js). */
export function bundleWorker(outFile?: string): Promise<string>;
