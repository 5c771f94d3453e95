// Presence through the client against a real gateway (jwt-auth, so users
// have names): the `presence` op, and join/leave pushes to subscribers.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../dist/index.js";
import { Gateway, until, authPlugin, mint, nowS, NO_AUTH_PLUGIN } from "./support.mjs";

const PRESENCE_ROUTE = `[[routes]]\nchannels = "lobby.*"\npresence = true\njoin_leave = true\n`;
const started = [];
after(async () => {
  for (const g of started) await g.kill();
});

test("presence lists who is here; join and leave reach subscribers", { skip: NO_AUTH_PLUGIN }, async () => {
  const g = await Gateway.start({ anonymous: false, extra: authPlugin() + PRESENCE_ROUTE });
  started.push(g);
  const token = (sub) => mint({ sub, exp: nowS() + 60 });
  const alice = new Client({ url: g.url, token: token("alice") });
  const bob = new Client({ url: g.url, token: token("bob") });
  await Promise.all([alice.connect(), bob.connect()]);
  const seen = [];
  const sub = alice.subscribe("lobby.main", {
    onMessage: () => {},
    onJoin: (who) => seen.push(["join", who.user]),
    onLeave: (who) => seen.push(["leave", who.user]),
  });
  await sub.ready;
  await until(() => seen.length === 1, "alice's own join");
  assert.deepEqual(await alice.presence("lobby.main"), {
    channel: "lobby.main",
    connections: 1,
    users: [{ user: "alice", connections: 1 }],
  });

  // bob may ask without subscribing; then he joins and leaves.
  assert.equal((await bob.presence("lobby.main")).connections, 1);
  await bob.subscribe("lobby.main", { onMessage: () => {} }).ready;
  await until(() => seen.length === 2, "bob's join");
  const both = await bob.presence("lobby.main");
  assert.deepEqual(both.users, [
    { user: "alice", connections: 1 },
    { user: "bob", connections: 1 },
  ]);
  // Paged: one user a page, in id order, the cursor leading to the next.
  const first = await bob.presence("lobby.main", { limit: 1 });
  assert.deepEqual(first.users, [{ user: "alice", connections: 1 }]);
  assert.equal(typeof first.next_cursor, "string");
  const second = await bob.presence("lobby.main", { limit: 1, cursor: first.next_cursor });
  assert.deepEqual(second.users, [{ user: "bob", connections: 1 }]);
  assert.equal(second.next_cursor, undefined, "the last page has no cursor");
  await assert.rejects(bob.presence("lobby.main", { limit: 0 }), (e) => e.code === "bad_request");
  bob.close();
  await until(() => seen.length === 3, "bob's leave");
  assert.deepEqual(seen, [
    ["join", "alice"],
    ["join", "bob"],
    ["leave", "bob"],
  ]);
  // The leave is pushed when bob's entry is gone: alice is alone again.
  assert.deepEqual((await alice.presence("lobby.main")).users, [{ user: "alice", connections: 1 }]);
  await assert.rejects(alice.presence("room.none"), (e) => e.code === "not_found", "a channel without presence");
  alice.close();
});
