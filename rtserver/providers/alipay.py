"""Alipay (支付宝) open platform: the app-pay order string, the gateway's trade calls (query,
close, refund, refund query), and the asynchronous notification's verification.

Every gateway call is a form POST of the common parameters and a JSON biz_content, signed RSA2
with our merchant key over the sorted `k=v` pairs of every parameter but `sign`. Alipay answers
`{"<method>_response": {...}, "sign": "..."}`, its signature made over the raw text of the
response object exactly as sent: that text is cut out of the answer, never re-serialised, and an
answer it does not verify with Alipay's public key is never believed.
"""
import json
import re
import time
import urllib.parse

from rtserver.config import Settings
from rtserver.errors import BadRequest, Forbidden
from rtserver.money import format_fen, parse_amount
from rtserver.providers.calls import BadAnswer, Caller, ProviderDown, ProviderRefused, Reply
from rtserver.providers.signing import (form, private_key, public_key, rsa_sign, rsa_verify,
                                         same, sorted_pairs, text)
from rtserver.providers.trades import (BadSignature, Notification, Order, Refund, RefundAnswer,
                                       RefundNotification, Trade, beijing)
from storage.schema import PayType

TIME = "%Y-%m-%d %H:%M:%S"  # timestamp and time_expire: Beijing time, as Alipay reads them
# time_expire is read on Alipay's clock: only this long after it by ours is an order that was
# never opened surely beyond paying.
CLOCK_MARGIN = 60
FORM = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}
SUCCEEDED = "10000"
# Alipay's own failures ("call again with the same parameters"): retried like a 5xx.
SYSTEM_BUSY, SYSTEM_ERRORS = "20000", ("ACQ.SYSTEM_ERROR", "AQC.SYSTEM_ERROR")
NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
# Refund refusals after which this refund can never happen. Every other refusal (the seller's
# balance short, the trade frozen, parameters, a request that disagrees with an earlier one of
# the same number) is for retrying later: concluding "failed" there could refund twice.
REFUND_GIVEN_UP = ("ACQ.TRADE_HAS_FINISHED", "ACQ.TRADE_STATUS_ERROR", "ACQ.TRADE_NOT_ALLOW_REFUND",
                   "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "ACQ.REASON_TRADE_REFUND_FEE_ERR")
SUBJECT_FORBIDS = "/=&"  # characters alipay.trade.app.pay refuses in a subject

_BLANK = re.compile(r"[ \t\n\r]*")
_JSON = json.JSONDecoder()


class Alipay:
    name, pay_type = "alipay", PayType.ALIPAY
    answer_type = "text/plain"  # of the body `answer` gives
    SUCCESS = ("TRADE_SUCCESS", "TRADE_FINISHED")
    CLOSED = ("TRADE_CLOSED",)  # closed unpaid, or paid and then refunded in full

    def __init__(self, app_id: str, alipay_public_key, merchant_private_key, gateway: str = "",
                 notify_url: str = "", timeout: float = 5.0):
        self.app_id = app_id
        self.alipay_key, self.merchant_key = alipay_public_key, merchant_private_key
        self.gateway, self.notify_url = gateway, notify_url
        self.caller = Caller(self.name, timeout) if gateway else None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Alipay | None":
        if not (settings.alipay_app_id and settings.alipay_public_key_file
                and settings.alipay_private_key_file):
            return None
        return cls(settings.alipay_app_id, public_key(settings.alipay_public_key_file),
                   private_key(settings.alipay_private_key_file), settings.alipay_gateway,
                   settings.public_url and settings.public_url + "/pay/notify/alipay",
                   settings.provider_timeout)

    @property
    def places_orders(self) -> bool:
        """Whether this server calls Alipay's gateway (query, close, refund): v1's keys are all
        it takes; the app SDK places the order itself."""
        return self.caller is not None

    async def place(self, order: Order) -> str:
        return ""  # the app SDK places the order with the order string itself

    def app_params(self, order: Order, placed: str) -> dict:
        """The app-pay order string (alipay.trade.app.pay), signed RSA2 with our merchant key.

        Its time_expire is our payment time-out: Alipay creates the trade only when the payer
        confirms it, so without it an order string opened late could still be paid after the
        packet is voided."""
        subject = "".join(c for c in order.subject if c not in SUBJECT_FORBIDS) or "红包"
        biz = {"out_trade_no": order.out_trade_no, "total_amount": format_fen(order.amount),
               "subject": subject, "product_code": "QUICK_MSECURITY_PAY",
               "time_expire": beijing(order.expires, TIME)}
        extra = {"notify_url": self.notify_url} if self.notify_url else {}
        return {"order_string": urllib.parse.urlencode(
            self._signed("alipay.trade.app.pay", biz, extra))}

    async def query(self, order: Order) -> Trade:
        """alipay.trade.query: what Alipay knows of the order now."""
        return await self._call("alipay.trade.query", {"out_trade_no": order.out_trade_no},
                                lambda response: self._trade(order, response))

    async def close(self, order: Order) -> Trade:
        """alipay.trade.close, after which no payment can arrive; a paid trade comes back paid.

        Raises ProviderDown while an order nobody opened can still be paid (until time_expire):
        there is nothing at Alipay to close yet, so the caller must ask again later."""
        trade = await self._call("alipay.trade.close", {"out_trade_no": order.out_trade_no},
                                 lambda response: self._closed(order, response))
        if trade is None:  # no longer waiting for payment: paid, or closed before; ask which
            trade = await self.query(order)
        if trade.state == "unpaid":
            raise ProviderDown("the Alipay order can be paid until its time_expire; close it after")
        return trade

    async def refund(self, refund: Refund) -> RefundAnswer:
        """alipay.trade.refund, idempotent on out_request_no (our out_refund_no)."""
        biz = {"out_trade_no": refund.order.out_trade_no,
               "refund_amount": format_fen(refund.amount), "out_request_no": refund.out_refund_no}
        return await self._call("alipay.trade.refund", biz,
                                lambda response: self._refunded(refund, response))

    async def query_refund(self, refund: Refund) -> RefundAnswer:
        """alipay.trade.fastpay.refund.query of our out_request_no."""
        biz = {"out_trade_no": refund.order.out_trade_no, "out_request_no": refund.out_refund_no}
        return await self._call("alipay.trade.fastpay.refund.query", biz,
                                lambda response: self._refund_state(refund, response))

    def verify(self, headers, body: bytes) -> Notification | RefundNotification:
        fields = form(body)
        sign = text(fields, "sign", 1024)
        if fields.get("sign_type", "RSA2") != "RSA2":
            raise BadSignature("only RSA2 signatures are accepted")
        rsa_verify(self.alipay_key, sign, sorted_pairs(fields, ("sign", "sign_type")).encode())
        if not same(fields.get("app_id", ""), self.app_id):
            raise Forbidden("notification for another app_id")
        if fields.get("out_biz_no") and "refund_fee" in fields:
            # A refund's notification names its out_request_no (our out_refund_no) and is sent
            # once the money went back, whatever trade_status (TRADE_CLOSED once in full).
            return RefundNotification(out_refund_no=text(fields, "out_biz_no"),
                                      state="succeeded")
        status = fields.get("trade_status")
        return Notification(out_trade_no=text(fields, "out_trade_no"),
                            trade_no=text(fields, "trade_no"),
                            amount=parse_amount(fields.get("total_amount")),
                            state="paid" if status in self.SUCCESS else
                            "closed" if status in self.CLOSED else "unpaid")

    def answer(self, ok: bool) -> tuple[int, str]:
        return (200, "success") if ok else (400, "failure")

    # What each answer means. Each takes the verified response object.

    def _trade(self, order: Order, response: dict) -> Trade:
        if response.get("code") != SUCCEEDED:
            if response.get("sub_code") == NOT_EXIST:
                return self._not_opened(order)
            raise refused(response)
        about(order, response)
        status = response.get("trade_status")
        if status in self.SUCCESS:
            return Trade("paid", text(response, "trade_no"),
                         parse_amount(response.get("total_amount")))
        if status == "WAIT_BUYER_PAY":
            return Trade("unpaid", text(response, "trade_no"))
        if status in self.CLOSED:
            return Trade("closed", text(response, "trade_no"))
        raise BadAnswer("trade_status is not one Alipay documents")

    def _closed(self, order: Order, response: dict) -> Trade | None:
        if response.get("code") == SUCCEEDED:
            about(order, response)
            return Trade("closed", text(response, "trade_no"))
        if response.get("sub_code") == NOT_EXIST:
            return self._not_opened(order)
        if response.get("sub_code") == "ACQ.TRADE_STATUS_ERROR":
            return None  # only a trade waiting for payment can be closed
        raise refused(response)

    @staticmethod
    def _not_opened(order: Order) -> Trade:
        """ACQ.TRADE_NOT_EXIST: no payer has confirmed the order in Alipay's cashier, which is
        when Alipay creates an app-pay trade. Until the order string's time_expire one still
        may ("unpaid"); after it Alipay refuses the order string, so it is "closed" for good."""
        return Trade("closed") if time.time() >= order.expires + CLOCK_MARGIN else Trade("unpaid")

    def _refunded(self, refund: Refund, response: dict) -> RefundAnswer:
        if response.get("code") == SUCCEEDED:
            about(refund.order, response)
            # fund_change N: no money moved on this call, either because the refund of this
            # out_request_no was made before or because Alipay is still on it: the refund
            # query tells which.
            if response.get("fund_change") == "Y":
                return RefundAnswer("succeeded", detail="fund_change Y")
            return RefundAnswer("pending", detail="fund_change N")
        if response.get("sub_code") in REFUND_GIVEN_UP:
            return RefundAnswer("failed", detail=words(response))
        raise refused(response)

    def _refund_state(self, refund: Refund, response: dict) -> RefundAnswer:
        if response.get("code") != SUCCEEDED:
            raise refused(response)
        about(refund.order, response)
        if response.get("out_request_no", refund.out_refund_no) != refund.out_refund_no:
            raise BadAnswer("answer about another refund")
        if response.get("refund_status") == "REFUND_SUCCESS":
            return RefundAnswer("succeeded", detail="REFUND_SUCCESS")
        # Without refund_status the refund is not done: still processing, or never received
        # (refunding again with the same out_request_no is safe).
        return RefundAnswer("pending", detail="no refund_status")

    # The gateway.

    def _signed(self, method: str, biz: dict, extra: dict | None = None) -> dict:
        """The common parameters of `method` with biz_content, and their RSA2 `sign`."""
        params = {"app_id": self.app_id, "method": method, "format": "JSON", "charset": "utf-8",
                  "sign_type": "RSA2", "timestamp": beijing(int(time.time()), TIME),
                  "version": "1.0", **(extra or {}),
                  "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":"))}
        params["sign"] = rsa_sign(self.merchant_key, sorted_pairs(params, ()).encode())
        return params

    async def _call(self, method: str, biz: dict, read):
        """POST one gateway call and return `read(response)` of its verified response object."""
        body = urllib.parse.urlencode(self._signed(method, biz)).encode()
        member = method.replace(".", "_") + "_response"

        def check(reply: Reply):
            response = self._verified(reply, member)
            try:
                return read(response)
            except ProviderRefused:
                raise
            except BadRequest as exc:  # a field missing or malformed: not a documented answer
                raise BadAnswer(exc.message) from None

        return await self.caller.call(method, "POST", self.gateway, headers=FORM, body=body,
                                      check=check)

    def _verified(self, reply: Reply, member: str) -> dict:
        """The response object of a signed answer; BadAnswer for any other answer."""
        if reply.status != 200:
            raise BadAnswer(f"HTTP {reply.status}")
        try:
            members = json_members(reply.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise BadAnswer("answer is not a JSON object") from None
        # error_response: the gateway refused before it knew the method
        raw, response = members.get(member) or members.get("error_response") or (None, None)
        sign = members.get("sign", (None, None))[1]
        if not isinstance(response, dict) or not isinstance(sign, str):
            # Alipay leaves unsigned only what it cannot tie to an app: nothing to believe.
            raise BadAnswer("answer has no signed response object")
        try:
            rsa_verify(self.alipay_key, sign, raw.encode("utf-8"))
        except BadSignature:
            raise BadAnswer("signature does not verify with Alipay's public key") from None
        if response.get("code") == SYSTEM_BUSY or response.get("sub_code") in SYSTEM_ERRORS:
            raise BadAnswer(f"Alipay system error {response.get('sub_code') or SYSTEM_BUSY}")
        return response


def json_members(document: str) -> dict[str, tuple[str, object]]:
    """Each member of the JSON object `document` as (its raw text, its value): Alipay signs
    the raw text of the response object, which re-serialising would not give back."""
    members, at = {}, _BLANK.match(document, 0).end()
    if document[at:at + 1] != "{":
        raise ValueError("not a JSON object")
    at = _BLANK.match(document, at + 1).end()
    while document[at:at + 1] != "}":
        if document[at:at + 1] != '"':
            raise ValueError("a member's name must be a string")
        name, at = _JSON.raw_decode(document, at)
        at = _BLANK.match(document, at).end()
        if name in members or document[at:at + 1] != ":":
            raise ValueError("repeated or malformed member")
        start = _BLANK.match(document, at + 1).end()
        value, at = _JSON.raw_decode(document, start)
        members[name] = (document[start:at], value)
        at = _BLANK.match(document, at).end()
        if document[at:at + 1] == ",":
            at = _BLANK.match(document, at + 1).end()
            if document[at:at + 1] == "}":
                raise ValueError("trailing comma")
        elif document[at:at + 1] != "}":
            raise ValueError("members must be separated by commas")
    if _BLANK.match(document, at + 1).end() != len(document):
        raise ValueError("text after the JSON object")
    return members


def about(order: Order, response: dict) -> None:
    """An answer naming another order is no answer to our question."""
    if response.get("out_trade_no", order.out_trade_no) != order.out_trade_no:
        raise BadAnswer("answer about another order")


def words(response: dict) -> str:
    """Alipay's reason, as it gives it: sub_msg (sub_code), else msg (code)."""
    if response.get("sub_code"):
        return f"{response.get('sub_msg', '')} ({response['sub_code']})"
    return f"{response.get('msg', '')} ({response.get('code', '')})"


def refused(response: dict) -> ProviderRefused:
    return ProviderRefused(f"Alipay refused: {words(response)}")
