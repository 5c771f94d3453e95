// Test support: a real `ferrygate serve` process (memory broker, a manifest
// with a history route), and a TCP proxy whose sockets a test can cut.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root (clients/js/test -> ../../..). */
export const ROOT = resolve(here, "..", "..", "..");
/** The gateway binary: $FERRYGATE_BIN, else the workspace's debug build. */
export const BIN = process.env.FERRYGATE_BIN ?? join(ROOT, "target", "debug", "ferrygate");
/** Built plugins: $FERRYGATE_PLUGINS, else plugins/dist (`cargo xtask build-plugins`). */
export const PLUGINS = process.env.FERRYGATE_PLUGINS ?? join(ROOT, "plugins", "dist");
/** How long a test waits for anything to happen. */
export const PATIENCE_MS = 10_000;

export const HISTORY_ROUTE = `
[[routes]]
channels = "room.>"
history = { size = 100, ttl_s = 60 }
`;

/** A gateway child process. `start` again on the same address restarts it. */
export class Gateway {
  static async start({ listen = "127.0.0.1:0", extra = "", anonymous = true } = {}) {
    if (!existsSync(BIN)) throw new Error(`no gateway binary at ${BIN} (set FERRYGATE_BIN)`);
    const dir = mkdtempSync(join(tmpdir(), "ferrygate-js-"));
    const manifest = join(dir, "ferrygate.toml");
    writeFileSync(
      manifest,
      `[server]\nlisten = "${listen}"\nallow_anonymous = ${anonymous}\ndrain_ms = 300\nclose_grace_ms = 500\n${extra}\n${HISTORY_ROUTE}`,
    );
    const child = spawn(BIN, ["serve", "--config", manifest], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, RUST_LOG: "info", NO_COLOR: "1" } });
    const address = await new Promise((resolveAddr, reject) => {
      let log = "";
      const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${log}`)), PATIENCE_MS);
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (chunk) => {
        log += chunk;
        const m = /ws:\/\/([0-9.]+:[0-9]+)\/ws/.exec(log);
        if (m) {
          clearTimeout(timer);
          resolveAddr(m[1]);
        }
      });
      child.on("exit", (code) => reject(new Error(`gateway exited with ${code}:\n${log}`)));
    });
    const gateway = new Gateway();
    Object.assign(gateway, { child, address, dir });
    return gateway;
  }

  get url() {
    return `ws://${this.address}/ws`;
  }

  get http() {
    return `http://${this.address}`;
  }

  /** SIGTERM (drain: every socket closes with 1012) and wait for the exit. */
  async drain() {
    return this.#stop("SIGTERM");
  }

  /** SIGKILL and wait for the exit. */
  async kill() {
    return this.#stop("SIGKILL");
  }

  async #stop(signal) {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill(signal);
    await exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A TCP proxy to `target` ("host:port"); `cut()` destroys every open pair of
 * sockets; `hold()` stops forwarding what the gateway sends (a client that
 * stops reading), `release()` resumes it.
 */
export async function proxy(target) {
  const [host, port] = target.split(":");
  const pairs = new Set();
  const server = createServer((downstream) => {
    const upstream = connect(Number(port), host);
    const pair = [downstream, upstream];
    pairs.add(pair);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    const end = () => {
      pairs.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `ws://127.0.0.1:${server.address().port}/ws`,
    hold() {
      for (const [down, up] of pairs) {
        up.unpipe(down);
        up.pause();
      }
    },
    release() {
      for (const [down, up] of pairs) {
        up.pipe(down);
        up.resume();
      }
    },
    cut() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

/** Resolves when `predicate()` holds, polling; rejects after PATIENCE_MS. */
export async function until(predicate, what) {
  const deadline = Date.now() + PATIENCE_MS;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves at the next `event` of `client`. */
export function next(client, event) {
  return new Promise((r) => {
    const off = client.on(event, (...args) => {
      off();
      r(args);
    });
  });
}
