// The README's example runs as written against a real gateway.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { Gateway } from "./support.mjs";

test("examples/chat.mjs sends and reads back its messages", async () => {
  const g = await Gateway.start({ extra: "" });
  try {
    const script = fileURLToPath(new URL("../examples/chat.mjs", import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, script, "one", "two"], {
      env: { ...process.env, FERRYGATE_URL: g.url },
      timeout: 10_000,
    });
    assert.match(stdout, /\[connected\]\n/);
    assert.match(stdout, /#1 \{"text":"one"\}\n#2 \{"text":"two"\}\n/);
    assert.match(stdout, /\[closed\]\n$/);
  } finally {
    await g.kill();
  }
});
