// One channel the app subscribed to: its handlers and the last position seen,
// which makes every resubscribe a `since` request (SPEC §3 history).

import type { FerrygateError } from "./errors.js";

/** A channel's position in its history: the epoch and the offset of the last push seen. */
export interface Position {
  epoch: string;
  offset: number;
}

/** Where a push came from; `epoch`/`offset` are set on channels with history. */
export interface PushMeta {
  channel: string;
  epoch?: string;
  offset?: number;
}

/** What a resubscribe with `since` learnt (the subscribe reply's `result`). */
export interface Recovery {
  /** true: every missed message follows, in order, once; false: reload your state. */
  recovered: boolean;
  epoch?: string;
  offset?: number;
}

/** Callbacks of one subscription. Only `onMessage` is required. */
export interface SubscriptionHandlers {
  /** Each push's `data`, in order, exactly once per offset. */
  onMessage: (data: unknown, meta: PushMeta) => void;
  /** After each resubscribe that asked for recovery (`since`): whether the gap was filled. */
  onRecovered?: (recovery: Recovery) => void;
  /** The server removed the subscription (`{"op":"unsubscribed"}`), e.g. after a token refresh. */
  onUnsubscribed?: (reason: string) => void;
  /** The subscribe itself failed (e.g. `forbidden`); the subscription is then removed. */
  onError?: (error: FerrygateError) => void;
  /** Join/leave pushes on channels with `join_leave`. */
  onJoin?: (who: { user?: string | null; conn?: string }) => void;
  onLeave?: (who: { user?: string | null; conn?: string }) => void;
}

/** Returned by `Client.subscribe`; call `unsubscribe()` to stop. */
export class Subscription {
  /** The last position seen, undefined before the first position or on channels without history. */
  position?: Position;
  /** Resolves with the first subscribe reply's `result` (or undefined), rejects when refused. */
  readonly ready: Promise<unknown>;
  /** @internal */
  settle!: { resolve: (v: unknown) => void; reject: (e: FerrygateError) => void; done: boolean };

  constructor(
    readonly channel: string,
    readonly handlers: SubscriptionHandlers,
    private readonly remove: (sub: Subscription) => Promise<void>,
  ) {
    this.ready = new Promise((resolve, reject) => {
      this.settle = { resolve, reject, done: false };
    });
    // Apps that never await `ready` must not see an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  /** Stops the subscription; resolves once the gateway confirmed (or at once when disconnected). */
  unsubscribe(): Promise<void> {
    return this.remove(this);
  }

  /** @internal Applies a push; returns false for a duplicate (offset not above the last one). */
  accept(epoch: string | undefined, offset: number | undefined): boolean {
    if (epoch === undefined || offset === undefined) return true;
    if (this.position && this.position.epoch === epoch && offset <= this.position.offset) return false;
    this.position = { epoch, offset };
    return true;
  }
}
