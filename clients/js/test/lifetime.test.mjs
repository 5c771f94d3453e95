// Token lifetime against a real gateway with the shipped jwt-auth plugin:
// a refresh before `expires_at` keeps the connection, and a refused refresh
// ends in 4001, after which the client reconnects with a fresh token and
// recovers what it missed (SPEC §3).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "../dist/index.js";
import { Gateway, until, authPlugin, mint, nowS, NO_AUTH_PLUGIN } from "./support.mjs";

const started = [];
async function gateway() {
  const g = await Gateway.start({ anonymous: false, extra: authPlugin() });
  started.push(g);
  return g;
}
after(async () => {
  for (const g of started) await g.kill();
});

/** Publishes 1..n on `channel`, one every `everyMs`. */
async function publishEvery(writer, channel, n, everyMs) {
  for (let i = 1; i <= n; i++) {
    await writer.publish(channel, i);
    await sleep(everyMs);
  }
}

test("a token is refreshed before it expires: one connection, no push lost", { skip: NO_AUTH_PLUGIN }, async () => {
  const g = await gateway();
  let mints = 0;
  const client = new Client({
    url: g.url,
    // Each token lives 3 s: the connection outlives two of them.
    getToken: async () => (mints++, mint({ sub: "alice", exp: nowS() + 3 })),
  });
  const writer = new Client({ url: g.url, token: mint({ sub: "writer", exp: nowS() + 60 }) });
  const closes = [];
  const errors = [];
  client.on("disconnected", ({ code }) => closes.push(code));
  client.on("error", (e) => errors.push(e.code));
  const welcome = await client.connect();
  await writer.connect();
  assert.equal(typeof welcome.expires_at, "number");
  assert.ok(welcome.expires_at <= nowS() + 3, JSON.stringify(welcome));
  const got = [];
  const sub = client.subscribe("room.refresh", { onMessage: (data) => got.push(data) });
  await sub.ready;
  await publishEvery(writer, "room.refresh", 45, 100); // 4.5 s, past the first token's expiry
  await until(() => got.length === 45, `all 45 (have ${got.length})`);
  assert.deepEqual(got, Array.from({ length: 45 }, (_, k) => k + 1));
  assert.deepEqual(closes, [], "the connection was never closed");
  assert.deepEqual(errors, []);
  assert.ok(mints >= 3, `the connect and at least two refreshes fetched a token (${mints})`);
  client.close();
  writer.close();
});

test("a refused refresh ends in 4001; the client reconnects with a fresh token and recovers", { skip: NO_AUTH_PLUGIN }, async () => {
  const g = await gateway();
  // The connect's token lives 2 s; the refresh gets garbage (refused); the
  // reconnect after the 4001 gets a good one.
  const tokens = [mint({ sub: "alice", exp: nowS() + 2 }), "garbage"];
  const client = new Client({
    url: g.url,
    getToken: async () => tokens.shift() ?? mint({ sub: "alice", exp: nowS() + 60 }),
    backoff: { baseMs: 50, maxMs: 50 },
  });
  const writer = new Client({ url: g.url, token: mint({ sub: "writer", exp: nowS() + 60 }) });
  const closes = [];
  const errors = [];
  const welcomes = [];
  client.on("disconnected", ({ code }) => closes.push(code));
  client.on("error", (e) => errors.push(e.code));
  client.on("connected", (w) => welcomes.push(w));
  await Promise.all([client.connect(), writer.connect()]);
  const got = [];
  const recoveries = [];
  const sub = client.subscribe("room.expire", {
    onMessage: (data, meta) => got.push([data, meta.offset]),
    onRecovered: (r) => recoveries.push(r.recovered),
  });
  await sub.ready;
  await publishEvery(writer, "room.expire", 40, 100); // 4 s: across the 4001 and the reconnect
  await until(() => got.length === 40, `all 40 (have ${got.length})`);
  assert.deepEqual(got, Array.from({ length: 40 }, (_, k) => [k + 1, k + 1]), "once each, in order");
  assert.deepEqual(errors, ["forbidden"], "the refused refresh is reported");
  assert.deepEqual(closes, [4001]);
  assert.deepEqual(recoveries, [true]);
  assert.equal(welcomes.length, 2);
  assert.equal(welcomes[1].user, "alice");
  assert.ok(welcomes[1].expires_at > welcomes[0].expires_at + 30, "the new connection has the fresh token's expiry");
  client.close();
  writer.close();
});

test("a garbage refresh is forbidden and leaves the connection as it was", { skip: NO_AUTH_PLUGIN }, async () => {
  const g = await gateway();
  const client = new Client({ url: g.url, token: mint({ sub: "alice", exp: nowS() + 60 }) });
  const welcome = await client.connect();
  await assert.rejects(client.request({ op: "refresh", token: "garbage" }), (e) => e.code === "forbidden");
  await assert.rejects(
    client.request({ op: "refresh", token: mint({ sub: "mallory", exp: nowS() + 60 }) }),
    (e) => e.code === "forbidden",
    "another user",
  );
  const result = await client.request({ op: "refresh", token: mint({ sub: "alice", exp: nowS() + 120 }) });
  assert.ok(result.expires_at >= welcome.expires_at + 59, JSON.stringify(result));
  assert.equal(client.state, "connected");
  client.close();
});

test("a getToken that throws is reported as token_failed and called again", { skip: NO_AUTH_PLUGIN }, async () => {
  const g = await gateway();
  let calls = 0;
  const client = new Client({
    url: g.url,
    getToken: async () => {
      if (++calls === 1) throw new Error("offline");
      return mint({ sub: "alice", exp: nowS() + 60 });
    },
    backoff: { baseMs: 20, maxMs: 20 },
  });
  const errors = [];
  client.on("error", (e) => errors.push(e.code));
  const welcome = await client.connect();
  assert.equal(welcome.user, "alice");
  assert.deepEqual(errors, ["token_failed"]);
  assert.equal(calls, 2);
  client.close();
});
