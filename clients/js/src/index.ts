// @ferrygate/client: the public API.
export { Client } from "./client.js";
export type { ClientOptions, ClientEvents, ConnectionState, PublishResult, Welcome } from "./client.js";
export { Subscription } from "./subscription.js";
export type { SubscriptionHandlers, Position, PushMeta, Recovery } from "./subscription.js";
export { FerrygateError } from "./errors.js";
export type { ErrorCode, ProtocolErrorCode, ClientErrorCode } from "./errors.js";
export {
  backoffDelay,
  drainDelay,
  parseDrainHint,
  reconnectDelay,
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_MAX_MS,
  CLOSE_DRAINING,
  CLOSE_TOKEN_EXPIRED,
} from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
