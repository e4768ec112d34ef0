import { handleRequest } from './proxy.js';
import type { WorkerEnv } from './worker-config.js';

export type { WorkerEnv } from './worker-config.js';

/** The Worker's entry point (`main` in wrangler.toml, after bundling). */
export default {
  fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Promise<Response> {
    return handleRequest(request, env, ctx);
  },
};
