// The client against a real gateway process (memory broker, history route).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Client, FerrygateError } from "../dist/index.js";
import { Gateway, proxy, until, next, PLUGINS } from "./support.mjs";

const started = [];
async function gateway(options) {
  const g = await Gateway.start(options);
  started.push(g);
  return g;
}
after(async () => {
  for (const g of started) await g.kill();
});

test("connect, subscribe, publish, unsubscribe, typed errors", async () => {
  const g = await gateway();
  const states = [];
  const client = new Client({ url: g.url });
  client.on("state", (s) => states.push(s));
  const welcome = await client.connect();
  assert.equal(typeof welcome.conn, "string");
  assert.equal(await client.connect(), welcome, "connect() again while connected: the same welcome");
  const got = [];
  const sub = client.subscribe("room.one", { onMessage: (data, meta) => got.push([data, meta.offset]) });
  const position = await sub.ready;
  assert.equal(position.offset, 0);
  await client.publish("room.one", { text: "hi" });
  await client.publish("room.one", null);
  await until(() => got.length === 2, "two pushes");
  assert.deepEqual(got, [[{ text: "hi" }, 1], [null, 2]]);

  // rpc on the in-process broker: `unavailable`, as a FerrygateError.
  await assert.rejects(client.rpc("orders.get", {}), (e) => e instanceof FerrygateError && e.code === "unavailable");
  // One Subscription per channel.
  assert.throws(() => client.subscribe("room.one", { onMessage: () => {} }), (e) => e.code === "bad_request");
  // A bad channel name: `bad_request`, reported to the subscription, the connection stays.
  const errors = [];
  const bad = client.subscribe("a..b", { onMessage: () => {}, onError: (e) => errors.push(e.code) });
  await assert.rejects(bad.ready, (e) => e.code === "bad_request");
  assert.deepEqual(errors, ["bad_request"]);

  await sub.unsubscribe();
  await client.publish("room.one", "after");
  await client.request({ op: "ping" });
  assert.equal(got.length, 2, "no push after unsubscribe");
  client.close();
  assert.deepEqual(states, ["connecting", "connected", "closed"]);
  await assert.rejects(client.publish("room.one", 1), (e) => e.code === "closed");
});

test("a dropped socket recovers exactly the missed messages, in order, once", async () => {
  const g = await gateway();
  const cut = await proxy(g.address);
  const reader = new Client({ url: cut.url, backoff: { baseMs: 200, maxMs: 200 } });
  const writer = new Client({ url: g.url });
  await Promise.all([reader.connect(), writer.connect()]);
  const got = [];
  const recoveries = [];
  const sub = reader.subscribe("room.drop", {
    onMessage: (data, meta) => got.push([data, meta.offset]),
    onRecovered: (r) => recoveries.push(r.recovered),
  });
  await sub.ready;
  for (let i = 1; i <= 3; i++) await writer.publish("room.drop", i);
  await until(() => got.length === 3, "the first three");
  const disconnected = next(reader, "disconnected");
  cut.cut();
  await disconnected;
  // Published while the reader is away, and some while it comes back.
  for (let i = 4; i <= 40; i++) await writer.publish("room.drop", i);
  await until(() => reader.state === "connected", "the reconnect");
  for (let i = 41; i <= 50; i++) await writer.publish("room.drop", i);
  await until(() => got.length >= 50, "all fifty");
  await writer.request({ op: "ping" });
  assert.deepEqual(got, Array.from({ length: 50 }, (_, k) => [k + 1, k + 1]));
  assert.deepEqual(recoveries, [true]);
  reader.close();
  writer.close();
  await cut.close();
});

test("a reader that falls behind is cut with 1013, backs off, and is told what it lost", async (t) => {
  const g = await gateway({ extra: "max_queued_bytes = 65536" });
  const slow = await proxy(g.address);
  const reader = new Client({ url: slow.url, backoff: { baseMs: 100, maxMs: 100 } });
  const writer = new Client({ url: g.url });
  await Promise.all([reader.connect(), writer.connect()]);
  const offsets = [];
  const recoveries = [];
  const sub = reader.subscribe("room.slow", {
    onMessage: (_data, meta) => offsets.push(meta.offset),
    onRecovered: (r) => recoveries.push(r),
  });
  await sub.ready;
  const closes = [];
  reader.on("disconnected", ({ code }) => closes.push(code));
  slow.hold();
  const big = "x".repeat(50_000);
  const cutCount = async () => {
    const text = await (await fetch(`${g.http}/metrics`)).text();
    return Number(/^ferrygate_slow_consumers(?:_total)? (\d+)/m.exec(text)?.[1] ?? 0);
  };
  // Bounded: the loopback buffers hold a few MB; 50 kB each, 400 at most.
  for (let i = 0; i < 400; i++) {
    await writer.publish("room.slow", big);
    if (i % 10 === 9 && (await cutCount()) > 0) break;
  }
  assert.equal(await cutCount(), 1, "the gateway cut the reader with 1013");
  slow.release();
  await until(() => recoveries.length === 1, "the resubscribe");
  assert.equal(closes[0], 1013);
  for (let k = 1; k < offsets.length; k++) assert.ok(offsets[k] > offsets[k - 1], "no duplicate, in order");
  const last = offsets.at(-1);
  t.diagnostic(`received ${offsets.length} (last offset ${last}); resubscribe: ${JSON.stringify(recoveries[0])}`);
  if (recoveries[0].recovered) assert.deepEqual(offsets, Array.from({ length: last }, (_, k) => k + 1));
  else assert.ok(recoveries[0].offset >= last, "recovered:false carries the current position");
  reader.close();
  writer.close();
  await slow.close();
});

test("a restarted memory gateway is a new epoch: recovered:false, then live again", async () => {
  let g = await gateway();
  const address = g.address;
  const client = new Client({ url: g.url, backoff: { baseMs: 100, maxMs: 400 } });
  await client.connect();
  const got = [];
  const recoveries = [];
  const sub = client.subscribe("room.restart", {
    onMessage: (data) => got.push(data),
    onRecovered: (r) => recoveries.push(r),
  });
  await sub.ready;
  await client.publish("room.restart", "before");
  await until(() => got.length === 1, "the first push");
  const oldEpoch = sub.position.epoch;
  await g.kill();
  await until(() => client.state !== "connected", "the disconnect");
  g = await gateway({ listen: address });
  await until(() => recoveries.length >= 1, `the resubscribe (${client.state})`);
  assert.equal(recoveries.length, 1, JSON.stringify(recoveries));
  assert.equal(recoveries[0].recovered, false);
  assert.notEqual(recoveries[0].epoch, oldEpoch);
  await client.publish("room.restart", "after");
  await until(() => got.length === 2, "the live push");
  assert.deepEqual(got, ["before", "after"]);
  client.close();
});

test("a drained gateway (1012) sends the client to the next URL, subscriptions included", async () => {
  const g1 = await gateway();
  const g2 = await gateway();
  const client = new Client({ urls: [g1.url, g2.url], backoff: { baseMs: 50, maxMs: 50 } });
  const first = await client.connect();
  const got = [];
  const sub = client.subscribe("room.drain", { onMessage: (data) => got.push(data) });
  await sub.ready;
  const closed = next(client, "disconnected");
  const reconnected = new Promise((r) => {
    const off = client.on("connected", (w) => (off(), r(w)));
  });
  await g1.drain();
  const [{ code }] = await closed;
  assert.equal(code, 1012);
  const second = await reconnected;
  assert.notEqual(second.node, first.node);
  await until(() => sub.position && sub.position.epoch !== undefined, "the resubscribe");
  await client.publish("room.drain", "on g2");
  await until(() => got.length === 1, "the push on the second gateway");
  client.close();
});

test("a 401 at connect stops the client with an error event, without retrying", { skip: !existsSync(join(PLUGINS, "jwt_auth.wasm")) && "no plugins/dist/jwt_auth.wasm (cargo xtask build-plugins)" }, async () => {
  const g = await gateway({
    anonymous: false,
    extra: `[plugins.auth]\nkind = "auth"\npath = "${join(PLUGINS, "jwt_auth.wasm")}"\nconfig = { hs256_secret = "a test secret of at least 32 bytes!" }\n`,
  });
  const client = new Client({ url: g.url, token: "not-a-jwt", backoff: { baseMs: 10, maxMs: 10 } });
  let attempts = 0;
  client.on("connecting", () => attempts++);
  const errors = [];
  client.on("error", (e) => errors.push(e));
  await assert.rejects(client.connect(), (e) => e.code === "closed");
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, "unauthorized");
  assert.equal(errors[0].status, 401);
  assert.equal(client.state, "closed");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(attempts, 1, "one attempt, no loop");
});

test("publish resolves with whether a plugin dropped the message", { skip: !existsSync(join(PLUGINS, "seen_by_rust.wasm")) && "no plugins/dist/seen_by_rust.wasm (cargo xtask build-plugins)" }, async () => {
  // `seen-by` (plugins/testing) drops a payload containing its `drop_word`.
  const g = await gateway({
    extra: `[plugins.seen]\nkind = "transform"\npath = "${join(PLUGINS, "seen_by_rust.wasm")}"\nconfig = { drop_word = "spam" }\n\n[[routes]]\nchannels = "filtered.*"\ninbound = ["seen"]\n`,
  });
  const client = new Client({ url: g.url });
  await client.connect();
  const got = [];
  const sub = client.subscribe("filtered.a", { onMessage: (data) => got.push(data) });
  await sub.ready;
  assert.deepEqual(await client.publish("filtered.a", { text: "buy spam now" }), { dropped: true });
  assert.deepEqual(await client.publish("filtered.a", { text: "fine" }), { dropped: false });
  await until(() => got.length === 1, "the kept message");
  assert.equal(got[0].text, "fine");
  client.close();
});
