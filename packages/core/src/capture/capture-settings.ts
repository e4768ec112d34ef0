import type { BodyDecoder, CaptureOptions } from './capture-types.js';

export const DEFAULT_BODY_CAP_BYTES = 4 * 1024 * 1024;

export interface CaptureSettings {
  clock: () => number;
  wallClock: () => number;
  keepBodies: boolean;
  redactBodies: boolean;
  decodeBodies: boolean;
  bodyCapBytes: number;
  decoders: Partial<Record<string, BodyDecoder>>;
  collectOutputText: boolean;
}

export function resolveCaptureSettings(options: CaptureOptions): CaptureSettings {
  return {
    clock: options.clock ?? (() => performance.now()),
    wallClock: options.wallClock ?? Date.now,
    keepBodies: options.keepBodies ?? false,
    redactBodies: options.redactBodies ?? true,
    decodeBodies: options.decodeBodies ?? true,
    bodyCapBytes: options.bodyCapBytes ?? DEFAULT_BODY_CAP_BYTES,
    decoders: options.decoders ?? {},
    collectOutputText: options.collectOutputText ?? false,
  };
}

/** Collects what went wrong inside a capture step, so the step can return instead of throwing. */
export class CaptureWarnings {
  readonly list: string[] = [];

  attempt<T>(step: string, action: () => T): T | undefined {
    try {
      return action();
    } catch (cause) {
      this.add(`capture ${step} failed: ${cause instanceof Error ? cause.message : String(cause)}`);
      return undefined;
    }
  }

  add(message: string): void {
    // A broken stream repeats its failure on every chunk, so a few copies are enough.
    if (this.list.length < 10) this.list.push(message);
  }
}
