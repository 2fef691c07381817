"""Alipay's open-platform gateway (gateway.do) and cashier, played on 127.0.0.1.

The gateway checks what Alipay checks — the common parameters, our app_id, the timestamp, our
RSA2 signature with our merchant public key, biz_content — and answers with Alipay's codes, as
`{"<method>_response": {...}, "sign": "..."}` signed with Alipay's key over the response
object's text (unsigned where Alipay cannot tell whose app is asking). The cashier is `open`
(the payer confirms the order string in the app: only then does Alipay create the trade) and
`pay`; a payment and each refund send the asynchronous notification Alipay sends to the
order's notify_url.
"""
import base64
import datetime
import json
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field

import tornado.httpclient
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.providers import Providers, new_key, rsa2
from tests.standins import StandIn, StandInHandler, send

CHINA = datetime.timezone(datetime.timedelta(hours=8))
TIME = "%Y-%m-%d %H:%M:%S"
TIMESTAMP_WINDOW = 15 * 60  # seconds a request's timestamp may be from Alipay's clock
PRICE = re.compile(r"(0|[1-9][0-9]{0,8})\.[0-9]{2}")  # Price: yuan, two places
OUT_NO = re.compile(r"[A-Za-z0-9_]{1,64}")  # out_trade_no and out_request_no
METHODS = ("alipay.trade.query", "alipay.trade.close", "alipay.trade.refund",
           "alipay.trade.fastpay.refund.query")
MISSING, INVALID, BUSINESS, BUSY = (("40001", "Missing Required Arguments"),
                                    ("40002", "Invalid Arguments"), ("40004", "Business Failed"),
                                    ("20000", "Service Currently Unavailable"))


class Refused(Exception):
    """An Alipay error answer: code, msg, sub_code, sub_msg (and extra fields it carries)."""

    def __init__(self, code_msg: tuple[str, str], sub_code: str, sub_msg: str, signed=True,
                 **extra):
        super().__init__(f"{sub_code}: {sub_msg}")
        self.node = {"code": code_msg[0], "msg": code_msg[1], "sub_code": sub_code,
                     "sub_msg": sub_msg, **extra}
        self.sub_code, self.signed = sub_code, signed


@dataclass
class AlipayTrade:
    out_trade_no: str
    amount: int  # fen
    subject: str
    notify_url: str
    time_expire: float | None  # epoch
    trade_no: str = field(default_factory=lambda: time.strftime("%Y%m%d") + "2200"
                          + f"{secrets.randbelow(10 ** 16):016d}")  # 28 digits, as Alipay's
    status: str = "WAIT_BUYER_PAY"
    paid_at: str = ""
    refunded: int = 0  # fen gone back to the payer


@dataclass
class AlipayRefund:
    out_request_no: str
    amount: int
    done: bool
    at: str = ""


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def fen(price) -> int:
    if not isinstance(price, str) or not PRICE.fullmatch(price):
        raise ValueError(price)
    whole, cents = price.split(".")
    return int(whole) * 100 + int(cents)


def now_text() -> str:
    return datetime.datetime.now(CHINA).strftime(TIME)


def beijing_epoch(value: str) -> float:
    return datetime.datetime.strptime(value, TIME).replace(tzinfo=CHINA).timestamp()


class AlipayStandIn(StandIn):
    """Alipay for one app: ours. `refund_later` makes refunds be accepted but done only by
    `settle_refunds()` (fund_change N, as when Alipay processes them asynchronously);
    `system_errors` answers that many calls with Alipay's signed 20000 isp.unknow-error;
    `seller_balance` is the fen our Alipay account can refund from; `pretty` lays answers out
    as the examples of Alipay's documentation do, over several indented lines."""

    def __init__(self, providers: Providers, hang: float = 1.0):
        super().__init__([(r"/gateway.do", GatewayHandler)], hang)
        self.providers = providers
        self.app_id = providers.alipay_app_id
        self.merchant_public = providers.merchant_key.public_key()
        self.forged_key = new_key()
        self.trades: dict[str, AlipayTrade] = {}
        self.refunds: dict[tuple[str, str], AlipayRefund] = {}
        # Each notification sent: url, headers, body, and our answer's status (None: unreached).
        self.notifications: list[tuple[str, dict, bytes, int | None]] = []
        self.refund_later = False
        self.system_errors = 0
        self.seller_balance = 10 ** 9
        self.pretty = False

    # The payer, in the Alipay app.

    def open(self, order_string: str) -> AlipayTrade:
        """The payer confirms the order string in Alipay's cashier: Alipay checks it as the
        gateway checks a call and creates the trade (WAIT_BUYER_PAY)."""
        params = dict(urllib.parse.parse_qsl(order_string, keep_blank_values=True))
        # Its timestamp is when we signed it, not when the payer opens it: no window here.
        biz = check_common(self, params, "alipay.trade.app.pay", window=False)
        out_trade_no = biz.get("out_trade_no")
        if not isinstance(out_trade_no, str) or not OUT_NO.fullmatch(out_trade_no):
            raise Refused(BUSINESS, "ACQ.INVALID_PARAMETER", "参数无效")
        try:
            amount = fen(biz.get("total_amount"))
        except ValueError:
            raise Refused(BUSINESS, "ACQ.INVALID_PARAMETER", "total_amount 格式错误") from None
        subject = biz.get("subject")
        if not isinstance(subject, str) or not subject or set(subject) & set("/=&"):
            raise Refused(BUSINESS, "ACQ.INVALID_PARAMETER", "subject 不合法")
        if biz.get("product_code", "QUICK_MSECURITY_PAY") != "QUICK_MSECURITY_PAY":
            raise Refused(BUSINESS, "ACQ.PRODUCT_UNSIGN", "产品未签约")
        time_expire = None
        if "time_expire" in biz:
            try:
                time_expire = beijing_epoch(biz["time_expire"])
            except (TypeError, ValueError):
                raise Refused(BUSINESS, "ACQ.INVALID_PARAMETER", "time_expire 格式错误") from None
            if time.time() >= time_expire:
                raise Refused(BUSINESS, "ACQ.TRADE_HAS_CLOSE", "订单已超时，不能付款")
        trade = self.trades.get(out_trade_no)
        if trade is not None:  # the payer opens the same order again
            if trade.amount != amount:
                raise Refused(BUSINESS, "ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            return trade
        trade = AlipayTrade(out_trade_no, amount, subject, params.get("notify_url", ""),
                            time_expire)
        self.trades[out_trade_no] = trade
        return trade

    async def pay(self, out_trade_no: str, notify: bool = True) -> AlipayTrade:
        """The payer pays an opened trade; Alipay notifies (unless `notify` is False: lost)."""
        trade = self.trade(out_trade_no)
        if trade is None or trade.status != "WAIT_BUYER_PAY":
            raise Refused(BUSINESS, "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.status, trade.paid_at = "TRADE_SUCCESS", now_text()
        if notify:
            await self.notify(trade, gmt_payment=trade.paid_at)
        return trade

    async def settle_refunds(self, notify: bool = True) -> None:
        """Alipay finishes the refunds it accepted but had not done."""
        for (out_trade_no, _), refund in self.refunds.items():
            if not refund.done:
                await self.refund_done(self.trades[out_trade_no], refund, notify)

    # What Alipay keeps.

    def trade(self, out_trade_no: str) -> AlipayTrade | None:
        """The trade as it stands now: one unpaid at its time_expire is closed then."""
        trade = self.trades.get(out_trade_no)
        if (trade is not None and trade.status == "WAIT_BUYER_PAY"
                and trade.time_expire is not None and time.time() >= trade.time_expire):
            trade.status = "TRADE_CLOSED"
        return trade

    async def refund_done(self, trade: AlipayTrade, refund: AlipayRefund, notify: bool) -> None:
        refund.done, refund.at = True, now_text()
        trade.refunded += refund.amount
        self.seller_balance -= refund.amount
        if trade.refunded == trade.amount:
            trade.status = "TRADE_CLOSED"
        if notify:
            await self.notify(trade, out_biz_no=refund.out_request_no,
                              refund_fee=yuan(trade.refunded), gmt_refund=refund.at)

    async def notify(self, trade: AlipayTrade, **extra) -> None:
        """The asynchronous notification of the trade as it is, to its notify_url."""
        if not trade.notify_url:
            return
        headers, body = self.providers.alipay(trade.out_trade_no, yuan(trade.amount),
                                              trade_no=trade.trade_no, status=trade.status,
                                              **extra)
        try:
            answer, _ = await send(trade.notify_url, headers, body)
        except (OSError, tornado.httpclient.HTTPClientError):
            answer = None  # Alipay would try again later
        self.notifications.append((trade.notify_url, headers, body, answer))


def check_common(standin: AlipayStandIn, params: dict, method: str | None = None,
                 window: bool = True) -> dict:
    """The gateway's checks of the common parameters and the signature; biz_content back."""
    for name in ("app_id", "method", "sign_type", "sign", "timestamp", "version", "charset"):
        if not params.get(name):
            raise Refused(MISSING, f"isv.missing-{name.replace('_', '-')}", f"缺少{name}参数",
                          signed=name != "app_id")
    if params["app_id"] != standin.app_id:  # no app, no key to sign the answer with
        raise Refused(INVALID, "isv.invalid-app-id", "无效的AppID参数", signed=False)
    if params["method"] not in ((method,) if method else METHODS):
        raise Refused(INVALID, "isv.invalid-method", "不存在的方法名")
    if params.get("format", "JSON").upper() != "JSON":
        raise Refused(INVALID, "isv.invalid-format", "无效的数据格式")
    if params["charset"].lower() != "utf-8":
        raise Refused(INVALID, "isv.invalid-charset", "字符集错误")
    if params["sign_type"] != "RSA2":
        raise Refused(INVALID, "isv.invalid-signature-type", "无效的签名类型")
    try:
        stamp = beijing_epoch(params["timestamp"])
    except ValueError:
        raise Refused(INVALID, "isv.invalid-timestamp", "非法的时间戳参数") from None
    if window and abs(time.time() - stamp) > TIMESTAMP_WINDOW:
        raise Refused(INVALID, "isv.invalid-timestamp", "非法的时间戳参数")
    if params["version"] != "1.0":
        raise Refused(INVALID, "isv.invalid-version", "版本号错误")
    # What Alipay verifies: every parameter but sign and the empty ones, sorted, k=v joined.
    signed = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v != "")
    try:
        standin.merchant_public.verify(base64.b64decode(params["sign"], validate=True),
                                       signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise Refused(INVALID, "isv.invalid-signature", "验签出错") from None
    try:
        biz = json.loads(params.get("biz_content") or "{}")
    except ValueError:
        biz = None
    if not isinstance(biz, dict):
        raise Refused(INVALID, "isv.invalid-parameter", "biz_content 不是 JSON 对象")
    return biz


class GatewayHandler(StandInHandler):
    """gateway.do: every method at one address, by GET or by form POST."""

    async def get(self):
        await self.answer()

    async def post(self):
        await self.answer()

    async def answer(self):
        standin: AlipayStandIn = self.standin
        params = {k: v[-1].decode() for k, v in self.request.arguments.items()}
        method = params.get("method", "")
        member = (method.replace(".", "_") + "_response") if method in METHODS else "error_response"
        self.record(method, params)
        try:
            biz = check_common(standin, params)
            if standin.system_errors:
                standin.system_errors -= 1
                raise Refused(BUSY, "isp.unknow-error", "系统繁忙")
            node = await CALLS[method](standin, biz)
            signed = True
        except Refused as refusal:
            node, signed = refusal.node, refusal.signed
        # Alipay signs the response object's text exactly as it stands in the answer.
        raw = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
        if standin.pretty:  # nested one level deeper than json.dumps lays it out alone
            raw = json.dumps(node, ensure_ascii=False, indent=4).replace("\n", "\n    ")
        members = [(member, raw)]
        if signed:
            key = standin.providers.alipay_key if self.signed_by_provider() else standin.forged_key
            members.append(("sign", json.dumps(rsa2(key, raw))))
        self.set_header("Content-Type", "application/json;charset=utf-8")
        self.finish(laid_out(members, standin.pretty))


def laid_out(members: list[tuple[str, str]], pretty: bool) -> str:
    """A JSON object of members already in JSON: compact, as Alipay answers, or over lines, as
    the examples of its documentation show them."""
    if pretty:
        return "{\n" + ",\n".join(f'    "{name}": {value}' for name, value in members) + "\n}"
    return "{" + ",".join(f'"{name}":{value}' for name, value in members) + "}"


def find(standin: AlipayStandIn, biz: dict) -> AlipayTrade:
    out_trade_no, trade_no = biz.get("out_trade_no"), biz.get("trade_no")
    if not out_trade_no and not trade_no:
        raise Refused(BUSINESS, "ACQ.INVALID_PARAMETER", "参数无效")
    trade = standin.trade(out_trade_no) if out_trade_no else next(
        (t for t in standin.trades.values() if t.trade_no == trade_no), None)
    if trade is None or (trade_no and trade.trade_no != trade_no):
        raise Refused(BUSINESS, "ACQ.TRADE_NOT_EXIST", "交易不存在", out_trade_no=out_trade_no,
                      buyer_pay_amount="0.00", invoice_amount="0.00", point_amount="0.00",
                      receipt_amount="0.00")
    return trade


def success(trade: AlipayTrade, **fields) -> dict:
    return {"code": "10000", "msg": "Success", "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no, **fields}


async def query(standin: AlipayStandIn, biz: dict) -> dict:
    trade = find(standin, biz)
    paid = yuan(trade.amount) if trade.paid_at else "0.00"
    return success(trade, buyer_logon_id="159******20", trade_status=trade.status,
                   total_amount=yuan(trade.amount), buyer_pay_amount=paid, point_amount="0.00",
                   invoice_amount=paid, receipt_amount=paid, buyer_user_id="2088102122524333",
                   **({"send_pay_date": trade.paid_at} if trade.paid_at else {}))


async def close(standin: AlipayStandIn, biz: dict) -> dict:
    trade = find(standin, biz)
    if trade.status != "WAIT_BUYER_PAY":
        raise Refused(BUSINESS, "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
    trade.status = "TRADE_CLOSED"
    return success(trade)


async def refund(standin: AlipayStandIn, biz: dict) -> dict:
    try:
        amount = fen(biz.get("refund_amount"))
    except ValueError:
        raise Refused(BUSINESS, "ACQ.INVALID_PARAMETER", "refund_amount 格式错误") from None
    trade = find(standin, biz)
    request_no = biz.get("out_request_no") or trade.out_trade_no
    if not isinstance(request_no, str) or not OUT_NO.fullmatch(request_no) or amount <= 0:
        raise Refused(BUSINESS, "ACQ.INVALID_PARAMETER", "参数无效")
    earlier = standin.refunds.get((trade.out_trade_no, request_no))
    if earlier is not None:  # the same request again: nothing moves this time
        if earlier.amount != amount:
            raise Refused(BUSINESS, "ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求")
        return refunded(trade, "N")
    if trade.status == "TRADE_FINISHED":
        raise Refused(BUSINESS, "ACQ.TRADE_HAS_FINISHED", "交易已完结")
    if not trade.paid_at or trade.status != "TRADE_SUCCESS":
        raise Refused(BUSINESS, "ACQ.TRADE_STATUS_ERROR", "交易状态非法")
    if "out_request_no" not in biz and amount != trade.amount:
        raise Refused(BUSINESS, "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
    pending = sum(r.amount for (no, _), r in standin.refunds.items()
                  if no == trade.out_trade_no and not r.done)
    if amount > trade.amount - trade.refunded - pending:
        raise Refused(BUSINESS, "ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效")
    if amount > standin.seller_balance:
        raise Refused(BUSINESS, "ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足")
    this = AlipayRefund(request_no, amount, done=False)
    standin.refunds[(trade.out_trade_no, request_no)] = this
    if standin.refund_later:
        return refunded(trade, "N")
    await standin.refund_done(trade, this, notify=True)
    return refunded(trade, "Y", gmt_refund_pay=this.at)


def refunded(trade: AlipayTrade, fund_change: str, **fields) -> dict:
    return success(trade, buyer_logon_id="159******20", fund_change=fund_change,
                   refund_fee=yuan(trade.refunded), buyer_user_id="2088102122524333", **fields)


async def refund_query(standin: AlipayStandIn, biz: dict) -> dict:
    trade = find(standin, biz)
    request_no = biz.get("out_request_no") or trade.out_trade_no
    this = standin.refunds.get((trade.out_trade_no, request_no))
    if this is None:  # documented: no refund fields when the refund is unknown
        return success(trade)
    return success(trade, out_request_no=request_no, total_amount=yuan(trade.amount),
                   refund_amount=yuan(this.amount),
                   **({"refund_status": "REFUND_SUCCESS"} if this.done else {}))


CALLS = {"alipay.trade.query": query, "alipay.trade.close": close,
         "alipay.trade.refund": refund, "alipay.trade.fastpay.refund.query": refund_query}
