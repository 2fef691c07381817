// 我的红包: the received and sent boxes (packet.list), a year at a time, with the year's totals.

import { avatar, clear, h, shortTime } from "./dom.js";
import { showDetail } from "./packets.js";
import { PacketType, PayStatus } from "./protocol.js";
import { app, ask, knowPacket, refusal, show } from "./state.js";

const YEARS_SHOWN = 5;
const PAGE = 20;
let box = "received";
let year = new Date().getFullYear();

export function openMyBox() {
  show("mybox");
  load();
}

function setBox(name) {
  box = name;
  load();
}

async function load() {
  const page = document.getElementById("mybox");
  const body = clear(page.querySelector(".mybox-body"));
  const reply = await ask("packet.list", { box, year, limit: PAGE });
  if (!reply.ok) {
    body.append(h("p.detail-error", refusal(reply)));
    return;
  }
  body.append(header(reply));
  const list = h("ul.box-list");
  body.append(list);
  appendItems(list, reply);
}

function header(reply) {
  const received = box === "received";
  const years = [];
  for (let y = new Date().getFullYear(); y > new Date().getFullYear() - YEARS_SHOWN; y--) {
    years.push(h("option", { value: y, selected: y === year }, `${y}年`));
  }
  return h("div.box-head",
    h("div.box-tabs",
      h(`button.box-tab${received ? ".active" : ""}#box-received`, { on: { click: () => setBox("received") } }, "收到的红包"),
      h(`button.box-tab${received ? "" : ".active"}#box-sent`, { on: { click: () => setBox("sent") } }, "发出的红包"),
      h("select#box-year", { on: { change: (e) => { year = Number(e.target.value); load(); } } }, years)),
    avatar(app.me, "large"),
    h("div.box-who", `${app.me.name}共${received ? "收到" : "发出"}`),
    h("div.box-total#box-total", h("span", reply.total), h("span.unit", "元")),
    received
      ? h("div.box-counts",
        h("div", h("b#box-count", reply.count), h("span", "收到红包")),
        h("div", h("b#box-best", reply.best_luck), h("span", "手气最佳")))
      : h("div.box-counts", h("div", "发出红包", h("b#box-count", reply.count), "个")));
}

function appendItems(list, reply) {
  for (const item of reply.items) {
    knowPacket(item);
    list.append(box === "received" ? receivedItem(item) : sentItem(item));
  }
  if (reply.next) {
    const more = h("li.box-more", h("button", {
      on: {
        click: async () => {
          more.remove();
          const page = await ask("packet.list", { box, year, limit: PAGE, before: reply.next });
          if (page.ok) appendItems(list, page);
        },
      },
    }, "加载更多"));
    list.append(more);
  }
}

function receivedItem(item) {
  return h("li.box-item", { dataset: { rp: item.rp_id }, on: { click: () => showDetail(item.rp_id) } },
    h("div.box-left",
      h("div.box-name", item.sender.name, item.type === PacketType.GROUP_LUCKY && h("span.pin", "拼")),
      h("div.box-time", shortTime(item.time))),
    h("div.box-right",
      h("div.box-money", `${item.money}元`),
      item.is_good && h("div.best", h("span.crown", "♛"), "手气最佳")));
}

const SENT_STATUS = { active: "未领完", finished: "已领完", expired: "已过期", voided: "已失效", unpaid: "未支付" };

function sentItem(item) {
  const kind = item.type === PacketType.GROUP_LUCKY ? "拼手气红包" : "普通红包";
  const status = item.pay_status === PayStatus.AWAITING_SETTLEMENT && item.status === "active" ? "等待到账" : SENT_STATUS[item.status];
  return h("li.box-item", { dataset: { rp: item.rp_id }, on: { click: () => showDetail(item.rp_id) } },
    h("div.box-left",
      h("div.box-name", kind),
      h("div.box-time", shortTime(item.pay_time || 0))),
    h("div.box-right",
      h("div.box-money", `${item.total}元`),
      h("div.box-status", `${status} · ${item.number}个`)));
}
