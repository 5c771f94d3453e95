// The client: one logical connection to a ferrygate cluster, kept alive over
// WebSocket (or the receive-only SSE fallback) with reconnects, recovery of
// every subscription from its last position, and token refresh (SPEC §3, §4).

import { backoffDelay, reconnectDelay, type BackoffOptions } from "./backoff.js";
import { Emitter, type Off } from "./emitter.js";
import { FerrygateError } from "./errors.js";
import { probeStatus } from "./probe.js";
import { Requests } from "./requests.js";
import { openSse, type SseStream } from "./sse.js";
import { Subscription, type SubscriptionHandlers } from "./subscription.js";

/** Connection states, in the order a session goes through them. */
export type ConnectionState = "connecting" | "connected" | "disconnected" | "closed";

/** The first frame of a session (`welcome`). */
/** What {@link Client.publish} resolves with. */
export interface PublishResult {
  /** A route or transform plugin dropped the message on purpose: accepted, delivered to nobody. */
  dropped: boolean;
}

export interface Welcome {
  conn: string;
  user: string | null;
  node: string;
  /** Unix seconds when the token expires (set when the auth plugin gives an expiry). */
  expires_at?: number;
}

export interface ClientOptions {
  /** One gateway URL, e.g. `wss://example.com/ws`. */
  url?: string;
  /** Several gateway URLs, tried in turn on each reconnect. */
  urls?: string[];
  /** A fixed token. */
  token?: string;
  /** Called before every connect and refresh for a current token. */
  getToken?: () => Promise<string>;
  /** Reconnect backoff (full jitter); defaults base 500 ms, max 30 s. */
  backoff?: BackoffOptions;
  /** A request without a reply after this long rejects with `timeout`. Default 10,000 ms. */
  requestTimeoutMs?: number;
  /** Refresh the token this long before `expires_at` (at most half the remaining lifetime). Default 30,000 ms. */
  refreshMarginMs?: number;
  /** After this many WebSocket attempts in a row that never opened, receive over `/sse`. 0 disables. Default 3. */
  sseAfterFailures?: number;
  /** Random source in [0, 1) for jitter (tests). Default Math.random. */
  random?: () => number;
  /** The WebSocket constructor. Default `globalThis.WebSocket`. */
  WebSocket?: typeof WebSocket;
}

/** Events of {@link Client.on}. */
export type ClientEvents = {
  state: [ConnectionState];
  connecting: [];
  connected: [Welcome];
  disconnected: [{ code: number; reason: string }];
  closed: [];
  /** A connection-level error: a refused connect (`unauthorized`/`forbidden`, then `closed`), a failed refresh. */
  error: [FerrygateError];
  /** A direct message (`{"op":"message"}`, from `POST /v1/send`). */
  message: [unknown];
};

const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export class Client extends Emitter<ClientEvents> {
  /** The current state. */
  state: ConnectionState = "closed";
  /** The last welcome frame, while connected. */
  welcome?: Welcome;
  /** "ws" or "sse" while connected. */
  transport?: "ws" | "sse";

  private readonly urls: string[];
  private urlIndex = 0;
  private attempt = 0;
  private wsFailures = 0;
  private socket?: WebSocket;
  private sse?: SseStream;
  private token?: string;
  private readonly requests = new Requests();
  private readonly subs = new Map<string, Subscription>();
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private refreshTimer?: ReturnType<typeof setTimeout>;
  private handshakeTimer?: ReturnType<typeof setTimeout>;
  private waiters: Array<() => void> = [];
  private stopped = true;

  constructor(private readonly options: ClientOptions) {
    super();
    this.urls = options.urls ?? (options.url ? [options.url] : []);
    if (this.urls.length === 0) throw new FerrygateError("bad_request", "give `url` or `urls`");
    this.token = options.token;
  }

  /** Starts connecting (and reconnecting until {@link close}). Resolves at the first welcome. */
  connect(): Promise<Welcome> {
    if (this.state === "connected" && this.welcome) return Promise.resolve(this.welcome);
    const welcome = new Promise<Welcome>((resolve, reject) => {
      const offs: Off[] = [
        this.on("connected", (w) => (offs.forEach((f) => f()), resolve(w))),
        this.on("closed", () => (offs.forEach((f) => f()), reject(new FerrygateError("closed", "client closed")))),
      ];
    });
    if (this.stopped) {
      this.stopped = false;
      void this.open();
    }
    return welcome;
  }

  /** Closes for good: no reconnect; pending requests reject with `closed`. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.handshakeTimer);
    this.socket?.close(1000);
    this.socket = undefined;
    this.sse?.close();
    this.sse = undefined;
    this.requests.failAll(new FerrygateError("closed", "client closed"));
    this.setState("closed");
    this.emit("closed");
  }

  /** Subscribes (now, and again after every reconnect, with `since` from the last position). */
  subscribe(channel: string, handlers: SubscriptionHandlers): Subscription {
    const existing = this.subs.get(channel);
    if (existing) throw new FerrygateError("bad_request", `already subscribed to ${channel}`);
    const sub = new Subscription(channel, handlers, (s) => this.removeSub(s));
    this.subs.set(channel, sub);
    if (this.state === "connected") {
      if (this.transport === "ws") this.sendSubscribe(sub);
      else this.restartSse();
    }
    return sub;
  }

  /**
   * Publishes `data` on `channel`; resolves when the broker accepted it, with
   * `dropped: true` when a route or transform plugin dropped the message on
   * purpose (the reply `{"ok":true,"result":{"dropped":true}}`: not an error,
   * and nobody receives it).
   */
  async publish(channel: string, data: unknown): Promise<PublishResult> {
    const result = await this.request({ op: "publish", channel, data });
    const dropped = typeof result === "object" && result !== null && (result as { dropped?: unknown }).dropped === true;
    return { dropped };
  }

  /** Calls a backend method; resolves with its `result`. */
  rpc(method: string, data: unknown): Promise<unknown> {
    return this.request({ op: "rpc", method, data });
  }

  /**
   * Who is on a channel (the shape of `GET /v1/presence`): one page of at
   * most `limit` users (server default 1,000), from `cursor` (an earlier
   * page's `next_cursor`, present only when more users follow).
   */
  presence(channel: string, page: { limit?: number; cursor?: string } = {}): Promise<unknown> {
    const frame: Record<string, unknown> = { op: "presence", channel };
    if (page.limit !== undefined) frame.limit = page.limit;
    if (page.cursor !== undefined) frame.cursor = page.cursor;
    return this.request(frame);
  }

  /**
   * Sends one request and resolves with the reply's `result`, waiting for a
   * connection first (within `requestTimeoutMs`). Rejects with a {@link FerrygateError}.
   */
  async request(frame: Record<string, unknown>): Promise<unknown> {
    const timeoutMs = this.options.requestTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    await this.whenConnected(deadline);
    if (this.transport !== "ws" || !this.socket) {
      throw new FerrygateError("receive_only", "connected over SSE, which cannot send");
    }
    const socket = this.socket;
    return this.requests.start(frame, (text) => socket.send(text), deadline, timeoutMs);
  }

  private whenConnected(deadline: number): Promise<void> {
    if (this.state === "connected") return Promise.resolve();
    if (this.stopped) return Promise.reject(new FerrygateError("closed", "client closed"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        reject(new FerrygateError("timeout", "not connected in time"));
      }, Math.max(0, deadline - Date.now()));
      const wake = () => {
        clearTimeout(timer);
        if (this.stopped) reject(new FerrygateError("closed", "client closed"));
        else resolve();
      };
      this.waiters.push(wake);
    });
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
    if (state === "connected" || state === "closed") {
      const waiters = this.waiters;
      this.waiters = [];
      waiters.forEach((w) => w());
    }
  }

  private url(): string {
    return this.urls[this.urlIndex % this.urls.length];
  }

  private async currentToken(): Promise<string | undefined> {
    if (this.options.getToken) this.token = await this.options.getToken();
    return this.token;
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    this.setState("connecting");
    this.emit("connecting");
    let token: string | undefined;
    try {
      token = await this.currentToken();
    } catch (e) {
      this.emit("error", new FerrygateError("token_failed", `getToken failed: ${String(e)}`));
      return this.scheduleReconnect(backoffDelay(this.attempt++, this.options.backoff, this.options.random));
    }
    if (this.stopped) return;
    const sseAfter = this.options.sseAfterFailures ?? 3;
    if (sseAfter > 0 && this.wsFailures >= sseAfter) return this.openSseTransport(token);
    const url = new URL(this.url());
    const protocols = ["ferrygate.v1"];
    if (token !== undefined) {
      if (TOKEN_CHARS.test(token)) protocols.push(`bearer.${token}`);
      else url.searchParams.set("token", token);
    }
    const Ctor = this.options.WebSocket ?? globalThis.WebSocket;
    let socket: WebSocket;
    try {
      socket = new Ctor(url.toString(), protocols);
    } catch (e) {
      this.emit("error", new FerrygateError("bad_request", `cannot open ${this.url()}: ${String(e)}`));
      return this.scheduleReconnect(backoffDelay(this.attempt++, this.options.backoff, this.options.random));
    }
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.wsFailures = 0;
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") this.onFrame(event.data);
    };
    // Handled once, whichever comes first: the close event; an error before
    // the open (some WebSocket implementations, e.g. Node 20's, then never
    // fire close); or no welcome within the request timeout.
    const finish = (code: number, reason: string) => {
      clearTimeout(handshakeTimer);
      if (this.socket !== socket) return;
      this.socket = undefined;
      if (socket.readyState !== socket.CLOSED) socket.close();
      void this.onClosed(code, reason, opened, token);
    };
    const handshakeTimer = setTimeout(() => {
      if (this.state !== "connected") finish(1006, "no welcome in time");
    }, this.options.requestTimeoutMs ?? 10_000);
    this.handshakeTimer = handshakeTimer;
    socket.onerror = () => {
      if (!opened) finish(1006, "");
    };
    socket.onclose = (event) => finish(event.code, event.reason);
  }

  private onFrame(text: string): void {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (frame.op === "welcome") return this.onWelcome(frame as unknown as Welcome, "ws");
    if (frame.op === "message") return this.emit("message", frame.data);
    if (frame.op === "unsubscribed" && typeof frame.channel === "string") {
      const sub = this.subs.get(frame.channel);
      this.subs.delete(frame.channel);
      sub?.handlers.onUnsubscribed?.(String(frame.reason ?? ""));
      return;
    }
    if ("id" in frame) {
      this.requests.settle(frame);
      return;
    }
    if (typeof frame.channel === "string") this.onPush(frame);
  }

  /** A push (from WebSocket or SSE): dedup by offset, then the handlers. */
  private onPush(frame: Record<string, unknown>): void {
    const sub = this.subs.get(frame.channel as string);
    if (!sub) return;
    if (frame.join) return sub.handlers.onJoin?.(frame.join as { user?: string });
    if (frame.leave) return sub.handlers.onLeave?.(frame.leave as { user?: string });
    const epoch = typeof frame.epoch === "string" ? frame.epoch : undefined;
    const offset = typeof frame.offset === "number" ? frame.offset : undefined;
    if (!sub.accept(epoch, offset)) return;
    sub.handlers.onMessage(frame.data, { channel: sub.channel, epoch, offset });
  }

  private onWelcome(welcome: Welcome, transport: "ws" | "sse"): void {
    clearTimeout(this.handshakeTimer);
    this.welcome = welcome;
    this.transport = transport;
    this.attempt = 0;
    this.setState("connected");
    this.emit("connected", welcome);
    if (transport === "ws") {
      for (const sub of this.subs.values()) this.sendSubscribe(sub);
      this.scheduleRefresh(welcome.expires_at);
    } else {
      // The stream is open for every channel; positions come with `event: recovery`.
      for (const sub of this.subs.values()) if (!sub.settle.done) (sub.settle.done = true), sub.settle.resolve(undefined);
    }
  }

  private sendSubscribe(sub: Subscription): void {
    const since = sub.position;
    const frame: Record<string, unknown> = { op: "subscribe", channel: sub.channel };
    if (since) frame.since = since;
    this.request(frame).then(
      (result) => this.onSubscribed(sub, since !== undefined, result),
      (error: FerrygateError) => {
        if (error.code === "disconnected" || error.code === "closed") return; // retried on reconnect
        if (this.subs.get(sub.channel) === sub) this.subs.delete(sub.channel);
        sub.handlers.onError?.(error);
        if (!sub.settle.done) (sub.settle.done = true), sub.settle.reject(error);
      },
    );
  }

  /** @internal Applies a subscribe reply; exported for the SSE recovery events too. */
  onSubscribed(sub: Subscription, askedSince: boolean, result: unknown): void {
    const r = (result ?? {}) as { recovered?: boolean; epoch?: string; offset?: number };
    if (askedSince) {
      const recovered = r.recovered === true;
      // Not recovered: start over from the current position.
      if (!recovered && typeof r.epoch === "string" && typeof r.offset === "number") {
        sub.position = { epoch: r.epoch, offset: r.offset };
      }
      sub.handlers.onRecovered?.({ recovered, epoch: r.epoch, offset: r.offset });
    } else if (typeof r.epoch === "string" && typeof r.offset === "number") {
      sub.position = { epoch: r.epoch, offset: r.offset };
    }
    if (!sub.settle.done) (sub.settle.done = true), sub.settle.resolve(result);
  }

  private async removeSub(sub: Subscription): Promise<void> {
    if (this.subs.get(sub.channel) !== sub) return;
    this.subs.delete(sub.channel);
    if (this.state !== "connected") return;
    if (this.transport === "sse") return this.restartSse();
    try {
      await this.request({ op: "unsubscribe", channel: sub.channel });
    } catch (e) {
      if (!(e instanceof FerrygateError) || !["not_found", "disconnected", "closed"].includes(e.code)) throw e;
    }
  }

  private scheduleRefresh(expiresAt: number | undefined): void {
    clearTimeout(this.refreshTimer);
    if (expiresAt === undefined || !this.options.getToken) return;
    const remaining = expiresAt * 1000 - Date.now();
    const margin = Math.min(this.options.refreshMarginMs ?? 30_000, remaining / 2);
    this.refreshTimer = setTimeout(() => void this.refresh(), Math.max(0, remaining - margin));
  }

  /** Sends `refresh` with a fresh token (SPEC §3); on failure the server's 4001 at expiry reconnects. */
  private async refresh(): Promise<void> {
    let token: string | undefined;
    try {
      token = await this.currentToken();
    } catch (e) {
      return this.emit("error", new FerrygateError("token_failed", `getToken failed: ${String(e)}`));
    }
    try {
      const result = (await this.request({ op: "refresh", token })) as { expires_at?: number } | undefined;
      this.scheduleRefresh(result?.expires_at);
    } catch (e) {
      this.emit("error", e instanceof FerrygateError ? e : new FerrygateError("forbidden", String(e)));
    }
  }

  private async onClosed(code: number, reason: string, opened: boolean, token: string | undefined): Promise<void> {
    clearTimeout(this.refreshTimer);
    this.requests.failAll(new FerrygateError("disconnected", `connection closed (${code})`));
    if (this.stopped) return;
    const wasConnected = this.state === "connected";
    this.setState("disconnected");
    this.emit("disconnected", { code, reason });
    if (!opened) {
      const status = await probeStatus(this.url(), token);
      if (status === 401 || status === 403) {
        this.emit("error", new FerrygateError(status === 401 ? "unauthorized" : "forbidden", `the gateway refused the connection (HTTP ${status})`, status));
        return this.close();
      }
      this.wsFailures++;
    }
    this.urlIndex++;
    const next = reconnectDelay(code, reason, this.attempt, this.options.backoff, this.options.random, wasConnected);
    if (next.failure) this.attempt++;
    this.scheduleReconnect(next.delayMs);
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.open(), delayMs);
  }

  private sseLastId?: string;

  private openSseTransport(token: string | undefined): void {
    const channels = [...this.subs.values()];
    const stream = openSse(this.url(), token, channels, {
      onOpen: () => this.onWelcome({ conn: "", user: null, node: "" }, "sse"),
      onPush: (frame) => this.onPush(frame),
      onRecovery: (channel, result) => {
        const sub = this.subs.get(channel);
        if (sub) this.onSubscribed(sub, true, result);
      },
      onEnd: (status) => {
        this.sseLastId = stream.lastEventId ?? this.sseLastId;
        this.sse = undefined;
        if (this.stopped) return;
        this.wsFailures = 0; // try WebSocket again next
        this.setState("disconnected");
        this.emit("disconnected", { code: status ?? 1006, reason: "sse ended" });
        if (status === 401 || status === 403) {
          this.emit("error", new FerrygateError(status === 401 ? "unauthorized" : "forbidden", `the gateway refused the stream (HTTP ${status})`, status));
          return this.close();
        }
        this.urlIndex++;
        this.scheduleReconnect(backoffDelay(this.attempt++, this.options.backoff, this.options.random));
      },
    }, this.sseLastId);
    this.sse = stream;
  }

  /** The set of channels changed while on SSE: reopen the stream with the new set (it is receive-only). */
  private restartSse(): void {
    const stream = this.sse;
    if (!stream) return;
    this.sseLastId = stream.lastEventId ?? this.sseLastId;
    stream.close();
    this.sse = undefined;
    void this.open();
  }
}
