// Requests awaiting their reply on one connection: ids, timeouts, and the
// reply (or the loss of the connection) settling each promise once.

import { FerrygateError } from "./errors.js";

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: FerrygateError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The table of requests in flight, keyed by the `id` each frame carries. */
export class Requests {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** Sends `frame` with a fresh id through `send`; resolves with the reply's `result`, rejects at `deadline` (ms since epoch). */
  start(frame: Record<string, unknown>, send: (text: string) => void, deadline: number, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new FerrygateError("timeout", `no reply to ${String(frame.op)} within ${timeoutMs} ms`));
      }, Math.max(0, deadline - Date.now()));
      this.pending.set(id, { resolve, reject, timer });
      send(JSON.stringify({ ...frame, id }));
    });
  }

  /** Settles the request a reply frame answers (`{"id","ok","result"}` or `{"id","error"}`); false when no request waits for it. */
  settle(frame: Record<string, unknown>): boolean {
    if (typeof frame.id !== "number") return false;
    const pending = this.pending.get(frame.id);
    if (!pending) return false;
    this.pending.delete(frame.id);
    clearTimeout(pending.timer);
    const error = frame.error as { code?: string; message?: string } | undefined;
    if (error) pending.reject(new FerrygateError(error.code ?? "unknown", error.message ?? ""));
    else pending.resolve(frame.result);
    return true;
  }

  /** Rejects every request in flight with `error` (the connection is gone). */
  failAll(error: FerrygateError): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
      this.pending.delete(id);
    }
  }
}
