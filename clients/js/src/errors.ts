// What a failed request or connection tells the app: one error type with the
// protocol's error code (SPEC §3) or one of the client's own codes.

/** Error codes the gateway sends in `{"error":{"code":..}}` (SPEC §3). */
export type ProtocolErrorCode =
  | "bad_request"
  | "forbidden"
  | "not_found"
  | "too_large"
  | "rate_limited"
  | "unavailable"
  | "timeout"
  | "plugin_error";

/**
 * Codes the client adds:
 * - `unauthorized`: the gateway refused the connection with HTTP 401 (the
 *   client stops; it never retries a refused token in a loop);
 * - `disconnected`: the connection was lost before the reply came (the request
 *   may or may not have been applied);
 * - `closed`: the client was closed by the app;
 * - `receive_only`: the client is on the SSE fallback, which cannot send;
 * - `token_failed`: the app's `getToken()` threw or rejected (e.g. offline);
 *   the client backs off and calls it again at the next attempt.
 * A 403 at connect is reported as `forbidden`; a request with no reply within
 * `requestTimeoutMs` as `timeout`.
 */
export type ClientErrorCode = "unauthorized" | "disconnected" | "closed" | "receive_only" | "token_failed";

/** Every code a {@link FerrygateError} may carry. Unknown server codes pass through as strings. */
export type ErrorCode = ProtocolErrorCode | ClientErrorCode | (string & {});

/** The error every promise of the client rejects with, and the `error` event carries. */
export class FerrygateError extends Error {
  /** The protocol's code (`forbidden`, `timeout`, ...) or a client code (`disconnected`, ...). */
  readonly code: ErrorCode;
  /** The HTTP status when the error is a refused connection (401, 403), else undefined. */
  readonly status?: number;

  constructor(code: ErrorCode, message: string, status?: number) {
    super(message);
    this.name = "FerrygateError";
    this.code = code;
    this.status = status;
  }
}
