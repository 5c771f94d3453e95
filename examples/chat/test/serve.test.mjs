// The development server's own rules: loopback only, bad token requests
// refused with 4xx, only the page and the built client served.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { startDevServer, ISSUER } from "../serve.mjs";

test("the dev server mints checked tokens, refuses bad requests and other interfaces", async () => {
  await assert.rejects(startDevServer({ listen: "0.0.0.0:0" }), /loopback only/);
  const dev = await startDevServer({ listen: "127.0.0.1:0", urls: ["ws://gw/ws"], secret: "s" });
  try {
    const ask = async (method, path, body) => {
      const response = await fetch(new URL(path, dev.url), { method, body });
      return [response.status, await response.json().catch(() => null)];
    };
    for (const body of ["nope", "null", '{"user":"Bad!"}', '{"user":"a","ttl_s":0}', '{"user":"a","ttl_s":1.5}', "x".repeat(5000)]) {
      const [status] = await ask("POST", "/dev/token", body);
      assert.ok(status === 400 || status === 413, `${body.slice(0, 20)}: ${status}`);
    }
    const [status, { token, expires_at }] = await ask("POST", "/dev/token", '{"user":"alice","ttl_s":5}');
    assert.equal(status, 200);
    const [head, claims, signature] = token.split(".");
    assert.equal(createHmac("sha256", "s").update(`${head}.${claims}`).digest("base64url"), signature);
    const payload = JSON.parse(Buffer.from(claims, "base64url").toString());
    assert.deepEqual(payload, { sub: "alice", iss: ISSUER, exp: expires_at });
    assert.ok(Math.abs(expires_at - (Date.now() / 1000 + 5)) < 2);
    assert.deepEqual(await ask("GET", "/config.json"), [200, { urls: ["ws://gw/ws"] }]);
    assert.equal((await ask("GET", "/serve.mjs"))[0], 404);
    assert.equal((await ask("GET", "/client/index.d.ts"))[0], 404);
    assert.equal((await ask("PUT", "/"))[0], 405);
  } finally {
    await dev.close();
  }
});
