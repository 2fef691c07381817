// The client's own timing and what it reads from a token, without a server.

import assert from "node:assert/strict";
import { test } from "node:test";

import { renewWait, retryWait } from "../src/timing.js";
import { clockSkew, tokenExp } from "../src/token.js";

test("reconnections wait twice as long after each failure, up to the most, ±25%", () => {
  const middle = [1, 2, 3, 4, 5, 6, 7].map((n) => retryWait(n, 500, 15000, 0.5));
  assert.deepEqual(middle, [500, 1000, 2000, 4000, 8000, 15000, 15000]);
  assert.equal(retryWait(3, 500, 15000, 0), 1500);
  assert.equal(retryWait(3, 500, 15000, 1), 2500);
});

test("a token is renewed a minute before its exp, or a fifth of its life before, by the server's clock", () => {
  const now = 1_800_000_000_000; // ms
  const inAnHour = now / 1000 + 3600;
  assert.equal(renewWait(inAnHour, 0, 60, now), 3540 * 1000);
  assert.equal(renewWait(now / 1000 + 10, 0, 60, now), 8000); // short-lived: 2 s before
  // The server's clock is 100 s ahead: its exp comes 100 s sooner here.
  assert.equal(renewWait(inAnHour, 100, 60, now), 3440 * 1000);
});

test("a JWT's exp is read from its payload, and what is not a JWT has none", () => {
  const payload = Buffer.from(JSON.stringify({ sub: "7", exp: 1800000000 })).toString("base64url");
  assert.equal(tokenExp(`eyJhbGciOiJIUzI1NiJ9.${payload}.c2ln`), 1800000000);
  assert.equal(tokenExp("not-a-token"), null);
});

test("a clock skew under a second is only server_time's rounding down", () => {
  const now = Math.floor(Date.now() / 1000);
  assert.equal(clockSkew(now), 0);
  assert.ok(Math.abs(clockSkew(now + 120) - 120) < 2);
});
