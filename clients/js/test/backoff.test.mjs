// The reconnect delays: drawn many times, they spread over their whole window.
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, drainDelay, parseDrainHint, reconnectDelay } from "../dist/index.js";

const SAMPLES = 1000;
const BUCKETS = 10;

/** Asserts every sample is in [0, max] and each tenth of the range holds 5%..15% of them. */
function assertSpread(samples, max) {
  const counts = new Array(BUCKETS).fill(0);
  for (const s of samples) {
    assert.ok(s >= 0 && s <= max, `${s} outside [0, ${max}]`);
    counts[Math.min(BUCKETS - 1, Math.floor((s / max) * BUCKETS))]++;
  }
  for (const c of counts) {
    // Expected 100 per bucket; 50 and 150 are more than 5 standard deviations (~9.5) away.
    assert.ok(c >= 50 && c <= 150, `uneven spread: ${counts}`);
  }
}

test("1,000 drain delays for a hint of N ms spread over [0, N]", () => {
  const hint = parseDrainHint('{"reconnect_in_ms":8000}');
  assert.equal(hint, 8000);
  assertSpread(Array.from({ length: SAMPLES }, () => drainDelay(hint)), hint);
  // The client's own decision for a 1012 with that reason, whatever the attempt count.
  const delays = Array.from({ length: SAMPLES }, (_, k) => reconnectDelay(1012, '{"reconnect_in_ms":8000}', k % 7));
  assert.ok(delays.every((d) => d.failure === false));
  assertSpread(delays.map((d) => d.delayMs), 8000);
});

test("the close code picks the delay: 1013 and a hint-less 1012 back off, 4001 retries soon", () => {
  const options = { baseMs: 100, maxMs: 10_000 };
  const max = () => 0.999999;
  assert.deepEqual(reconnectDelay(1013, "", 5, options, max), { delayMs: 3199, failure: true });
  assert.deepEqual(reconnectDelay(1012, "draining", 2, options, max), { delayMs: 399, failure: true });
  assert.deepEqual(reconnectDelay(4001, "token expired", 5, options, max), { delayMs: 99, failure: false });
  assert.deepEqual(reconnectDelay(1006, "", 20, options, max), { delayMs: 9999, failure: true });
});

test("full-jitter backoff spreads over [0, min(max, base * 2^attempt)]", () => {
  const options = { baseMs: 500, maxMs: 30_000 };
  assertSpread(Array.from({ length: SAMPLES }, () => backoffDelay(0, options)), 500);
  assertSpread(Array.from({ length: SAMPLES }, () => backoffDelay(3, options)), 4000);
  assertSpread(Array.from({ length: SAMPLES }, () => backoffDelay(40, options)), 30_000);
});

test("a close reason without a usable hint gives none", () => {
  for (const reason of ["", "draining", "{}", '{"reconnect_in_ms":-1}', '{"reconnect_in_ms":"5"}', "null"]) {
    assert.equal(parseDrainHint(reason), undefined, reason);
  }
});
