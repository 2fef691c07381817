// Staying connected: a dropped socket is opened again with backoff, the app hears `reconnected`
// and catches up from history; a half-open one is found by the ping; requests in the air fail.

import assert from "node:assert/strict";
import { test } from "node:test";

import { SERVER, clientOf, devToken, group, next, record, user } from "./helpers.js";
import { COMMAND, OwnServer } from "./own_server.js";
import { Proxy } from "./proxy.js";

const FAST = { backoffFirst: 50, backoffMax: 200 };

test("after the connection drops, the client reconnects and the app catches up", async (t) => {
  const [alice, bob] = [await user("张三"), await user("李四")];
  const gid = await group([alice, bob], "断线重连");
  const proxy = await Proxy.start(t, SERVER);
  const a = clientOf(t, alice, { url: proxy.url, ...FAST });
  const b = clientOf(t, bob);
  const statuses = record(a, "status");
  await Promise.all([a.connect(), b.connect()]);

  // The server is out of reach: the socket drops and new ones are refused for a while.
  proxy.refusing = true;
  const dropped = next(a, "disconnected");
  proxy.cut();
  assert.equal((await dropped).code, 1006);
  await next(a, "status", { where: (s) => s === "reconnecting" });
  const missed = await b.request("chat.send", { to_type: "group", to_id: gid, text: "断线时的消息" });
  await next(a, "status", { where: (s) => s === "offline" }); // a refused attempt, then another
  proxy.refusing = false;

  const hello = await next(a, "reconnected");
  assert.deepEqual(hello.user, { id: alice, name: "张三" });
  assert.deepEqual(statuses.slice(0, 4), ["connecting", "online", "offline", "reconnecting"]);
  assert.equal(statuses.at(-1), "online");
  // What the app does on `reconnected`: fetch what it shows again.
  const history = await a.request("chat.history", { to_type: "group", to_id: gid, limit: 50 });
  assert.deepEqual(history.messages.map((m) => m.text), ["断线时的消息"]);
  assert.equal(history.messages[0].id, missed.message.id);

  // And the live stream goes on on the new socket.
  const heard = next(a, "message");
  await b.request("chat.send", { to_type: "group", to_id: gid, text: "又在线了" });
  assert.equal((await heard).message.text, "又在线了");
});

test("after its server restarts, the client is back with `reconnected` and catches up",
  { skip: !COMMAND && "RTSERVER_SERVE is not set" }, async (t) => {
    const [alice, bob] = [await user("张三"), await user("李四")];
    const gid = await group([alice, bob], "重启");
    const own = await OwnServer.start(t);
    const a = clientOf(t, alice, { url: own.url, ...FAST });
    const b = clientOf(t, bob); // on the other server, which shares the database and Redis
    await Promise.all([a.connect(), b.connect()]);

    const dropped = next(a, "disconnected");
    await own.stop();
    assert.deepEqual(await dropped, { code: 1001, reason: "server shutting down" });
    const missed = await b.request("chat.send", { to_type: "group", to_id: gid, text: "重启时的消息" });
    await next(a, "status", { where: (s) => s === "offline" }); // an attempt while it was down
    const back = next(a, "reconnected", { timeout: 20000 }); // it may be back before start returns
    await own.start();

    const hello = await back;
    assert.equal(hello.user.id, alice);
    const history = await a.request("chat.history", { to_type: "group", to_id: gid, limit: 50 });
    assert.deepEqual(history.messages.map((m) => m.id), [missed.message.id]);
  });

test("a request in the air when the socket drops fails with `disconnected`", async (t) => {
  const proxy = await Proxy.start(t, SERVER);
  const a = clientOf(t, await user("张三"), { url: proxy.url, ...FAST });
  await a.connect();
  proxy.freeze();
  const inTheAir = a.request("wallet.get").catch((err) => err);
  proxy.cut();
  assert.equal((await inTheAir).code, "disconnected");
  await next(a, "reconnected");
  assert.equal((await a.request("wallet.get")).balance, "0.00");
});

test("a half-open socket is found by the unanswered ping and replaced", async (t) => {
  const proxy = await Proxy.start(t, SERVER);
  const a = clientOf(t, await user("张三"), { url: proxy.url, pingInterval: 200, requestTimeout: 300, ...FAST });
  await a.connect();
  proxy.freeze(); // no close, no error: frames just stop arriving
  const given = await next(a, "disconnected");
  assert.deepEqual(given, { code: 4000, reason: "no pong" });
  await next(a, "reconnected");
  assert.equal(typeof (await a.request("ping")).t, "number");
});

test("an upgrade nobody answers is given up on, and the next socket gets in", async (t) => {
  const proxy = await Proxy.start(t, SERVER);
  const a = clientOf(t, await user("张三"), { url: proxy.url, requestTimeout: 300, ...FAST });
  await a.connect();
  proxy.silent = true; // the connection is taken, and the upgrade never answered
  proxy.cut();
  assert.deepEqual(await next(a, "disconnected", { where: (d) => d.code !== 1006 }),
    { code: 4000, reason: "no hello" });
  proxy.silent = false;
  await next(a, "reconnected");
  assert.equal(typeof (await a.request("ping")).t, "number");
});

test("a socket refused before it opened asks for a fresh token next time", async (t) => {
  const alice = await user("张三");
  const proxy = await Proxy.start(t, SERVER);
  const asked = [];
  const a = clientOf(t, alice, { url: proxy.url, ...FAST, getToken: (fresh) => {
    asked.push(fresh);
    return devToken(SERVER, alice);
  } });
  await a.connect();
  proxy.refusing = true;
  proxy.cut();
  await next(a, "status", { where: (s) => s === "offline" });
  await next(a, "status", { where: (s) => s === "offline" });
  proxy.refusing = false;
  await next(a, "reconnected");
  // The first reconnection reuses the token (the socket had opened); after a refusal, a new one.
  assert.deepEqual(asked.slice(0, 3), [false, false, true]);
});
