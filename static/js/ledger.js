// 零钱明细: every movement of the wallet (wallet.ledger), newest first, a page at a time as the
// list scrolls to its end (or 更多 is pressed). A row of a packet opens its detail.

import { clear, h, shortTime } from "./dom.js";
import { showDetail } from "./packets.js";
import { app, ask, refusal, show } from "./state.js";

const PAGE = 20;
const NEAR_END = 80; // pixels from the bottom of the list at which the next page is fetched

let shown = 0;       // which opening of the page the rows on screen belong to
let next = null;     // the cursor of the next page; null at the end
let loading = false;

export function openLedger() {
  show("ledger");
  shown += 1;
  next = null;
  loading = false;
  const body = clear(document.querySelector("#ledger .ledger-body"));
  body.append(h("ul.ledger-list#ledger-list"));
  loadPage(shown);
}

async function loadPage(opening, before) {
  loading = true;
  const reply = await ask("wallet.ledger", before ? { limit: PAGE, before } : { limit: PAGE });
  if (opening !== shown) return; // the page was opened again meanwhile
  loading = false;
  const list = document.getElementById("ledger-list");
  document.getElementById("ledger-more")?.remove();
  if (!reply.ok) {
    list.after(h("p.detail-error#ledger-more", refusal(reply)));
    return;
  }
  list.append(...reply.items.map(row));
  next = reply.next;
  if (next) {
    list.after(h("div.box-more#ledger-more",
      h("button", { on: { click: more } }, "更多")));
  } else {
    list.after(h("p.ledger-end#ledger-more", list.childElementCount ? "没有更多了" : "暂无零钱明细"));
  }
}

function row(item) {
  const sign = item.direction === "in" ? "+" : "-";
  const opens = item.rp_id ? { click: () => showDetail(item.rp_id) } : {};
  return h("li.ledger-item", { dataset: { id: item.id, kind: item.kind }, on: opens },
    h("div.ledger-left",
      h("div.ledger-title", item.title),
      h("div.ledger-time", shortTime(item.time))),
    h("div.ledger-right",
      h(`div.ledger-amount.${item.direction}`, `${sign}${item.amount}`),
      h("div.ledger-balance", `余额 ${item.balance}`)));
}

function more() {
  if (next && !loading) loadPage(shown, next);
}

document.querySelector("#ledger .ledger-body").addEventListener("scroll", (e) => {
  const body = e.target;
  if (body.scrollHeight - body.scrollTop - body.clientHeight < NEAR_END) more();
});
