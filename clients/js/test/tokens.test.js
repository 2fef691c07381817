// The socket's token: renewed with `auth.refresh` before its `exp`, replaced after the server
// closed the socket with 4001, and refused when it is not the same user's.

import assert from "node:assert/strict";
import { test } from "node:test";

import { RequestError } from "@rtserver/client";

import { SHORT_TOKEN_SERVER, clientOf, devToken, next, record, sleepUntil, user } from "./helpers.js";

/** A JWT's `exp`, read as the server does (the payload is base64url JSON). */
function expOf(token) {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url")).exp;
}

test("a short-lived token is renewed on the open socket before it runs out", async (t) => {
  const a = clientOf(t, await user("张三"), { tokens: SHORT_TOKEN_SERVER });
  const drops = record(a, "disconnected");
  await a.connect();
  const first = expOf(a.token);
  const renewed = await next(a, "refreshed");
  assert.ok(renewed.exp > first);
  assert.equal(expOf(a.token), renewed.exp);
  await sleepUntil(first + 1); // the server would have closed the socket at `first`
  assert.equal(typeof (await a.request("ping")).t, "number");
  assert.deepEqual(drops, []);
});

test("closed with 4001 when no new token came in time, it reconnects with a fresh one", async (t) => {
  const alice = await user("张三");
  const asked = [];
  const a = clientOf(t, alice, { backoffFirst: 50, getToken: async (fresh) => {
    asked.push(fresh);
    if (asked.length === 2) throw new Error("the chat app did not answer"); // the renewal
    return devToken(SHORT_TOKEN_SERVER, alice);
  } });
  const renewals = record(a, "refreshed");
  const failed = next(a, "refresh_failed");
  await a.connect();
  const first = expOf(a.token);
  assert.equal((await failed).message, "the chat app did not answer");
  assert.deepEqual(await next(a, "disconnected"), { code: 4001, reason: "token expired" });
  const hello = await next(a, "reconnected");
  assert.equal(hello.user.id, alice);
  assert.ok(expOf(a.token) > first);
  assert.deepEqual(asked.slice(0, 3), [false, true, true]);
  assert.deepEqual(renewals, []);
});

test("auth.refresh with another user's token or a forged one changes nothing", async (t) => {
  const [alice, bob] = [await user("张三"), await user("李四")];
  const a = clientOf(t, alice);
  await a.connect();
  const mine = a.token;
  const theirs = await a.refresh(await devToken(SHORT_TOKEN_SERVER, bob)).catch((err) => err);
  assert.ok(theirs instanceof RequestError);
  assert.equal(theirs.code, "forbidden");
  const forged = await a.refresh(`${mine.slice(0, -4)}AAAA`).catch((err) => err);
  assert.equal(forged.code, "unauthorized");
  assert.equal(a.token, mine);

  const fresh = await devToken(SHORT_TOKEN_SERVER, alice);
  assert.equal((await a.refresh(fresh)).exp, expOf(fresh));
  assert.equal(a.token, fresh);
});
