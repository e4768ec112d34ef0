/** Stable codes for every error Tokenwise raises; messages may change, codes do not. */
export type TokenwiseErrorCode =
  | 'invalid_upstream'
  | 'invalid_route'
  | 'unknown_route'
  | 'invalid_path'
  | 'upstream_unreachable'
  | 'invalid_argument'
  | 'not_found'
  | 'store_failed'
  /** The store cannot take the write now (a lock held elsewhere, a connection down); the same write may succeed later. */
  | 'store_unavailable';

/** The one error type of the project: a stable code plus a message that names the value and the fix. */
export class TokenwiseError extends Error {
  readonly code: TokenwiseErrorCode;

  constructor(code: TokenwiseErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenwiseError';
    this.code = code;
  }
}
