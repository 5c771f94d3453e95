// The chat page in real headless Chromium (Debian's, driven by playwright-core,
// which downloads nothing) against real gateways on a real nats-server with
// JetStream, the shipped jwt-auth plugin and the development server:
// - two pages chat through two instances; one instance is SIGKILLed and its
//   page moves to the other and shows every message sent meanwhile, once, in order;
// - a token that lives 3 s is refreshed with no message lost;
// - a page whose WebSocket is blocked receives over SSE.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { Client } from "../../../clients/js/dist/index.js";
import { Gateway, Nats, proxy, authPlugin, mint, nowS, SECRET, NO_AUTH_PLUGIN } from "../../../clients/js/test/support.mjs";
import { startDevServer } from "../serve.mjs";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const SKIP = NO_AUTH_PLUGIN || (!existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM} (apt-get install chromium, or cargo xtask test)`);
const CHAT_ROUTE = `[[routes]]\nchannels = "chat.*"\nhistory = { size = 500, ttl_s = 600 }\npresence = true\njoin_leave = true\n`;
/** How long a page may take to show something. */
const PATIENCE_MS = 15_000;

let nats;
let gateways = [];
let dev;
let browser;
const cleanups = [];

before(async () => {
  if (SKIP) return;
  nats = await Nats.start();
  const start = () => Gateway.start({ anonymous: false, broker: nats.broker, extra: authPlugin(SECRET) + CHAT_ROUTE });
  gateways = [await start(), await start()];
  dev = await startDevServer({ listen: "127.0.0.1:0", urls: gateways.map((g) => g.url), secret: SECRET });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});

after(async () => {
  for (const cleanup of cleanups) await cleanup();
  await browser?.close();
  await dev?.close();
  for (const g of gateways) await g.kill();
  await nats?.stop();
});

/** A page of the chat signed in as `user`, with the page's query `extra`, once connected over `transport`. */
async function open(user, extra, transport = "ws") {
  const page = await browser.newPage({ viewport: { width: 900, height: 540 } });
  page.setDefaultTimeout(PATIENCE_MS);
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  cleanups.push(async () => assert.deepEqual(errors, [], `no script error on ${user}'s page`));
  const query = new URLSearchParams({ user, room: "lobby", ...extra });
  await page.goto(`${dev.url}?${query}`);
  await connected(page, transport);
  return page;
}

const connected = (page, transport = "ws") =>
  page.waitForFunction((t) => {
    const badge = document.getElementById("state");
    return badge.dataset.state === "connected" && badge.dataset.transport === t;
  }, transport);

/** The texts of the messages the page shows, in order. */
const texts = (page) => page.$$eval("#messages li.message .text", (items) => items.map((i) => i.textContent));

/** Waits until the page shows `expected` (exactly: no more, no fewer, this order). */
async function shows(page, expected) {
  await page
    .waitForFunction((n) => document.querySelectorAll("#messages li.message").length >= n, expected.length)
    .catch(() => undefined);
  assert.deepEqual(await texts(page), expected);
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

/** The value of a counter in a gateway's /metrics (0 when absent). */
async function metric(gateway, name) {
  const text = await (await fetch(`${gateway.http}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)`, "m").exec(text)?.[1] ?? 0);
}

/** A Node client that publishes as `user` on the room. */
async function publisher(user, url) {
  const client = new Client({ url, token: mint({ sub: user, exp: nowS() + 600 }) });
  await client.connect();
  cleanups.push(() => client.close());
  return client;
}

test("two pages chat through two instances; the killed one's page recovers every message once", { skip: SKIP }, async () => {
  const [a, b] = gateways;
  const alice = await open("alice", { urls: `${a.url},${b.url}`, sse_after: "0" });
  const bob = await open("bob", { urls: `${b.url},${a.url}` });
  await bob.waitForFunction(() => document.getElementById("presence").textContent.includes("alice"));
  await alice.waitForFunction(() => document.getElementById("presence").textContent.includes("bob"));
  await say(alice, "hi bob");
  await shows(bob, ["hi bob"]);
  await say(bob, "hi alice");
  await shows(alice, ["hi bob", "hi alice"]);
  const aliceNode = await alice.evaluate(() => window.ferrygateChat.client.welcome.node);

  await a.kill(); // SIGKILL: alice's socket is cut, no goodbye
  await alice.waitForFunction(() => document.getElementById("state").dataset.state !== "connected");
  // Alice's page stays away (offline) until bob's burst is published.
  await alice.context().setOffline(true);
  const burst = Array.from({ length: 20 }, (_, k) => `while alice was away ${k + 1}`);
  for (const text of burst) await say(bob, text);
  const expected = ["hi bob", "hi alice", ...burst];
  await shows(bob, expected);
  const replayed = await metric(b, "ferrygate_history_replayed_messages_total");
  await alice.context().setOffline(false);
  await connected(alice);
  await shows(alice, expected);
  assert.ok((await metric(b, "ferrygate_history_replayed_messages_total")) - replayed >= burst.length, "the burst came from history");
  assert.notEqual(await alice.evaluate(() => window.ferrygateChat.client.welcome.node), aliceNode, "alice moved");
  assert.deepEqual(await alice.$$eval("#messages li.notice", (l) => l.map((i) => i.textContent)), [], "no notice");
  await say(alice, "back");
  await shows(bob, [...expected, "back"]);
  await alice.waitForFunction(() => document.getElementById("presence").textContent.includes("bob"));
});

test("a token that lives 3 s is refreshed with no message lost", { skip: SKIP }, async () => {
  const b = gateways[1];
  const carol = await open("carol", { urls: b.url, ttl: "3", room: "refresh" });
  await carol.evaluate(() => {
    window.seen = { states: [], expiries: [] };
    const client = window.ferrygateChat.client;
    window.seen.expiries.push(client.welcome.expires_at);
    client.on("state", (s) => window.seen.states.push(s));
  });
  const writer = await publisher("writer", b.url);
  const sent = [];
  // 5 s of messages: past the first token's expiry and the next one's.
  for (let i = 1; i <= 50; i++) {
    sent.push(`tick ${i}`);
    await writer.publish("chat.refresh", { user: "writer", text: `tick ${i}` });
    await new Promise((r) => setTimeout(r, 100));
  }
  await shows(carol, sent);
  const seen = await carol.evaluate(() => window.seen);
  assert.deepEqual(seen.states, [], "the connection never dropped");
  assert.ok(seen.expiries[0] <= nowS() - 1, `the first token expired during the test (${seen.expiries[0]})`);
});

test("a page whose WebSocket is blocked receives over SSE", { skip: SKIP }, async () => {
  const b = gateways[1];
  const blocked = await proxy(b.address, { blockWebSocket: true });
  cleanups.push(() => blocked.close());
  const dave = await open("dave", { urls: blocked.url, sse_after: "2", room: "sse" }, "sse");
  assert.equal(await dave.locator("#text").isDisabled(), true, "receive-only: the composer is off");
  const writer = await publisher("writer", b.url);
  const sent = Array.from({ length: 5 }, (_, k) => `over sse ${k + 1}`);
  for (const text of sent) await writer.publish("chat.sse", { user: "writer", text });
  await shows(dave, sent);
});
