// A minimal typed event emitter (no dependency, same in browsers and Node).

/** Removes the listener it was returned for. */
export type Off = () => void;

export class Emitter<Events extends Record<string, unknown[]>> {
  // Listeners are stored untyped; `on` and `emit` keep the types per event.
  private listeners = new Map<keyof Events, Set<(...args: unknown[]) => void>>();

  /** Calls `listener` on every `event`; returns a function that stops it. */
  on<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): Off {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    const stored = listener as unknown as (...args: unknown[]) => void;
    set.add(stored);
    return () => set.delete(stored);
  }

  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (e) {
        // A throwing app handler must not break the client's state machine.
        const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
        if (report) report(e);
        else console.error("ferrygate client: an event listener threw", e);
      }
    }
  }
}
