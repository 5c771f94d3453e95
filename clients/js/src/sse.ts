// The receive-only fallback: `GET /sse` (SPEC §4) read with fetch streaming,
// in browsers and Node alike. fetch rather than EventSource: it can send the
// token as an `Authorization` header and `Last-Event-ID` on the first request,
// it shows the HTTP status of a refusal, and it leaves reconnecting to the
// client's own backoff instead of EventSource's fixed retry.

import type { Subscription } from "./subscription.js";

/** What the stream reports to the client. */
export interface SseHandlers {
  /** The stream is open (HTTP 200). */
  onOpen: () => void;
  /** One push, the same JSON as over WebSocket. */
  onPush: (frame: Record<string, unknown>) => void;
  /** One `event: recovery` (data `{"channel","recovered","epoch","offset"}`). */
  onRecovery: (channel: string, result: unknown) => void;
  /** The stream ended: the HTTP status when refused, undefined when it ended after opening. */
  onEnd: (status?: number) => void;
}

/** An open stream; `close()` ends it without calling `onEnd`. */
export interface SseStream {
  close(): void;
  /** The last `id:` seen (opaque when the stream has several history channels). */
  lastEventId?: string;
}

/**
 * Opens `/sse` next to the WebSocket URL `wsUrl` for the given subscriptions.
 * `Last-Event-ID` is `<epoch>:<offset>` when exactly one channel has a
 * position; with several, the opaque id the previous stream sent (`previousId`).
 */
export function openSse(
  wsUrl: string,
  token: string | undefined,
  subs: Subscription[],
  handlers: SseHandlers,
  previousId?: string,
): SseStream {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = url.pathname.replace(/\/ws$/, "/sse");
  for (const sub of subs) url.searchParams.append("channel", sub.channel);
  const positioned = subs.filter((s) => s.position);
  const lastId =
    positioned.length === 1 && positioned[0].position
      ? `${positioned[0].position.epoch}:${positioned[0].position.offset}`
      : positioned.length > 1
        ? previousId
        : undefined;
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  if (lastId !== undefined) headers["Last-Event-ID"] = lastId;
  const abort = new AbortController();
  const stream: SseStream = { close: () => abort.abort() };
  void (async () => {
    let response: Response;
    try {
      response = await fetch(url.toString(), { headers, signal: abort.signal });
    } catch {
      if (!abort.signal.aborted) handlers.onEnd(0);
      return;
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel().catch(() => undefined);
      if (!abort.signal.aborted) handlers.onEnd(response.status);
      return;
    }
    handlers.onOpen();
    try {
      await readEvents(response.body, (event, data, id) => {
        if (id !== undefined) stream.lastEventId = id;
        if (data === undefined) return; // an id-only event: recorded, not dispatched
        let value: unknown;
        try {
          value = JSON.parse(data);
        } catch {
          return;
        }
        if (event === "recovery") {
          const channel = (value as { channel?: unknown }).channel;
          if (typeof channel === "string") handlers.onRecovery(channel, value);
        } else if (event === "message" && value !== null && typeof value === "object") {
          handlers.onPush(value as Record<string, unknown>);
        }
        // `event: expired`: the server ends the stream next; onEnd reconnects with a fresh token.
      });
    } catch {
      // cut: reported below
    }
    if (!abort.signal.aborted) handlers.onEnd(undefined);
  })();
  return stream;
}

/**
 * The text/event-stream parser (WHATWG HTML §9.2.6): one callback per
 * dispatched event, and one with `data` undefined for a block that only sets
 * the last event id (the gateway sends one right after its subscribes).
 */
async function readEvents(
  body: ReadableStream<Uint8Array>,
  dispatch: (event: string, data: string | undefined, id: string | undefined) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let data: string[] = [];
  let id: string | undefined;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let newline: number;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
      if (line === "") {
        if (data.length > 0) dispatch(event || "message", data.join("\n"), id);
        else if (id !== undefined) dispatch(event, undefined, id);
        event = "";
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue; // heartbeat comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? "" : line.slice(colon + 1);
      if (text.startsWith(" ")) text = text.slice(1);
      if (field === "event") event = text;
      else if (field === "data") data.push(text);
      else if (field === "id" && !text.includes("\0")) id = text;
    }
  }
}
