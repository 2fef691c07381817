// 支付密码: WeChat's pad (six boxes and a digit keypad; the sixth digit sends it), paying from
// the balance with it, and setting or changing it from the 我 card of the chat list.

import { clear, h, toast } from "./dom.js";
import { app, ask, refusal } from "./state.js";

const LENGTH = 6;
const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "", "0", "⌫"];
const CANCELLED = { ok: false, code: "cancelled", message: "" };

/** The pad on screen until `close()`: `ask(title)` resolves with six digits, or null if closed. */
class PinPad {
  constructor(...lines) {
    this.overlay = document.getElementById("pinpad");
    this.digits = "";
    this.waiting = null;  // the resolver of the `ask` being typed; null while an answer is awaited
    this.title = h("div.pin-title");
    this.error = h("div.pin-error", { hidden: true });
    this.boxes = Array.from({ length: LENGTH }, () => h("span.pin-box"));
    this.onKey = (e) => {
      if (/^[0-9]$/.test(e.key)) this.press(e.key);
      else if (e.key === "Backspace") this.press("⌫");
      else if (e.key === "Escape") this.finish(null);
    };
    const keys = KEYS.map((key) => (key
      ? h("button.pin-key", { type: "button", dataset: { key }, on: { click: () => this.press(key) } }, key)
      : h("span.pin-key.blank")));
    clear(this.overlay).append(h("div.pin-sheet",
      h("button.pin-close", { type: "button", "aria-label": "关闭", on: { click: () => this.finish(null) } }, "×"),
      this.title, ...lines, h("div.pin-boxes", this.boxes), this.error, h("div.pin-keys", keys)));
    document.addEventListener("keydown", this.onKey);
    this.overlay.hidden = false;
  }

  ask(title, error = "") {
    this.title.textContent = title;
    this.error.textContent = error;
    this.error.hidden = !error;
    this.digits = "";
    this.draw();
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  press(key) {
    if (!this.waiting) return;
    this.digits = key === "⌫" ? this.digits.slice(0, -1) : (this.digits + key).slice(0, LENGTH);
    this.draw();
    if (this.digits.length === LENGTH) this.finish(this.digits);
  }

  finish(pin) {
    const resolve = this.waiting;
    this.waiting = null;
    if (resolve) resolve(pin);
  }

  draw() {
    this.boxes.forEach((box, i) => box.classList.toggle("filled", i < this.digits.length));
  }

  close() {
    this.finish(null);
    document.removeEventListener("keydown", this.onKey);
    this.overlay.hidden = true;
  }
}

/**
 * Pay a packet from the balance: with the pad once the user has a PIN (after setting one
 * first where the server requires it). Resolves with the server's reply, or a `cancelled` one.
 */
export async function payFromBalance(created) {
  const pay = (pin) => ask("packet.pay", pin ? { rp_id: created.rp_id, pin } : { rp_id: created.rp_id });
  const reply = app.hasPin ? { code: "pin_required", has_pin: true } : await pay(null);
  if (reply.code !== "pin_required") return reply;
  const pad = new PinPad(h("div.pin-for", "微信红包"), h("div.pin-amount", `¥${created.total}`));
  try {
    if (!reply.has_pin) {
      const pin = await choosePin(pad, "请先设置支付密码");
      if (pin === null) return CANCELLED;
      const set = await ask("wallet.set_pin", { pin });
      if (!set.ok) return set;
      app.hasPin = true;
      return await pay(pin);
    }
    app.hasPin = true;  // it may have been set on another device
    for (let error = ""; ;) {
      const pin = await pad.ask("请输入支付密码", error);
      if (pin === null) return CANCELLED;
      const paid = await pay(pin);
      if (paid.code !== "bad_pin") return paid;
      error = refusal(paid);
    }
  } finally {
    pad.close();
  }
}

/** 设置/修改支付密码, from the 我 card. */
export async function openPinSettings() {
  const pad = new PinPad();
  try {
    for (let error = ""; ;) {
      const oldPin = app.hasPin ? await pad.ask("请输入原支付密码，以验证身份", error) : undefined;
      if (oldPin === null) return;
      const pin = await choosePin(pad, app.hasPin ? "请设置新的支付密码" : "设置支付密码");
      if (pin === null) return;
      const reply = await ask("wallet.set_pin", oldPin ? { pin, old_pin: oldPin } : { pin });
      if (reply.ok) {
        toast(app.hasPin ? "支付密码已修改" : "支付密码设置成功");
        app.hasPin = true;
        return;
      }
      if (reply.code === "pin_required") {  // set on another device meanwhile
        app.hasPin = true;
        error = "已设置过支付密码，请先验证原支付密码";
      } else if (reply.code === "bad_pin") {
        error = refusal(reply);
      } else {
        return toast(refusal(reply));
      }
    }
  } finally {
    pad.close();
  }
}

/** A new PIN typed twice alike; null if the pad was closed. */
async function choosePin(pad, title) {
  for (let error = ""; ;) {
    const pin = await pad.ask(title, error);
    if (pin === null) return null;
    const again = await pad.ask("请再次填写以确认");
    if (again === null) return null;
    if (again === pin) return pin;
    error = "两次填写的密码不一致，请重新设置";
  }
}
