// Money and the packet rules on the client side: integer fen, never a float.
//
// The limits are the server's own, as `hello` sends them (`limits`, set by its flags), so the
// form can say what is wrong while the user types; the server checks again and its answer is
// the one that counts.

import { PacketType } from "./protocol.js";

export const DEFAULT_INTRO = "恭喜发财，大吉大利";  // what the server writes when no intro is given
export const MAX_PASSWORD = 20;  // characters of a 口令 (docs/protocol.md)

/** The limits of `hello.limits` ({max_shares, min_share: "0.01", …}), amounts in fen. */
export function limitsOf(wire) {
  return {
    maxShares: wire.max_shares,
    minShare: parseFen(wire.min_share),
    maxShare: parseFen(wire.max_share),
    maxPersonal: parseFen(wire.max_personal),
    maxPayment: parseFen(wire.max_payment),
    maxIntro: wire.intro_max,  // characters (code points, as Python's len counts them)
  };
}

// What a person may type: no sign, no exponent, at most two places ("5", "5.2"). The wire
// takes only formatFen's exactly two places ("5.00", "5.20"), as rtserver/money.py does.
const AMOUNT = /^(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,2}))?$/;

/** Fen of a typed decimal such as "12.3", or null when it is not a plain decimal of ≤ 2 places. */
export function parseFen(text) {
  const m = AMOUNT.exec(text);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || "").padEnd(2, "0"));
}

/** "12.30" for 1230 fen: the wire's two-place form. */
export function formatFen(fen) {
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

export function introLength(text) {
  return [...text.trim()].length;
}

/**
 * Check a send-packet form as the server would.
 *
 * `form`: {type, number (text), amount (text), intro, groupSize, toUser (exclusive packets),
 * password (口令, group packets)}; `limits` from limitsOf. Returns {total, error, ready}:
 * `total` in fen (null while unknown), `error` the sentence to show (null when none), `ready`
 * true when the packet can be sent. Empty fields are not errors yet, only not ready.
 */
export function checkPacket(form, limits) {
  const { type, groupSize } = form;
  const oneShare = type === PacketType.PERSONAL || type === PacketType.EXCLUSIVE;
  const numberText = String(form.number ?? "").trim();
  const amountText = String(form.amount ?? "").trim();
  let number = 1;
  let error = null;
  if (!oneShare) {
    if (numberText === "") return { total: null, error: null, ready: false };
    if (!/^[0-9]{1,4}$/.test(numberText)) return bad("红包个数须为整数");
    number = Number(numberText);
    if (number < 1) return bad("至少需要发1个红包");
    if (number > limits.maxShares) return bad(`一次最多可发${limits.maxShares}个红包`);
    if (groupSize && number > groupSize) return bad(`红包个数不可超过当前群聊人数（${groupSize}人）`);
  }
  if (introLength(form.intro || "") > limits.maxIntro) {
    error = `祝福语不能超过${limits.maxIntro}个字`;
  }
  if ([...(form.password || "")].length > MAX_PASSWORD) error = `口令不能超过${MAX_PASSWORD}个字`;
  if (amountText === "") return { total: null, error, ready: false };
  const fen = parseFen(amountText);
  if (fen === null) return bad("金额格式不正确，最多两位小数");
  if (fen <= 0) return bad("金额须大于0", 0);
  let total;
  if (oneShare) {
    total = fen;
    if (fen > limits.maxPersonal) return bad(`单个红包金额不可超过${formatFen(limits.maxPersonal)}元`, total);
  } else if (type === PacketType.GROUP_NORMAL) {
    total = fen * number;
    if (fen > limits.maxShare) return bad(`单个红包金额不可超过${formatFen(limits.maxShare)}元`, total);
  } else {
    total = fen;
    if (total < number * limits.minShare) return bad(`单个红包金额不可低于${formatFen(limits.minShare)}元`, total);
    if (total > number * limits.maxShare) return bad(`单个红包金额不可超过${formatFen(limits.maxShare)}元`, total);
  }
  if (total > limits.maxPayment) return bad(`单次支付总额不可超过${formatFen(limits.maxPayment)}元`, total);
  if (type === PacketType.EXCLUSIVE && !form.toUser) return { total, error: error || "请选择领取人", ready: false };
  return { total, error, ready: error === null };

  function bad(sentence, total = null) {
    return { total, error: sentence, ready: false };
  }
}
