// Red packets on screen: the bubble in the stream, the envelope with its 開 button, and the
// detail page (看看大家的手气), kept current by the packet events.

import { avatar, clear, clockTime, duration, h, toast } from "./dom.js";
import { PacketType, PayStatus } from "./protocol.js";
import { app, ask, changed, knowPacket, learnName, refusal, serverNow, show } from "./state.js";


// ---- What a packet looks like to this user ----

/**
 * The packet's status now: an active packet whose time has passed is expired even though no
 * event said so (the server decides expiry by the clock, and only the refund job announces it).
 */
function statusNow(summary) {
  if (summary.status === "active" && summary.expires_at && serverNow() >= summary.expires_at) {
    return "expired";
  }
  return summary.status;
}

/** The bubble's small line and whether it looks opened (faded), as WeChat draws it. */
export function bubbleState(known) {
  const s = known.summary;
  const status = statusNow(s);
  if (known.mine) return { text: "已领取", done: true };
  if (status === "finished") return { text: forOne(s) ? "已被领取" : "已被领完", done: true };
  if (status === "expired") return { text: "已过期", done: true };
  if (status === "voided") return { text: "已失效", done: true };
  if (s.pay_status === PayStatus.AWAITING_SETTLEMENT) return { text: "等待到账", done: false };
  if (s.to_user) return { text: s.to_user.id === app.me.id ? "给你的专属红包" : `${s.to_user.name}的专属红包`, done: false };
  if (s.password) return { text: `口令：${s.password}`, done: false };
  return { text: s.type === PacketType.PERSONAL && s.sender.id !== app.me.id ? "领取红包" : "", done: false };
}

/** A packet for one person: personal, or a group's 专属红包. */
function forOne(s) {
  return s.type === PacketType.PERSONAL || s.type === PacketType.EXCLUSIVE;
}

export { redrawBubbles };

export function packetBubble(rpId) {
  const known = app.packets.get(rpId);
  const state = bubbleState(known);
  return h(`div.rp-bubble${state.done ? ".done" : ""}`,
    { dataset: { rp: rpId }, role: "button", on: { click: () => tapPacket(rpId) } },
    h("div.rp-main",
      h("div.rp-icon"),
      h("div.rp-words",
        h("div.rp-intro", known.summary.intro),
        state.text && h("div.rp-state", state.text))),
    h("div.rp-foot", "微信红包"));
}

/** Redraw every bubble of a packet (it may be on screen once per open room). */
function redrawBubbles(rpId) {
  for (const el of document.querySelectorAll(`.rp-bubble[data-rp="${rpId}"]`)) {
    el.replaceWith(packetBubble(rpId));
  }
}

// A packet expires by the clock, with no event: now and then redraw the bubbles still open.
const EXPIRY_CHECK_MS = 10000;
setInterval(() => {
  for (const el of document.querySelectorAll(".rp-bubble:not(.done)")) {
    const known = app.packets.get(Number(el.dataset.rp));
    if (known && statusNow(known.summary) !== known.summary.status) el.replaceWith(packetBubble(known.summary.rp_id));
  }
}, EXPIRY_CHECK_MS);

// ---- Learning what we hold (packet.detail), one request at a time ----

const waiting = new Map();
let queue = Promise.resolve();

/**
 * Make sure we know whether this user holds a share of the packet (the summary in a message
 * does not say). Queued one after another, so a long history does not burst the rate limit.
 */
export function ensureKnown(rpId) {
  const known = app.packets.get(rpId);
  if (known && known.mine !== undefined) return Promise.resolve(known);
  if (!waiting.has(rpId)) {
    const done = queue.then(() => fetchDetail(rpId)).finally(() => waiting.delete(rpId));
    queue = done.catch(() => null);
    waiting.set(rpId, done);
  }
  return waiting.get(rpId);
}

async function fetchDetail(rpId) {
  const reply = await ask("packet.detail", { rp_id: rpId });
  if (!reply.ok) return app.packets.get(rpId);
  learnDetail(reply);
  return app.packets.get(rpId);
}

function learnDetail(detail) {
  for (const grab of detail.grabs) learnName(grab.user);
  const known = knowPacket(detail.packet, detail.mine);
  const best = detail.grabs.find((g) => g.is_good);
  if (best) known.best = { user: best.user, money: best.money };
  redrawBubbles(detail.packet.rp_id);
  return known;
}

// ---- Tapping a bubble ----

export async function tapPacket(rpId) {
  const known = await ensureKnown(rpId);
  const s = known.summary;
  if (known.mine) return showDetail(rpId);
  // A packet for one person: its sender sees who took it (等待对方领取 until then).
  if (forOne(s) && s.sender.id === app.me.id) return showDetail(rpId);
  const status = statusNow(s);
  redrawBubbles(rpId);
  if (s.to_user && s.to_user.id !== app.me.id) return openEnvelope(rpId, "not_mine");
  if (status === "finished") return openEnvelope(rpId, "too_slow");
  if (status === "expired" || status === "voided") return openEnvelope(rpId, status);
  return openEnvelope(rpId, "closed");
}

// ---- The envelope ----

const ENDINGS = {
  too_slow: "手慢了，红包派完了",
  expired: "该红包已超过24小时。如已领取，可在“我的红包”中查看",
  voided: "该红包未支付成功，已失效",
};

function openEnvelope(rpId, how) {
  const known = app.packets.get(rpId);
  const s = known.summary;
  const overlay = document.getElementById("envelope");
  // The sender may open their own group packet too, and also look at who took what.
  const link = how === "not_mine" ? "查看领取详情 ›" : how !== "closed" ? "看看大家的手气 ›"
    : s.sender.id === app.me.id ? "查看领取详情 ›" : null;
  const words = how === "closed" ? s.intro : how === "not_mine" ? `仅${s.to_user.name}可领取` : ENDINGS[how];
  // A 口令红包 opens to its phrase: the envelope shows it, and its button says it for you.
  const opener = how !== "closed" ? null : s.password
    ? h("div.env-password",
      h("div.env-phrase", `口令：${s.password}`),
      h("button.say-btn.open-btn", { on: { click: () => grab(rpId, card, s.password) } }, "说口令领红包"))
    : h("button.open-btn", { "aria-label": "開", on: { click: () => grab(rpId, card) } }, "開");
  const card = h("div.env-card",
    h("button.env-close", { "aria-label": "关闭", on: { click: closeEnvelope } }, "×"),
    h("div.env-top",
      h("div.env-sender", avatar(s.sender, "small"),
        h("span", s.to_user ? `${s.sender.name}发给${s.to_user.name}的专属红包` : `${s.sender.name}发出的红包`)),
      h(`div.env-words${how === "expired" ? ".long" : ""}`, words)),
    opener,
    link && h("a.env-link", { href: "#", on: { click: (e) => { e.preventDefault(); closeEnvelope(); showDetail(rpId); } } },
      link));
  clear(overlay).append(card);
  overlay.hidden = false;
}

function closeEnvelope() {
  document.getElementById("envelope").hidden = true;
}

async function grab(rpId, card, password) {
  const button = card.querySelector(".open-btn");
  button.classList.add("spinning");
  button.disabled = true;
  const reply = await ask("packet.grab", password ? { rp_id: rpId, password } : { rp_id: rpId });
  if (reply.ok && (reply.result === "ok" || reply.result === "already")) {
    knowPacket(app.packets.get(rpId).summary,
      { money: reply.money, into_account: reply.into_account, is_good: false });
    redrawBubbles(rpId);
    closeEnvelope();
    return showDetail(rpId);
  }
  if (reply.ok) {
    // too_slow or expired: the envelope says so, as WeChat's does, with the way to the details.
    const known = app.packets.get(rpId);
    known.mine = null;
    known.summary.status = reply.result === "too_slow" ? "finished" : "expired";
    redrawBubbles(rpId);
    return openEnvelope(rpId, reply.result);
  }
  button.classList.remove("spinning");
  button.disabled = false;
  card.querySelector(".env-words").textContent = refusal(reply);
}

// ---- The detail page ----

let shownRp = null;

export async function showDetail(rpId) {
  shownRp = rpId;
  const page = document.getElementById("detail");
  const body = page.querySelector(".detail-body");
  if (app.page !== "detail") app.detailBack = app.page;
  show("detail");
  const reply = await ask("packet.detail", { rp_id: rpId });
  if (shownRp !== rpId) return;
  if (!reply.ok) {
    clear(body).append(h("p.detail-error", refusal(reply)));
    return;
  }
  learnDetail(reply);
  clear(body).append(...detailView(reply));
}

function detailView({ packet: p, mine, grabs }) {
  const iSent = p.sender.id === app.me.id;
  const parts = [
    h("div.detail-sender", avatar(p.sender, "small"),
      h("span.detail-title", `${p.sender.name}的红包`),
      p.type === PacketType.GROUP_LUCKY && h("span.pin", "拼")),
    h("div.detail-intro", p.intro),
  ];
  if (p.to_user) parts.push(h("div.detail-for", `${p.to_user.name}的专属红包`));
  if (p.password) parts.push(h("div.detail-for", `口令：${p.password}`));
  if (mine) {
    parts.push(h("div.detail-amount", h("span.detail-money", mine.money), h("span.detail-unit", "元")));
    parts.push(h(`div.detail-arrival${mine.into_account ? "" : ".pending"}`,
      mine.into_account ? "已存入零钱，可直接消费" : "到账中：付款确认后存入零钱"));
  }
  if (p.pay_status === PayStatus.AWAITING_SETTLEMENT) {
    parts.push(h("div.detail-awaiting", "等待到账：付款方的支付尚在确认中"));
  }
  parts.push(h("div.detail-summary", summaryLine(p)));
  parts.push(h("ul.grab-list", grabs.map((g) => h("li.grab",
    avatar(g.user),
    h("div.grab-who", h("div.grab-name", g.user.name), h("div.grab-time", clockTime(g.time))),
    h("div.grab-right",
      h("div.grab-money", `${g.money}元`),
      p.pay_status === PayStatus.AWAITING_SETTLEMENT && h("div.grab-pending", "到账中"),
      g.is_good && h("div.best", h("span.crown", "♛"), "手气最佳"))))));
  if (iSent && p.status === "active") parts.push(h("p.detail-foot", "未领取的红包，将于24小时后发起退款"));
  if (p.return_money && p.return_money !== "0.00") {  // the server leaves it out when nothing went back
    const where = p.return_to === "original" ? "已原路退回支付账户" : "已退回零钱";
    parts.push(h("p.detail-foot", `未领取的${p.return_money}元${where}`));
  }
  return parts;
}

/** WeChat's line above the grabs: how much is taken, or how fast it all went. */
export function summaryLine(p) {
  const taken = `已领取${p.grabbed_count}/${p.number}个，共${p.grabbed_total}/${p.total}元`;
  if (forOne(p)) {
    const amount = `红包金额${p.total}元`;
    if (p.status === "finished") return `${amount}，已被领取`;
    if (p.status === "expired") return `${amount}，该红包已过期`;
    if (p.status === "voided") return `${amount}，该红包未支付成功，已失效`;
    if (p.status === "unpaid") return `${amount}，尚未支付`;
    return p.to_user ? `${amount}，等待${p.to_user.name}领取` : `${amount}，等待对方领取`;
  }
  if (p.status === "finished") return `${p.number}个红包共${p.total}元，${duration(p.expend_time)}被抢光`;
  if (p.status === "expired") return `该红包已过期。${taken}`;
  if (p.status === "voided") return `该红包未支付成功，已失效。${taken}`;
  return taken;
}

// ---- Live events ----

function refreshShown(rpId) {
  if (app.page === "detail" && shownRp === rpId) showDetail(rpId);
}

export function listen(conn) {
  conn.on("packet.state", (ev) => {
    const known = app.packets.get(ev.rp_id);
    if (!known) return;
    known.summary.status = ev.status;
    known.summary.grabbed_count = ev.grabbed_count;
    if (ev.best) known.best = ev.best;
    redrawBubbles(ev.rp_id);
    refreshShown(ev.rp_id);
    changed("packet", ev.rp_id);
  });
  conn.on("packet.grabbed", (ev) => {
    learnName(ev.grabber);
    learnName(ev.sender);
    const known = app.packets.get(ev.rp_id);
    if (ev.grabber.id === app.me.id && known) {
      known.mine = { ...(known.mine || {}), money: ev.money,
        into_account: known.mine ? known.mine.into_account : undefined };
      redrawBubbles(ev.rp_id);
    }
    changed("grabbed", ev);
    refreshShown(ev.rp_id);
  });
  conn.on("packet.settled", (ev) => {
    const known = app.packets.get(ev.rp_id);
    if (known) {
      known.summary.pay_status = PayStatus.PAID;
      if (known.mine) known.mine.into_account = true;
      redrawBubbles(ev.rp_id);
    }
    toast(`红包${ev.money}元已到账`);
    refreshShown(ev.rp_id);
  });
  conn.on("packet.refunded", (ev) => {
    // `to` says where the money went: back the way it was paid (原路退回), or to the balance.
    toast(ev.to === "original"
      ? `红包过期未领完，${ev.return_money}元将原路退回支付账户`
      : `红包过期未领完，${ev.return_money}元已退回零钱`);
    refreshShown(ev.rp_id);
  });
  conn.on("packet.voided", (ev) => {
    const known = app.packets.get(ev.rp_id);
    if (known) {
      known.summary.status = "voided";
      redrawBubbles(ev.rp_id);
    }
    toast("红包支付未成功，已失效");
    refreshShown(ev.rp_id);
  });
}

/**
 * Watch a packet that waits for its payment notification (等待到账) until it is settled: the
 * sender hears no event when that happens, so the page asks, now and then, while it waits.
 */
export function watchSettlement(rpId) {
  const timer = setInterval(async () => {
    const known = await fetchDetail(rpId);
    if (!known || known.summary.pay_status !== PayStatus.AWAITING_SETTLEMENT) {
      clearInterval(timer);
      refreshShown(rpId);
    }
  }, 2000);
}

export function closeDetail() {
  shownRp = null;
  show(app.detailBack || "chats");
}

export { closeEnvelope };
