// 发红包: WeChat's forms (拼手气 / 普通 / 专属 in a group, one amount to a person), checked while
// typing with the limits the server sent in `hello`, then paid from the balance or through the
// sandbox provider. A group's 拼手气 and 普通 packets may carry a 口令 (QQ's 口令红包).

import { clear, h } from "./dom.js";
import { checkPacket, DEFAULT_INTRO, formatFen, MAX_PASSWORD, parseFen } from "./money.js";
import { watchSettlement } from "./packets.js";
import { payFromBalance } from "./pin.js";
import { PacketType, PayStatus } from "./protocol.js";
import { app, ask, newClientKey, refusal, show } from "./state.js";

let form = null;  // {room, type, clientKey, members (专属红包: the group's others, once known)}

export function openSendForm(room) {
  form = { room, type: room.type === "group" ? PacketType.GROUP_LUCKY : PacketType.PERSONAL, clientKey: newClientKey() };
  render();
  show("send");
}

function render() {
  const page = document.getElementById("send");
  const body = clear(page.querySelector(".send-body"));
  const { room, type } = form;
  const group = room.type === "group";
  const amountLabel = type === PacketType.GROUP_LUCKY ? "总金额" : type === PacketType.GROUP_NORMAL ? "单个金额" : "金额";
  const exclusive = type === PacketType.EXCLUSIVE;

  const rows = [h("div.form-error#send-error", { hidden: true })];
  if (exclusive) {
    rows.push(h("div.form-row",
      h("label", { for: "rp-to" }, "发给谁"),
      h("select#rp-to",
        h("option", { value: "" }, form.members ? "选择群成员" : "正在读取群成员…"),
        (form.members || []).map((m) => h("option", { value: String(m.id) }, m.name)))));
  } else if (group) {
    rows.push(h("div.form-row",
      h("label", { for: "rp-number" }, "红包个数"),
      h("input#rp-number", { inputmode: "numeric", placeholder: "填写个数", autocomplete: "off" }),
      h("span.unit", "个")));
    if (room.members) rows.push(h("div.form-hint", `本群共${room.members}人`));
  }
  rows.push(h("div.form-row",
    h("label", { for: "rp-amount" }, type === PacketType.GROUP_LUCKY && h("span.pin", "拼"), amountLabel),
    h("input#rp-amount", { inputmode: "decimal", placeholder: "¥0.00", autocomplete: "off" }),
    h("span.unit", "元")));
  if (group && !exclusive) {
    const other = type === PacketType.GROUP_LUCKY ? PacketType.GROUP_NORMAL : PacketType.GROUP_LUCKY;
    rows.push(h("div.form-hint.switch",
      type === PacketType.GROUP_LUCKY ? "当前为拼手气红包，" : "当前为普通红包，",
      h("a#rp-switch", { href: "#", on: { click: (e) => { e.preventDefault(); switchType(other); } } },
        type === PacketType.GROUP_LUCKY ? "改为普通红包" : "改为拼手气红包")));
  }
  if (group) {
    rows.push(h("div.form-hint.switch",
      h("a#rp-exclusive", { href: "#", on: { click: (e) => { e.preventDefault(); switchType(exclusive ? PacketType.GROUP_LUCKY : PacketType.EXCLUSIVE); } } },
        exclusive ? "改为群红包" : "发专属红包：只有你选的人能领")));
  }
  rows.push(h("div.form-row.intro-row",
    h("textarea#rp-intro", { rows: 2, placeholder: DEFAULT_INTRO, maxlength: 60 })));
  if (group && !exclusive) {
    rows.push(h("div.form-row",
      h("label", { for: "rp-password" }, "口令"),
      h("input#rp-password", { placeholder: "选填：领取时需说出口令", autocomplete: "off", maxlength: MAX_PASSWORD })));
  }
  rows.push(h("div.form-row",
    h("label", { for: "rp-pay" }, "支付方式"),
    h("select#rp-pay",
      h("option", { value: "balance" }, `零钱（余额¥${app.balance}）`),
      h("option", { value: "sandbox" }, "沙箱支付（模拟第三方）"))));
  rows.push(h("div.send-total", h("span.yen", "¥"), h("span#rp-total", "0.00")));
  rows.push(h("button#rp-send.btn-red", { disabled: true, on: { click: send } }, "塞钱进红包"));
  rows.push(h("p.send-foot", "未领取的红包，将于24小时后发起退款"));
  body.append(...rows);
  for (const id of ["rp-number", "rp-amount", "rp-intro", "rp-password", "rp-to"]) {
    const el = document.getElementById(id);
    if (el) el.addEventListener(id === "rp-to" ? "change" : "input", onInput);
  }
}

function switchType(type) {
  const number = value("rp-number");
  form.type = type;
  render();
  const numberInput = document.getElementById("rp-number");
  if (numberInput) numberInput.value = number;
  if (type === PacketType.EXCLUSIVE && !form.members) loadMembers(form);
}

/** The picker's people: the group's members but me, from group.members. */
async function loadMembers(shown) {
  const reply = await ask("group.members", { group_id: shown.room.id });
  if (form !== shown) return;  // the form was closed or opened again meanwhile
  if (!reply.ok) return showError(refusal(reply));
  form.members = reply.members.filter((m) => m.id !== app.me.id);
  if (form.type !== PacketType.EXCLUSIVE) return;
  const typed = ["rp-amount", "rp-intro"].map((id) => [id, value(id)]);
  render();
  for (const [id, text] of typed) document.getElementById(id).value = text;
}

function value(id) {
  const el = document.getElementById(id);
  return el ? el.value : "";
}

function current() {
  return checkPacket({ type: form.type, number: value("rp-number"), amount: value("rp-amount"),
    intro: value("rp-intro"), groupSize: form.room.members, toUser: value("rp-to"),
    password: value("rp-password") }, app.limits);
}

function onInput() {
  // Changed fields make a different packet: a new idempotency key for it.
  form.clientKey = newClientKey();
  const check = current();
  showError(check.error);
  document.getElementById("rp-total").textContent = check.total === null ? "0.00" : formatFen(check.total);
  document.getElementById("rp-send").disabled = !check.ready;
}

function showError(text) {
  const el = document.getElementById("send-error");
  el.textContent = text || "";
  el.hidden = !text;
}

async function send() {
  const check = current();
  if (!check.ready) return;
  const button = document.getElementById("rp-send");
  button.disabled = true;
  const payType = value("rp-pay");
  const intro = value("rp-intro").trim();
  // The amount field as the wire wants it: "5" → "5.00" (a lucky total, or each normal share).
  const amount = formatFen(parseFen(value("rp-amount").trim()));
  const args = { type: form.type, for_id: form.room.id, amount, pay_type: payType,
    client_key: form.clientKey };
  if (form.type === PacketType.EXCLUSIVE) args.to_user = Number(value("rp-to"));
  else if (form.type !== PacketType.PERSONAL) args.number = Number(value("rp-number"));
  if (intro) args.intro = intro;
  const password = value("rp-password").trim();
  if (password) args.password = password;
  try {
    const created = await ask("packet.create", args);
    if (!created.ok) return showError(refusal(created));
    const paid = payType === "sandbox" ? await paySandbox(created) : await payFromBalance(created);
    if (paid.code === "cancelled") return;  // the pad closed: the form stays, the packet unpaid
    if (!paid.ok) return showError(refusal(paid));
    show("room");
  } finally {
    button.disabled = !current().ready;
  }
}

/**
 * Pay through the sandbox provider as a phone app would: the payment app answers at once (the
 * synchronous result, which we pass on with packet.sync_paid) and notifies the server later.
 */
async function paySandbox(created) {
  let result;
  try {
    const response = await fetch("/sandbox/pay", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ out_trade_no: created.order.out_trade_no, status: "SUCCESS" }),
    });
    result = await response.json();
    if (!response.ok) return { ok: false, code: result.code, message: result.message };
  } catch (err) {
    return { ok: false, code: "unavailable", message: String(err) };
  }
  const synced = await ask("packet.sync_paid", { rp_id: created.rp_id, result });
  if (synced.ok && synced.pay_status === PayStatus.AWAITING_SETTLEMENT) watchSettlement(created.rp_id);
  return synced;
}
