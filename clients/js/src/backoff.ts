// Reconnect delays: full-jitter exponential backoff, and the drain hint.
// Pure functions of their inputs and a random source, so tests can draw many.

/** Backoff settings, in milliseconds. */
export interface BackoffOptions {
  /** The first ceiling: attempt 0 waits a random time in [0, baseMs]. Default 500. */
  baseMs?: number;
  /** The largest ceiling, reached after a few attempts. Default 30,000. */
  maxMs?: number;
}

/** Default first ceiling (ms). */
export const DEFAULT_BACKOFF_BASE_MS = 500;
/** Default largest ceiling (ms): half a minute, so a long outage costs one attempt per ~15 s on average. */
export const DEFAULT_BACKOFF_MAX_MS = 30_000;

/**
 * Full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015):
 * a uniform random delay in [0, min(maxMs, baseMs * 2^attempt)] ms. Spreads a
 * crowd of clients over the whole window instead of bunching them at its edge.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
  const max = options.maxMs ?? DEFAULT_BACKOFF_MAX_MS;
  const ceiling = Math.min(max, base * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.floor(random() * ceiling);
}

/**
 * The delay before reconnecting after a 1012 (drain) close: uniform in
 * [0, hintMs], the hint being the close reason's `reconnect_in_ms` (SPEC §3).
 * Without a usable hint, the caller falls back to {@link backoffDelay}.
 */
export function drainDelay(hintMs: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.max(0, hintMs));
}

/** The `reconnect_in_ms` of a 1012 close reason, or undefined when the reason carries none. */
export function parseDrainHint(reason: string): number | undefined {
  try {
    const value: unknown = JSON.parse(reason);
    if (value !== null && typeof value === "object") {
      const ms = (value as { reconnect_in_ms?: unknown }).reconnect_in_ms;
      if (typeof ms === "number" && Number.isFinite(ms) && ms >= 0) return ms;
    }
  } catch {
    // not JSON: no hint
  }
  return undefined;
}

/** Close code of a token that expired without a refresh (SPEC §3). */
export const CLOSE_TOKEN_EXPIRED = 4001;
/** Close code of a draining gateway (SPEC §3). */
export const CLOSE_DRAINING = 1012;

/**
 * How long to wait before reconnecting after a close with `code` and `reason`
 * on the `attempt`-th failure in a row (0-based), and whether that counts as
 * one more failure:
 * - 1012 with `{"reconnect_in_ms":N}`: uniform in [0, N] (the drain hint);
 * - 4001 after a welcome: the first backoff step (a fresh token is fetched);
 * - anything else (1012 without hint, 1013, a cut, a failed open): full-jitter backoff.
 */
export function reconnectDelay(
  code: number,
  reason: string,
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
  wasConnected = true,
): { delayMs: number; failure: boolean } {
  const hint = code === CLOSE_DRAINING ? parseDrainHint(reason) : undefined;
  if (hint !== undefined) return { delayMs: drainDelay(hint, random), failure: false };
  if (code === CLOSE_TOKEN_EXPIRED && wasConnected) return { delayMs: backoffDelay(0, options, random), failure: false };
  return { delayMs: backoffDelay(attempt, options, random), failure: true };
}
