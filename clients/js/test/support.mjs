// Test support: a real `ferrygate serve` process (memory broker, a manifest
// with a history route), and a TCP proxy whose sockets a test can cut.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { createServer, connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
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
  /**
   * `extra`: more `[server]` keys, then any tables (plugins, routes matched
   * before the history route); `broker`: the body of `[broker]` (default: memory).
   */
  static async start({ listen = "127.0.0.1:0", extra = "", anonymous = true, broker = "", drainMs = 300 } = {}) {
    if (!existsSync(BIN)) throw new Error(`no gateway binary at ${BIN} (set FERRYGATE_BIN)`);
    const dir = mkdtempSync(join(tmpdir(), "ferrygate-js-"));
    const manifest = join(dir, "ferrygate.toml");
    const brokerTable = broker ? `\n[broker]\n${broker}\n` : "";
    writeFileSync(
      manifest,
      `[server]\nlisten = "${listen}"\nallow_anonymous = ${anonymous}\ndrain_ms = ${drainMs}\nclose_grace_ms = 500\n${extra}\n${brokerTable}${HISTORY_ROUTE}`,
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
 * A TCP proxy to `target` ("host:port"), dropping WebSocket upgrades when
 * `blockWebSocket`; `url` is its `/ws` URL (`http` its origin); `cut()`
 * destroys every open pair of sockets; `hold()` stops forwarding what the gateway sends (a client that
 * stops reading), `release()` resumes it.
 */
export async function proxy(target, { blockWebSocket = false } = {}) {
  const [host, port] = target.split(":");
  const pairs = new Set();
  const accepted = new Set();
  const server = createServer((downstream) => {
    accepted.add(downstream);
    downstream.on("close", () => accepted.delete(downstream));
    downstream.on("error", () => downstream.destroy());
    downstream.once("data", (head) => {
      // A proxy that does not pass WebSocket upgrades: it drops the
      // connection of any `GET /ws`, as some corporate proxies do.
      if (blockWebSocket && /^GET \/ws[ ?]/.test(head.toString("latin1", 0, 16))) return downstream.destroy();
      const upstream = connect(Number(port), host);
      upstream.write(head);
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
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `ws://127.0.0.1:${server.address().port}/ws`,
    http: `http://127.0.0.1:${server.address().port}`,
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
    /** Stops listening and drops every connection (a browser's stream would keep `server.close` waiting). */
    close: () => {
      const closed = new Promise((r) => server.close(r));
      for (const socket of accepted) socket.destroy();
      for (const [a, b] of pairs) (a.destroy(), b.destroy());
      return closed;
    },
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

/** The HS256 secret of {@link authPlugin} and {@link mint}. */
export const SECRET = "a test secret of at least 32 bytes!";

/** Now, in Unix seconds (the unit of `exp` and `expires_at`). */
export const nowS = () => Math.floor(Date.now() / 1000);

/** A signed HS256 JWT with `claims` (e.g. `{sub, exp}`), as the shipped jwt-auth reads it. */
export function mint(claims, secret = SECRET) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const signed = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${signed}.${createHmac("sha256", secret).update(signed).digest("base64url")}`;
}

/** The `[plugins.auth]` table of the shipped jwt-auth (leeway 0: `exp` is the expiry). */
export function authPlugin(secret = SECRET) {
  return `[plugins.auth]\nkind = "auth"\npath = "${join(PLUGINS, "jwt_auth.wasm")}"\nconfig = { hs256_secret = "${secret}" }\n`;
}

/** Why a test that needs the built jwt-auth plugin is skipped, or false. */
export const NO_AUTH_PLUGIN = !existsSync(join(PLUGINS, "jwt_auth.wasm")) && "no plugins/dist/jwt_auth.wasm (cargo xtask build-plugins)";

/** A free loopback port (asked of the kernel, then released). */
export async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** A `nats-server` with JetStream (history) on a free port, storing in a temporary folder. */
export class Nats {
  static async start() {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "ferrygate-js-nats-"));
    const child = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], { stdio: "ignore" });
    const failed = new Promise((_, reject) => {
      child.on("error", (e) => reject(new Error(`cannot start nats-server (install it, or run cargo xtask test): ${e.message}`)));
      child.on("exit", (code) => reject(new Error(`nats-server exited with ${code}`)));
    });
    const deadline = Date.now() + PATIENCE_MS;
    for (;;) {
      const open = await Promise.race([
        failed,
        new Promise((r) => {
          const socket = connect(port, "127.0.0.1", () => (socket.destroy(), r(true)));
          socket.on("error", () => r(false));
        }),
      ]);
      if (open) break;
      if (Date.now() > deadline) throw new Error("nats-server never listened");
      await sleep(20);
    }
    failed.catch(() => undefined);
    const nats = new Nats();
    Object.assign(nats, { child, port, dir });
    return nats;
  }

  /** The `[broker]` body for a gateway on this server. */
  get broker() {
    return `kind = "nats"\nurls = ["nats://127.0.0.1:${this.port}"]`;
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once("exit", r));
      this.child.kill("SIGKILL");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
