// The chat page: sign-in, the chat list, a room's message stream; wires the socket to the screens.

import { Client } from "@rtserver/client";

import { avatar, clear, h, shortTime, toast } from "./dom.js";
import { openLedger } from "./ledger.js";
import { limitsOf } from "./money.js";
import { openMyBox } from "./mybox.js";
import { closeDetail, ensureKnown, listen as listenToPackets, packetBubble } from "./packets.js";
import { openPinSettings } from "./pin.js";
import { openSendForm } from "./sendform.js";
import {
  app, ask, groupKey, knowPacket, learnName, nameOf, newRoom, onChange, refusal, roomOfMessage,
  show, userKey,
} from "./state.js";

const HISTORY_PAGE = 50;
const TIME_GAP = 300;  // seconds between messages that earn a time line, as in WeChat
const TOKEN = "rt.token";          // sessionStorage: one user per tab, so two tabs can chat
const DEV_USER = "rt.devUser";     // sessionStorage: the dev user id, to ask for a fresh token
const DEMO_USERS = "rt.demoUsers"; // localStorage: the demo people, for one-click sign-in
// How long a page waits for the chat app to answer its call for a new token (see askChatApp).
const CHAT_APP_WAIT_MS = 10000;

const $ = (id) => document.getElementById(id);

// ---- Sign-in ----

function tokenFromUrl() {
  return new URLSearchParams(location.hash.slice(1)).get("token");
}

function boot() {
  // A chat app opens the page as /#token=…: the fragment never reaches the server or its logs.
  const fromUrl = tokenFromUrl();
  if (fromUrl) {
    sessionStorage.setItem(TOKEN, fromUrl);
    sessionStorage.removeItem(DEV_USER);
    history.replaceState(null, "", location.pathname);
  }
  window.addEventListener("hashchange", onTokenInUrl);
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signInAs(Number($("signin-uid").value));
  });
  $("demo-btn").addEventListener("click", setUpDemo);
  $("signout-btn").addEventListener("click", signOut);
  $("mybox-btn").addEventListener("click", openMyBox);
  $("pin-btn").addEventListener("click", openPinSettings);
  $("ledger-btn").addEventListener("click", openLedger);
  $("dm-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = Number($("dm-uid").value);
    if (id > 0 && id !== app.me.id) openRoom(addContact({ id, name: nameOf(id) }).key);
  });
  for (const back of document.querySelectorAll("[data-back]")) {
    back.addEventListener("click", () => goBack(back.dataset.back));
  }
  $("chat-form").addEventListener("submit", sendText);
  $("rp-btn").addEventListener("click", () => openSendForm(app.rooms.get(app.current)));
  $("more-btn").addEventListener("click", loadOlder);
  renderDemoUsers();
  if (sessionStorage.getItem(TOKEN)) start();
  else show("signin");
}

let tokenArrived = null; // while the page waits for the chat app's new token: hands it over

/**
 * A new token in the address of an open page: the chat app's answer to askChatApp, or handed
 * over unasked. The same person's replaces the socket's token; someone else's starts the page
 * again as them.
 */
async function onTokenInUrl() {
  const token = tokenFromUrl();
  if (!token) return;
  history.replaceState(null, "", location.pathname);
  if (tokenArrived) return tokenArrived(token);
  if (app.conn) {
    try {
      await app.conn.refresh(token);
      return sessionStorage.setItem(TOKEN, token);
    } catch (err) {
      if (err.code !== "forbidden") return; // a token the server refuses changes nothing
    }
  }
  sessionStorage.setItem(TOKEN, token);
  sessionStorage.removeItem(DEV_USER);
  location.reload();
}

/**
 * Ask the chat app that opened the page for a new token: a message to the page that framed or
 * opened this one, or to this window itself, where a WebView's own script listens. The chat
 * app answers by putting the token in the address (`#token=…`, which never reaches a server).
 */
function askChatApp() {
  return new Promise((resolve) => {
    const answered = (token) => {
      clearTimeout(timer);
      tokenArrived = null;
      resolve(token);
    };
    const timer = setTimeout(() => answered(sessionStorage.getItem(TOKEN)), CHAT_APP_WAIT_MS);
    tokenArrived = answered;
    (window.opener || window.parent).postMessage({ type: "rtserver.token_needed" }, "*");
  });
}

function goBack(page) {
  if (page === "detail") return closeDetail();
  if (page === "chats") app.current = null;
  show(page);
  if (page === "chats") renderChats();
}

// A hidden stream cannot scroll: whenever the room comes back on screen, show its newest end.
onChange("page", (page) => page === "room" && scrollToEnd());

async function devToken(userId) {
  const response = await fetch("/dev/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: userId }),
  });
  if (response.status === 404) {
    throw new Error("此服务器未开启 --dev：请从聊天应用打开本页（链接带 #token=…）");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || "登录失败");
  return body.token;
}

async function signInAs(userId) {
  if (!(userId > 0)) return signInError("请输入用户ID");
  try {
    sessionStorage.setItem(TOKEN, await devToken(userId));
    sessionStorage.setItem(DEV_USER, String(userId));
  } catch (err) {
    return signInError(err.message);
  }
  start();
}

function signInError(text) {
  $("signin-error").textContent = text;
  $("signin-error").hidden = !text;
  show("signin");
}

async function setUpDemo() {
  const response = await fetch("/dev/demo", { method: "POST" });
  if (!response.ok) {
    return signInError(response.status === 404 ? "演示数据只在 --dev 模式下提供" : "创建演示数据失败");
  }
  const demo = await response.json();
  localStorage.setItem(DEMO_USERS, JSON.stringify(demo.users));
  renderDemoUsers();
  signInAs(demo.users[0].id);
}

function renderDemoUsers() {
  const users = JSON.parse(localStorage.getItem(DEMO_USERS) || "[]");
  const list = clear($("demo-users"));
  if (users.length) list.append(h("p.hint", "以演示用户登录（可在另一个标签页登录另一位）："));
  for (const user of users) {
    list.append(h("button.demo-user", { on: { click: () => signInAs(user.id) } },
      avatar(user, "small"), h("span", `${user.name}`), h("small", `ID ${user.id}`)));
  }
}

function signOut() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(DEV_USER);
  location.reload();
}

// ---- The connection ----

function start() {
  // A new token comes from where the first one did: /dev/token, or the chat app.
  const conn = new Client({
    getToken: async (fresh) => {
      const devUser = Number(sessionStorage.getItem(DEV_USER));
      if (fresh) sessionStorage.setItem(TOKEN, devUser ? await devToken(devUser) : await askChatApp());
      return sessionStorage.getItem(TOKEN);
    },
  });
  app.conn = conn;
  conn.on("status", showStatus);
  conn.on("hello", onHello);
  conn.on("message", (ev) => receive(ev.message, true));
  conn.on("wallet", setBalance);
  conn.on("resync", catchUp);
  listenToPackets(conn);
  show("chats");
  conn.connect().catch((err) => {
    // Never signed in: getToken failed (its words say why) or every socket was refused.
    sessionStorage.removeItem(TOKEN);
    signInError(err.cause ? err.cause.message || String(err.cause) : "登录失败：用户不存在、令牌无效或服务器不可用");
  });
}

const STATUS_WORDS = { connecting: "连接中…", reconnecting: "正在重新连接…", offline: "网络已断开，正在重连…" };

function showStatus(status) {
  const bar = $("status");
  bar.textContent = STATUS_WORDS[status] || "";
  bar.hidden = !STATUS_WORDS[status]; // online, or closed (signed out, or never signed in)
  document.body.dataset.conn = status;
}

async function onHello(hello) {
  const first = app.me === null;
  app.me = hello.user;
  app.clockSkew = app.conn.clockSkew;
  $("protocol").textContent = app.conn.protocol;
  learnName(hello.user);
  app.groups = hello.groups;
  app.hasPin = hello.has_pin;
  app.limits = limitsOf(hello.limits);
  setBalance(hello);
  $("me-name").textContent = hello.user.name;
  $("me-avatar").replaceWith(Object.assign(avatar(hello.user), { id: "me-avatar" }));
  for (const g of hello.groups) {
    const key = groupKey(g.id);
    const room = app.rooms.get(key) || newRoom(key, { type: "group", id: g.id });
    Object.assign(room, { name: g.name, members: g.members });
    app.rooms.set(key, room);
  }
  for (const contact of savedContacts()) addContact(contact);
  // The demo people all share a group: each is someone to chat with one to one.
  const demoUsers = JSON.parse(localStorage.getItem(DEMO_USERS) || "[]");
  if (demoUsers.some((u) => u.id === app.me.id)) demoUsers.forEach(addContact);
  if (first && app.page === "signin") show("chats");
  renderChats();
  // Catch up: every room we have shown gets what it missed while we were away.
  await Promise.all([...app.rooms.values()].map((room) => loadLatest(room, !first)));
  if (app.current) renderStream();
}

/** The server lost some events meant for us (its Redis went away): fetch what they said. */
async function catchUp() {
  const wallet = await ask("wallet.get", {});
  if (wallet.ok) setBalance(wallet);
  await Promise.all([...app.rooms.values()].map((room) => loadLatest(room, true)));
  if (app.current) renderStream();
}

/**
 * Show a balance from `hello`, `wallet.get` or a `wallet` event, unless a newer one is shown:
 * events from settlement, refunds and the other node can arrive out of order, and the larger
 * `ledger_id` is always the later balance.
 */
function setBalance({ balance, ledger_id: ledgerId }) {
  if (ledgerId < app.balanceLedgerId) return;
  app.balance = balance;
  app.balanceLedgerId = ledgerId;
  for (const el of document.querySelectorAll(".balance-value")) el.textContent = balance;
}

// ---- Rooms and contacts ----

function contactsKey() {
  return `rt.contacts.${app.me.id}`;
}

function savedContacts() {
  return JSON.parse(localStorage.getItem(contactsKey()) || "[]");
}

/** A 1:1 chat with someone met in a group, a grab or a message; remembered in this browser. */
function addContact(person) {
  if (person.id === app.me.id) return null;
  learnName(person);
  const key = userKey(person.id);
  let room = app.rooms.get(key);
  if (!room) {
    room = newRoom(key, { type: "user", id: person.id });
    app.rooms.set(key, room);
    const saved = savedContacts().filter((c) => c.id !== person.id);
    localStorage.setItem(contactsKey(), JSON.stringify([...saved, { id: person.id, name: nameOf(person.id) }]));
  }
  room.name = nameOf(person.id);
  return room;
}

function roomTitle(room) {
  if (room.type !== "group") return nameOf(room.id);
  return room.members ? `${room.name}(${room.members})` : room.name;
}

function preview(message) {
  if (!message) return "";
  if (message.kind === "notice") return message.text;
  const text = message.kind === "packet" ? `[微信红包]${message.text}` : message.text;
  return message.to_type === "group" ? `${message.from.name}: ${text}` : text;
}

function renderChats() {
  const list = clear($("chat-list"));
  const rooms = [...app.rooms.values()].sort((a, b) => lastTime(b) - lastTime(a) || a.key.localeCompare(b.key));
  for (const room of rooms) {
    const last = room.messages[room.messages.length - 1];
    list.append(h("li.chat-item", { dataset: { room: room.key }, on: { click: () => openRoom(room.key) } },
      room.type === "group" ? h("div.avatar.group", "群") : avatar({ id: room.id, name: nameOf(room.id) }),
      h("div.chat-mid",
        h("div.chat-name", roomTitle(room)),
        h("div.chat-preview", preview(last))),
      h("div.chat-side",
        h("div.chat-time", last ? shortTime(last.time) : ""),
        room.unread > 0 && h("span.badge", room.unread))));
  }
}

function lastTime(room) {
  const last = room.messages[room.messages.length - 1];
  return last ? last.time : 0;
}

/** Fetch a room's newest messages and merge them in; with `countUnread`, count what is new. */
async function loadLatest(room, countUnread) {
  const reply = await ask("chat.history",
    { to_type: room.type, to_id: room.id, limit: HISTORY_PAGE });
  if (!reply.ok) return;
  const known = new Set(room.messages.map((m) => m.id));
  const newest = room.messages.length ? room.messages[room.messages.length - 1].id : 0;
  const oldestFetched = reply.messages.length ? reply.messages[0].id : Infinity;
  // A gap between what we had and what came back would leave a hole: then start from these.
  if (newest && oldestFetched > newest && reply.messages.length === HISTORY_PAGE) room.messages = [];
  for (const m of reply.messages) {
    learn(m);
    if (!known.has(m.id)) {
      room.messages.push(m);
      if (countUnread && app.current !== room.key && m.from.id !== app.me.id) room.unread += 1;
    }
  }
  room.messages.sort((a, b) => a.id - b.id);
  if (!room.loaded) room.hasMore = reply.messages.length === HISTORY_PAGE;
  room.loaded = true;
  renderChats();
}

async function loadOlder() {
  const room = app.rooms.get(app.current);
  if (!room || !room.messages.length) return;
  const reply = await ask("chat.history",
    { to_type: room.type, to_id: room.id, before: room.messages[0].id, limit: HISTORY_PAGE });
  if (!reply.ok) return toast(refusal(reply));
  reply.messages.forEach(learn);
  room.messages = [...reply.messages, ...room.messages];
  room.hasMore = reply.messages.length === HISTORY_PAGE;
  const stream = $("stream");
  const fromBottom = stream.scrollHeight - stream.scrollTop;
  renderStream();
  stream.scrollTop = stream.scrollHeight - fromBottom;
}

/** What a message teaches: a name, a packet summary, a person to chat with. */
function learn(message) {
  learnName(message.from);
  if (message.packet) knowPacket(message.packet);
  if (message.to_type === "group" && message.from.id !== app.me.id) addContact(message.from);
}

function receive(message, live) {
  learn(message);
  if (message.packet && live && message.packet.status === "active") {
    // Just paid: nobody, us included, can hold a share of it yet.
    const known = app.packets.get(message.packet.rp_id);
    if (known.mine === undefined) known.mine = null;
  }
  const key = roomOfMessage(message);
  let room = app.rooms.get(key);
  if (!room && message.to_type === "group") {
    // A group we joined after hello: its name and size come with the next hello.
    room = newRoom(key, { type: "group", id: message.to_id, name: `群聊${message.to_id}`, members: null });
    app.rooms.set(key, room);
  } else if (!room) {
    room = addContact(message.from.id === app.me.id ? { id: message.to_id } : message.from);
  }
  if (room.messages.some((m) => m.id === message.id)) return;
  room.messages.push(message);
  if (app.current === key) {
    appendToStream(message);
  } else if (message.from.id !== app.me.id && message.kind !== "notice") {
    room.unread += 1;
  }
  renderChats();
}

function openRoom(key) {
  const room = app.rooms.get(key);
  if (!room) return;
  app.current = key;
  room.unread = 0;
  $("room-title").textContent = roomTitle(room);
  show("room");
  renderStream();
  if (!room.loaded) loadLatest(room, false).then(() => app.current === key && renderStream());
}

// ---- The message stream ----

function renderStream() {
  const room = app.rooms.get(app.current);
  const stream = clear($("stream"));
  $("more-btn").hidden = !room.hasMore;
  let previous = null;
  for (const message of room.messages) {
    stream.append(...messageItems(message, previous));
    previous = message;
  }
  scrollToEnd();
}

function appendToStream(message) {
  const room = app.rooms.get(app.current);
  const previous = room.messages[room.messages.length - 2] || null;
  $("stream").append(...messageItems(message, previous));
  scrollToEnd();
}

function scrollToEnd() {
  const stream = $("stream");
  stream.scrollTop = stream.scrollHeight;
}

function messageItems(message, previous) {
  const items = [];
  if (!previous || message.time - previous.time > TIME_GAP) items.push(h("div.time-line", shortTime(message.time)));
  // WeChat's gray lines (李四领取了你的红包, 你的红包已被领完): the server keeps each for its user.
  if (message.kind === "notice") return [...items, noteItem(message)];
  const mine = message.from.id === app.me.id;
  let content;
  if (message.kind === "packet" && message.packet) {
    content = packetBubble(message.packet.rp_id);
    const known = app.packets.get(message.packet.rp_id);
    if (known.mine === undefined) ensureKnown(message.packet.rp_id);
  } else {
    content = h("div.bubble", message.text);
  }
  items.push(h(`div.msg${mine ? ".mine" : ""}`, { dataset: { id: message.id } },
    avatar(message.from),
    h("div.msg-body",
      !mine && message.to_type === "group" && h("div.msg-name", message.from.name),
      content)));
  return items;
}

function noteItem(notice) {
  // As WeChat: the 红包 of 李四领取了你的红包 in the packet's orange.
  const text = notice.notice.code === "grabbed" && notice.text.endsWith("红包")
    ? [notice.text.slice(0, -2), h("span.note-rp", "红包")] : [notice.text];
  return h("div.note", { dataset: { id: notice.id, code: notice.notice.code } }, h("span.note-icon"), ...text);
}

async function sendText(e) {
  e.preventDefault();
  const input = $("chat-input");
  const text = input.value.trim();
  if (!text) return;
  const room = app.rooms.get(app.current);
  const reply = await ask("chat.send", { to_type: room.type, to_id: room.id, text });
  if (!reply.ok) return toast(refusal(reply));
  input.value = "";
  receive(reply.message, false);
}

boot();
