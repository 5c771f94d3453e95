// Recovery across instances on NATS with JetStream history: the client's
// gateway is SIGKILLed while messages go on; the client moves to the next
// URL and gets every message it missed, once, in order (SPEC §3 history).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../dist/index.js";
import { Gateway, Nats, until } from "./support.mjs";

const started = [];
after(async () => {
  for (const s of started.reverse()) await (s.kill ? s.kill() : s.stop());
});

test("a killed gateway: the client recovers exactly on another instance", async () => {
  const nats = await Nats.start();
  started.push(nats);
  const g1 = await Gateway.start({ broker: nats.broker });
  const g2 = await Gateway.start({ broker: nats.broker });
  started.push(g1, g2);
  const reader = new Client({ urls: [g1.url, g2.url], backoff: { baseMs: 100, maxMs: 200 } });
  const writer = new Client({ url: g2.url });
  const first = await reader.connect();
  await writer.connect();
  const got = [];
  const recoveries = [];
  const sub = reader.subscribe("room.kill", {
    onMessage: (data, meta) => got.push([data, meta.offset]),
    onRecovered: (r) => recoveries.push(r.recovered),
  });
  await sub.ready;
  for (let i = 1; i <= 5; i++) await writer.publish("room.kill", i);
  await until(() => got.length === 5, "the first five");
  const moved = new Promise((r) => {
    const off = reader.on("connected", (w) => (off(), r(w)));
  });
  await g1.kill();
  for (let i = 6; i <= 60; i++) await writer.publish("room.kill", i);
  const second = await moved;
  assert.notEqual(second.node, first.node);
  for (let i = 61; i <= 70; i++) await writer.publish("room.kill", i);
  await until(() => got.length >= 70, `all 70 (have ${got.length})`);
  await writer.request({ op: "ping" });
  assert.deepEqual(got, Array.from({ length: 70 }, (_, k) => [k + 1, k + 1]), "once each, in order");
  assert.deepEqual(recoveries, [true]);
  reader.close();
  writer.close();
});
