// The SSE fallback against a real gateway: behind a proxy that drops
// WebSocket upgrades, the client receives over `GET /sse`, recovers after the
// stream is cut, and refuses to send (SPEC §4).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../dist/index.js";
import { Gateway, proxy, until, next } from "./support.mjs";

const started = [];
after(async () => {
  for (const g of started) await g.kill();
});

test("a blocked WebSocket falls back to /sse: pushes in order, recovery after a cut, receive-only", async () => {
  const g = await Gateway.start();
  started.push(g);
  const blocked = await proxy(g.address, { blockWebSocket: true });
  const reader = new Client({ url: blocked.url, sseAfterFailures: 2, backoff: { baseMs: 50, maxMs: 100 } });
  const writer = new Client({ url: g.url });
  const got = [];
  const recoveries = [];
  const sub = reader.subscribe("room.sse", {
    onMessage: (data, meta) => got.push([data, meta.offset]),
    onRecovered: (r) => recoveries.push(r.recovered),
  });
  let attempts = 0;
  reader.on("connecting", () => attempts++);
  await Promise.all([reader.connect(), writer.connect()]);
  assert.equal(reader.transport, "sse");
  assert.equal(attempts, 3, "two WebSocket attempts, then the stream");
  await sub.ready;
  for (let i = 1; i <= 5; i++) await writer.publish("room.sse", i);
  await until(() => got.length === 5, "the first five over SSE");
  await assert.rejects(reader.publish("room.sse", "no"), (e) => e.code === "receive_only");

  // The stream is cut: the client tries WebSocket again, falls back again,
  // and resumes from its position (Last-Event-ID) with nothing lost.
  const down = next(reader, "disconnected");
  blocked.cut();
  await down;
  for (let i = 6; i <= 30; i++) await writer.publish("room.sse", i);
  await until(() => reader.state === "connected", "the second stream");
  for (let i = 31; i <= 35; i++) await writer.publish("room.sse", i);
  await until(() => got.length >= 35, `all 35 (have ${got.length})`);
  await writer.request({ op: "ping" });
  assert.deepEqual(got, Array.from({ length: 35 }, (_, k) => [k + 1, k + 1]), "once each, in order");
  assert.deepEqual(recoveries, [true]);
  assert.equal(reader.transport, "sse");
  reader.close();
  writer.close();
  await blocked.close();
});
