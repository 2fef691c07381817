// What the page knows: who is signed in, the rooms and their messages, the packets seen, and
// the page on screen. One object, shared by the modules; the server is the truth, this a copy.

import { RequestError } from "@rtserver/client";

import { beijingTime } from "./dom.js";
import { PacketType } from "./protocol.js";

export const app = {
  conn: null,
  me: null,            // {id, name}
  balance: "0.00",
  balanceLedgerId: 0, // the ledger row that made `balance`: see setBalance
  groups: [],          // from hello: [{id, name, members}]
  rooms: new Map(),    // "g:ID" | "u:ID" → room (see newRoom)
  packets: new Map(),  // rp_id → {summary, mine (undefined: not known yet), best}
  names: new Map(),    // user id → name, learned from messages, grabs and events
  current: null,       // key of the open room
  page: "signin",
  listeners: new Map(),
  clockSkew: 0,        // server clock minus ours, in seconds, from hello's server_time
  hasPin: false,       // a 支付密码 is set: from hello, then from what the server answers
  limits: null,        // the server's packet limits, from hello (money.js limitsOf)
};

/** The server's idea of now (Unix seconds): expiry is the server's clock, not this machine's. */
export function serverNow() {
  return Date.now() / 1000 + app.clockSkew;
}

export function newRoom(key, props) {
  return { key, messages: [], unread: 0, loaded: false, hasMore: false, ...props };
}

export function groupKey(groupId) {
  return `g:${groupId}`;
}

export function userKey(userId) {
  return `u:${userId}`;
}

/** The room a message belongs to, as this user sees it. */
export function roomOfMessage(message) {
  if (message.to_type === "group") return groupKey(message.to_id);
  return userKey(message.from.id === app.me.id ? message.to_id : message.from.id);
}

/** The room a packet lives in, as this user sees it. */
export function roomOfPacket(summary) {
  if (summary.type !== PacketType.PERSONAL) return groupKey(summary.for_id);
  return userKey(summary.sender.id === app.me.id ? summary.for_id : summary.sender.id);
}

export function learnName(person) {
  if (person && person.id !== undefined && person.name) app.names.set(person.id, person.name);
}

export function nameOf(userId) {
  return app.names.get(userId) || `用户${userId}`;
}

/** Remember what a packet summary (from a message, a list, a detail) says. */
export function knowPacket(summary, mine) {
  const known = app.packets.get(summary.rp_id) || { mine: undefined, best: null };
  known.summary = { ...(known.summary || {}), ...summary };
  if (mine !== undefined) known.mine = mine;
  app.packets.set(summary.rp_id, known);
  learnName(summary.sender);
  return known;
}

/** Tiny event bus between modules: "balance", "packet" (rp_id), "rooms". */
export function onChange(name, fn) {
  if (!app.listeners.has(name)) app.listeners.set(name, new Set());
  app.listeners.get(name).add(fn);
}

export function changed(name, value) {
  for (const fn of app.listeners.get(name) || []) fn(value);
}

const PAGES = ["signin", "chats", "room", "send", "detail", "mybox", "ledger"];

/** Show one page; the others hide. */
export function show(page) {
  app.page = page;
  for (const id of PAGES) document.getElementById(id).hidden = id !== page;
  document.body.dataset.page = page;
  changed("page", page);
}

/**
 * Send a request and get its answer as a frame, a refusal as well (`ok: false` and its `code`,
 * what `refusal` reads): the screens show either without a path of their own for each.
 */
export async function ask(op, args = {}) {
  try {
    return await app.conn.request(op, args);
  } catch (err) {
    if (!(err instanceof RequestError)) throw err;
    return err.reply ?? { ok: false, code: err.code };
  }
}

/** A key that makes a retried packet.create return the packet made the first time. */
export function newClientKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// The wire's failure codes in the words a user reads; the server's own message follows them.
const CODE_WORDS = {
  insufficient_balance: "零钱余额不足",
  invalid_amount: "金额不正确",
  invalid_number: "红包个数不正确",
  bad_request: "请求有误",
  forbidden: "没有权限",
  not_found: "找不到",
  already_paid: "该红包已支付",
  not_paid: "该红包尚未支付",
  rate_limited: "操作太频繁，请稍后再试",
  unavailable: "网络或服务暂不可用，请稍后再试",
  timeout: "请求超时，请稍后再试",       // the client's own: no answer in time
  disconnected: "网络已断开，请稍后再试", // the client's own: not connected, or the socket dropped
  unauthorized: "登录已失效",
  internal: "服务器出错了",
  pin_required: "请输入支付密码",
  frozen: "你的账户已被冻结",
  limit_exceeded: "已超过今日发红包的限额",
};

/** "零钱余额不足（balance is less than 10.00）": what the server refused, and why. */
export function refusal(reply) {
  if (reply.code === "bad_pin") return `支付密码错误，剩余次数：${reply.tries_left}`;
  if (reply.code === "pin_locked") return `支付密码已锁定，请于北京时间${beijingTime(reply.until)}后重试`;
  const words = CODE_WORDS[reply.code] || "操作失败";
  return reply.message && reply.message !== words ? `${words}（${reply.message}）` : words;
}
