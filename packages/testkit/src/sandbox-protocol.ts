/**
 * Messages between a test (outside the network namespace) and the sandbox agent (inside it). One JSON
 * object per line: requests on the agent's stdin, responses on its stdout.
 */
import type { FakeProviderBehavior, FakeProviderOptions, RecordedRequest } from './fake-provider.js';
import type { TappedRequest } from './sandbox-tap.js';

export interface ProcessSpec {
  command: string;
  args: string[];
  /** The complete environment of the process; nothing is inherited from the agent or the test. */
  env: Record<string, string>;
  cwd: string;
  /** Text written to the process's stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
}

export interface ProcessResult {
  /** Exit code, or null when a signal ended the process. */
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** True when the agent killed the process because `timeoutMs` passed. */
  timedOut: boolean;
  durationMs: number;
}

/** A connection a client tried to open through the refusing proxy instead of the base URL it was given. */
export interface ProxyAttempt {
  /** `CONNECT host:port` for HTTPS, or the absolute URL of a plain-HTTP proxy request. */
  method: string;
  target: string;
  userAgent: string | null;
  at: string;
}

/** A recorded request in JSON form: the body travels as base64. */
export type SerializedRecordedRequest = Omit<RecordedRequest, 'body'> & { bodyBase64: string };
export type SerializedTappedRequest = Omit<TappedRequest, 'body'> & { bodyBase64: string };

export type AgentRequest =
  | { id: number; op: 'fake.start'; params: FakeProviderOptions }
  | { id: number; op: 'fake.requests'; params: { handle: number } }
  | { id: number; op: 'fake.clear'; params: { handle: number } }
  | { id: number; op: 'fake.configure'; params: { handle: number; behavior: Partial<FakeProviderBehavior> } }
  | { id: number; op: 'fake.close'; params: { handle: number } }
  | { id: number; op: 'tap.start'; params: { targetUrl: string } }
  | { id: number; op: 'tap.requests'; params: { handle: number } }
  | { id: number; op: 'tap.close'; params: { handle: number } }
  | { id: number; op: 'proxy.attempts'; params: Record<string, never> }
  | { id: number; op: 'process.run'; params: ProcessSpec & { timeoutMs: number } }
  | { id: number; op: 'process.start'; params: ProcessSpec }
  | { id: number; op: 'process.output'; params: { handle: number } }
  | { id: number; op: 'process.stop'; params: { handle: number; timeoutMs: number } };

export type AgentResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** The first line the agent prints, once loopback is up and the refusing proxy listens. */
export interface AgentReady {
  ready: true;
  proxyUrl: string;
}
