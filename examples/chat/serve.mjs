// The chat page's development server. DEVELOPMENT ONLY: it mints a token for
// any user name anyone asks for, so it listens on loopback addresses only.
//
// It serves the page (web/), the built client (clients/js/dist at /client/),
// /config.json (the gateway URLs) and POST /dev/token, which signs an HS256
// JWT the example's jwt-auth plugin accepts (`sub` = the name, `iss` =
// ferrygate-chat, `exp` = now + ttl_s). The gateway itself serves no files
// and mints no tokens; in production the app's own backend does the latter.
//
//   node examples/chat/serve.mjs        (cargo xtask run starts it)
//
// Environment: CHAT_LISTEN (127.0.0.1:8081), FERRYGATE_URLS (comma-separated,
// ws://127.0.0.1:8080/ws), FERRYGATE_JWT_SECRET (dev-only-jwt-secret, as in
// ferrygate.toml).
import { createHmac } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const WEB = join(here, "web");
const CLIENT = join(here, "..", "..", "clients", "js", "dist");

/** The token issuer the example's jwt-auth plugin expects. */
export const ISSUER = "ferrygate-chat";
/** Longest token lifetime the server mints, seconds (a day). */
export const MAX_TTL_S = 86_400;
/** Default token lifetime, seconds. */
export const DEFAULT_TTL_S = 3600;
const USER = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };
const PAGES = { "/": "index.html", "/app.js": "app.js", "/style.css": "style.css" };

/** An HS256 JWT for `claims`. */
export function sign(claims, secret) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const signed = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${signed}.${createHmac("sha256", secret).update(signed).digest("base64url")}`;
}

/**
 * Starts the server on `listen` ("host:port", loopback only; port 0 picks one).
 * Resolves with `{ url, close() }`.
 */
export async function startDevServer({ listen = "127.0.0.1:8081", urls = ["ws://127.0.0.1:8080/ws"], secret = "dev-only-jwt-secret" } = {}) {
  const [host, port] = splitHostPort(listen);
  if (!["127.0.0.1", "localhost", "::1"].includes(host)) {
    throw new Error(`the chat dev server mints tokens for anyone: it listens on loopback only, not ${host}`);
  }
  const server = createServer((request, response) => {
    handle(request, response, { urls, secret }).catch((e) => {
      if (response.headersSent) response.destroy();
      else reply(response, 500, { error: String(e) });
    });
  });
  await new Promise((resolve, reject) => server.once("error", reject).listen(port, host, resolve));
  const address = server.address();
  const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { url: `http://${shown}:${address.port}/`, close: () => new Promise((r) => server.close(r)) };
}

async function handle(request, response, { urls, secret }) {
  const { pathname } = new URL(request.url ?? "/", "http://localhost");
  if (request.method === "POST" && pathname === "/dev/token") return token(request, response, secret);
  if (request.method !== "GET") return reply(response, 405, { error: "GET or POST /dev/token" });
  if (pathname === "/config.json") return reply(response, 200, { urls });
  const page = PAGES[pathname];
  const client = /^\/client\/([a-z]+\.js)$/.exec(pathname);
  const file = page ? join(WEB, page) : client ? join(CLIENT, client[1]) : undefined;
  if (!file) return reply(response, 404, { error: "not found" });
  let body;
  try {
    body = await readFile(file);
  } catch {
    const hint = client ? " (build the client: cd clients/js && npm ci && npm run build)" : "";
    return reply(response, 404, { error: `not found${hint}` });
  }
  response.writeHead(200, { "content-type": TYPES[file.slice(file.lastIndexOf("."))], "cache-control": "no-store" });
  response.end(body);
}

/** `POST /dev/token` `{"user":"alice","ttl_s":3600}` -> `{"token","expires_at"}`. */
async function token(request, response, secret) {
  let body = "";
  for await (const chunk of request) {
    body += chunk;
    if (body.length > 1024) return reply(response, 413, { error: "too large" });
  }
  let asked;
  try {
    asked = JSON.parse(body);
  } catch {
    return reply(response, 400, { error: "a JSON body: {\"user\":\"alice\"}" });
  }
  const user = asked?.user;
  const ttl = asked?.ttl_s ?? DEFAULT_TTL_S;
  if (typeof user !== "string" || !USER.test(user)) {
    return reply(response, 400, { error: "user: 1 to 32 of a-z 0-9 _ -, starting with a letter or digit" });
  }
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_S) return reply(response, 400, { error: `ttl_s: 1 to ${MAX_TTL_S}` });
  const exp = Math.floor(Date.now() / 1000) + ttl;
  return reply(response, 200, { token: sign({ sub: user, iss: ISSUER, exp }, secret), expires_at: exp });
}

function reply(response, status, value) {
  response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  response.end(JSON.stringify(value));
}

function splitHostPort(listen) {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(listen);
  if (!m) throw new Error(`CHAT_LISTEN: host:port, not ${listen}`);
  return [m[1], Number(m[2])];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const env = process.env;
  const { url } = await startDevServer({
    listen: env.CHAT_LISTEN ?? "127.0.0.1:8081",
    urls: (env.FERRYGATE_URLS ?? "ws://127.0.0.1:8080/ws").split(",").map((u) => u.trim()).filter(Boolean),
    secret: env.FERRYGATE_JWT_SECRET || "dev-only-jwt-secret",
  });
  console.log(`chat page (development only): ${url}`);
}
