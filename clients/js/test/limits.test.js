// What the server imposes on one socket: at most 16 requests being worked on at once, and
// --rate-limit requests a second; the client keeps within the first and retries the second.

import assert from "node:assert/strict";
import { test } from "node:test";

import { RATE_LIMIT, clientOf, user } from "./helpers.js";

/** A WebSocket that counts what goes by: the most requests out at once, the refusals for rate. */
function watched() {
  const seen = { mostOut: 0, rateLimited: 0 };
  const out = new Set();
  class Watched extends WebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (msg) => {
        const frame = JSON.parse(msg.data);
        out.delete(frame.re);
        if (frame.code === "rate_limited") seen.rateLimited += 1;
      });
    }

    send(data) {
      out.add(JSON.parse(data).id);
      seen.mostOut = Math.max(seen.mostOut, out.size);
      super.send(data);
    }
  }
  return { WebSocket: Watched, seen };
}

const MANY = 3 * RATE_LIMIT; // more than a burst (twice the rate) at once

test("a burst over the rate limit is sent again until every request is answered", async (t) => {
  const { WebSocket, seen } = watched();
  const a = clientOf(t, await user("张三"), { codec: "json", WebSocket });
  await a.connect();
  const replies = await Promise.all(Array.from({ length: MANY }, () => a.request("wallet.get")));
  assert.deepEqual(new Set(replies.map((r) => r.balance)), new Set(["0.00"]));
  assert.ok(seen.rateLimited > 0, "the server refused some for their rate");
  assert.ok(seen.mostOut <= 16, `${seen.mostOut} requests out at once`);
});

test("without retries, a request over the rate limit fails with `rate_limited`", async (t) => {
  const a = clientOf(t, await user("张三"), { rateLimitRetries: 0 });
  await a.connect();
  const outcomes = await Promise.allSettled(Array.from({ length: MANY }, () => a.request("ping")));
  const codes = new Set(outcomes.map((o) => (o.status === "fulfilled" ? "ok" : o.reason.code)));
  assert.deepEqual(codes, new Set(["ok", "rate_limited"]));
});
