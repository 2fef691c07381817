// Connecting, requests and their replies, refusals with their codes, time-outs and events, in
// both sub-protocols.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, JSON_PROTOCOL, MSGPACK, RequestError } from "@rtserver/client";

import { SERVER, clientOf, deposit, devToken, group, next, user } from "./helpers.js";
import { Proxy } from "./proxy.js";

for (const [codec, protocol] of [["msgpack", MSGPACK], ["json", JSON_PROTOCOL]]) {
  test(`${protocol}: hello, a reply, a refusal's code and another member's message`, async (t) => {
    const [alice, bob] = [await user("张三"), await user("李四")];
    const gid = await group([alice, bob], "相亲相爱一家人");
    await deposit(alice, "12.34");
    const a = clientOf(t, alice, { codec });
    const b = clientOf(t, bob, { codec });

    const hello = await a.connect();
    assert.equal(a.protocol, protocol);
    assert.deepEqual(hello.user, { id: alice, name: "张三" });
    assert.equal(hello.balance, "12.34");
    assert.deepEqual(hello.groups, [{ id: gid, name: "相亲相爱一家人", members: 2 }]);
    await b.connect();

    const heard = next(a, "message");
    const sent = await b.request("chat.send", { to_type: "group", to_id: gid, text: "晚上吃饭" });
    assert.equal(sent.ok, true);
    assert.equal(sent.message.text, "晚上吃饭");
    const { message } = await heard;
    assert.equal(message.id, sent.message.id);
    assert.deepEqual(message.from, { id: bob, name: "李四" });
    assert.equal(message.text, "晚上吃饭");

    const refused = await a.request("packet.grab", { rp_id: 987654321 }).catch((err) => err);
    assert.ok(refused instanceof RequestError);
    assert.equal(refused.code, "not_found");
    assert.equal(refused.op, "packet.grab");
    assert.equal(refused.reply.ok, false);

    const tooMuch = await a.request("packet.create", {
      type: 1, for_id: bob, number: 1, amount: "20.00", pay_type: "balance",
    }).then((created) => a.request("packet.pay", { rp_id: created.rp_id })).catch((err) => err);
    assert.equal(tooMuch.code, "insufficient_balance");
    assert.equal((await a.request("wallet.get")).balance, "12.34");
  });
}

test("a request without a reply in time fails with `timeout`; later replies still match", async (t) => {
  const alice = await user("张三");
  const proxy = await Proxy.start(t, SERVER);
  const a = clientOf(t, alice, { url: proxy.url });
  await a.connect();
  proxy.freeze(); // nothing reaches the server, nobody is told
  const late = await a.request("ping", {}, { timeout: 300 }).catch((err) => err);
  assert.ok(late instanceof RequestError);
  assert.equal(late.code, "timeout");

  proxy.thaw(); // the ping's reply arrives now, for a request nobody waits for any more
  const wallet = await a.request("wallet.get");
  assert.deepEqual([wallet.balance, wallet.t], ["0.00", undefined]);
});

test("a request while not connected fails at once with `disconnected`", async (t) => {
  const a = clientOf(t, await user("张三"));
  const early = await a.request("ping").catch((err) => err);
  assert.equal(early.code, "disconnected");
  await a.connect();
  assert.equal(typeof (await a.request("ping")).t, "number");
  a.close();
  assert.equal((await a.request("ping").catch((err) => err)).code, "disconnected");
});

test("an unknown user is told as a SignInError from connect, after a fresh token was tried", async (t) => {
  const asked = [];
  const nobody = 2_999_999_999_999;
  const client = new Client({ url: SERVER, backoffFirst: 50, getToken: (fresh) => {
    asked.push(fresh);
    return devToken(SERVER, nobody);
  } });
  t.after(() => client.close());
  const refused = await client.connect().catch((err) => err);
  assert.equal(refused.name, "SignInError");
  assert.deepEqual(asked, [false, true, true]);
});
