// Money and the packet rules on the client side: integer fen, never a float.
//
// The limits mirror rtserver/limits.py (Limits' defaults) so the form can say what is wrong
// while the user types; the server checks again and its answer is the one that counts.

import { PacketType } from "./protocol.js";

export const LIMITS = {
  maxShares: 100,
  minShare: 1,          // fen: 0.01
  maxShare: 20000,      // fen: 200.00
  maxPersonal: 20000,   // fen: 200.00
  maxPayment: 2000000,  // fen: 20000.00
  maxIntro: 25,         // characters (code points, as Python's len counts them)
  defaultIntro: "恭喜发财，大吉大利",
};

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
 * `form`: {type, number (text), amount (text), intro, groupSize}. Returns {total, error, ready}:
 * `total` in fen (null while unknown), `error` the sentence to show (null when none), `ready`
 * true when the packet can be sent. Empty fields are not errors yet, only not ready.
 */
export function checkPacket(form) {
  const { type, groupSize } = form;
  const numberText = String(form.number ?? "").trim();
  const amountText = String(form.amount ?? "").trim();
  let number = 1;
  let error = null;
  if (type !== PacketType.PERSONAL) {
    if (numberText === "") return { total: null, error: null, ready: false };
    if (!/^[0-9]{1,4}$/.test(numberText)) return bad("红包个数须为整数");
    number = Number(numberText);
    if (number < 1) return bad("至少需要发1个红包");
    if (number > LIMITS.maxShares) return bad(`一次最多可发${LIMITS.maxShares}个红包`);
    if (groupSize && number > groupSize) return bad(`红包个数不可超过当前群聊人数（${groupSize}人）`);
  }
  if (introLength(form.intro || "") > LIMITS.maxIntro) {
    error = `祝福语不能超过${LIMITS.maxIntro}个字`;
  }
  if (amountText === "") return { total: null, error, ready: false };
  const fen = parseFen(amountText);
  if (fen === null) return bad("金额格式不正确，最多两位小数");
  if (fen <= 0) return bad("金额须大于0", 0);
  let total;
  if (type === PacketType.PERSONAL) {
    total = fen;
    if (fen > LIMITS.maxPersonal) return bad(`单个红包金额不可超过${formatFen(LIMITS.maxPersonal)}元`, total);
  } else if (type === PacketType.GROUP_NORMAL) {
    total = fen * number;
    if (fen > LIMITS.maxShare) return bad(`单个红包金额不可超过${formatFen(LIMITS.maxShare)}元`, total);
  } else {
    total = fen;
    if (total < number * LIMITS.minShare) return bad(`单个红包金额不可低于${formatFen(LIMITS.minShare)}元`, total);
    if (total > number * LIMITS.maxShare) return bad(`单个红包金额不可超过${formatFen(LIMITS.maxShare)}元`, total);
  }
  if (total > LIMITS.maxPayment) return bad(`单次支付总额不可超过${formatFen(LIMITS.maxPayment)}元`, total);
  return { total, error, ready: error === null };

  function bad(sentence, total = null) {
    return { total, error: sentence, ready: false };
  }
}
