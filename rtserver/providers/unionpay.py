"""UnionPay (银联) online gateway, version 5.1.0: the app consume, its query, refunds (退货), and
the back notifications of payments and refunds.

Every request is a form signed with our key (signMethod 01: base64 RSA-SHA256 over the SHA-256
hex digest of the sorted `k=v` string of every field but `signature`), naming our certificate by
`certId`; every answer and notification is signed so by UnionPay and verified with its key.
"""
import hashlib
import time
import urllib.parse

from rtserver.config import Settings
from rtserver.errors import BadRequest, Forbidden
from rtserver.integers import positive_integer
from rtserver.providers.calls import BadAnswer, Caller, ProviderDown, ProviderRefused, Reply
from rtserver.providers.signing import (form, private_key, public_key, rsa_sign, rsa_verify, same,
                                         sorted_pairs, text)
from rtserver.providers.trades import (BadSignature, Notification, Order, Refund, RefundAnswer,
                                       RefundNotification, Trade, beijing)
from storage.schema import PayType

VERSION = "5.1.0"
TIME = "%Y%m%d%H%M%S"  # txnTime and payTimeout: Beijing time
APP_CONSUME, QUERY, BACK = ("/gateway/api/appTransReq.do", "/gateway/api/queryTrans.do",
                            "/gateway/api/backTransReq.do")
OK = "00"
# Settled, with a defect the merchant need not act on: the docs count it paid, like 00.
PAID = (OK, "A6")
# 03 communication time-out, 04 state unknown, 05 accepted, still processing: ask again later.
UNDECIDED = ("03", "04", "05")
DUPLICATE = "12"  # 重复交易: this orderId was asked for already
NO_SUCH_ORDER = "34"  # 查无此交易
# Seconds our clock may run ahead of the gateway's: payTimeout is judged by its clock, so an
# order is taken for unpayable only this long after payTimeout has passed by ours.
CLOCK_SLACK = 60


def digest(fields: dict[str, str]) -> bytes:
    """What signMethod 01 signs: the SHA-256 hex digest of the sorted fields but `signature`."""
    return hashlib.sha256(sorted_pairs(fields, ("signature",)).encode()).hexdigest().encode()


def answer_fields(body: bytes) -> dict[str, str]:
    """Read a synchronous answer: `k=v&k=v` as the gateway writes it, NOT URL-encoded (its base64
    signature keeps its `+`), where a value in `{}` or `[]` may itself hold `&` and `=`."""
    try:
        answer = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadAnswer("answer is not UTF-8") from None
    pairs, start, closing = [], 0, ""
    for i, char in enumerate(answer):
        if closing:
            closing = "" if char == closing else closing
        elif char in "{[":
            closing = "}" if char == "{" else "]"
        elif char == "&":
            pairs.append(answer[start:i])
            start = i + 1
    pairs.append(answer[start:])
    fields = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not name or not equals or name in fields:
            raise BadAnswer("answer is not a k=v form")
        fields[name] = value
    return fields


class UnionPay:
    name, pay_type = "unionpay", PayType.UNIONPAY
    answer_type = "text/plain"  # of the body `answer` gives
    CONSUME, REFUND = "01", "04"  # txnType of a payment and of a refund (退货)
    MOST_FEN = 999_999_999_999  # txnAmt is at most 12 digits

    def __init__(self, mer_id: str, unionpay_public_key, merchant_key=None, cert_id: str = "",
                 gateway: str = "", public_url: str = "", timeout: float = 5.0):
        self.mer_id, self.key = mer_id, unionpay_public_key
        self.merchant_key, self.cert_id, self.gateway = merchant_key, cert_id, gateway.rstrip("/")
        self.back_url = public_url and public_url.rstrip("/") + "/pay/notify/unionpay"
        self.caller = Caller(self.name, timeout) if self.places_orders else None

    @classmethod
    def from_settings(cls, settings: Settings) -> "UnionPay | None":
        if not (settings.unionpay_mer_id and settings.unionpay_public_key_file):
            return None
        calls = (settings.unionpay_private_key_file and settings.unionpay_cert_id
                 and settings.public_url)
        return cls(settings.unionpay_mer_id, public_key(settings.unionpay_public_key_file),
                   private_key(settings.unionpay_private_key_file) if calls else None,
                   settings.unionpay_cert_id, settings.unionpay_gateway, settings.public_url,
                   settings.provider_timeout)

    @property
    def places_orders(self) -> bool:
        """Whether this server calls the gateway (consume, query, refund)."""
        return bool(self.merchant_key and self.cert_id and self.back_url)

    # The payment.

    async def place(self, order: Order) -> str:
        """The app consume: the gateway's `tn`, which the app's UnionPay control pays."""
        if not self.places_orders:
            return ""
        return await self._call("place", APP_CONSUME, {
            "txnType": self.CONSUME, "txnSubType": "01", "bizType": "000201",
            "channelType": "08", "orderId": order.out_trade_no,
            "txnTime": beijing(order.created, TIME), "txnAmt": str(order.amount),
            "currencyCode": "156", "backUrl": self.back_url,
            # The gateway refuses to take the money after this: no payment outlives our time-out.
            "payTimeout": beijing(order.expires, TIME)}, self._tn)

    def app_params(self, order: Order, placed: str) -> dict:
        return {"tn": placed or None}

    async def query(self, order: Order) -> Trade:
        return await self._call("query", QUERY, self._about(order.out_trade_no, order.created),
                                lambda answer: self._trade(answer, order))

    async def close(self, order: Order) -> Trade:
        """UnionPay has no close for a consume: it refuses the money after payTimeout, which
        `place` set to `order.expires`. So closing is asking once that time has passed: "paid"
        if it was, "closed" if it was not and cannot be any more, "unpaid" (ask again later)
        before then, or while a payment made in time is still being processed."""
        trade = await self.query(order)
        if trade.state == "closed" and not self._payable(order):
            return trade
        return trade if trade.state == "paid" else Trade("unpaid")

    # Refunds.

    async def refund(self, refund: Refund) -> RefundAnswer:
        """退货: accepted ("pending"), its result comes by back notification or query_refund.
        Asked again (a retry of ours), the gateway says duplicate: the refund's query answers."""
        answer = await self._call("refund", BACK, {
            "txnType": self.REFUND, "txnSubType": "00", "bizType": "000201",
            "channelType": "07", "orderId": refund.out_refund_no,
            "origQryId": refund.order.trade_no, "txnAmt": str(refund.amount),
            "txnTime": beijing(refund.created, TIME), "backUrl": self.back_url},
            self._refund_taken)
        return await self.query_refund(refund) if answer is None else answer

    async def query_refund(self, refund: Refund) -> RefundAnswer:
        return await self._call("query_refund", QUERY,
                                self._about(refund.out_refund_no, refund.created),
                                self._refund_state)

    # Notifications.

    def verify(self, headers, body: bytes) -> Notification | RefundNotification:
        fields = form(body)
        # 5.1.0 notifications carry the signing certificate (signPubKeyCert); this deployment
        # verifies with the configured public key of UnionPay instead, never with a key that
        # the message brings along.
        rsa_verify(self.key, text(fields, "signature", 1024), digest(fields))
        # UnionPay signs every merchant's notifications with one key: the merchant must be us.
        if not same(fields.get("merId", ""), self.mer_id):
            raise Forbidden("notification for another merId")
        txn_type = fields.get("txnType")
        if txn_type not in (self.CONSUME, self.REFUND):
            raise BadRequest("neither a payment (txnType 01) nor a refund (txnType 04)")
        txn_amt = positive_integer(fields.get("txnAmt"), self.MOST_FEN)
        if txn_amt is None:
            raise BadRequest("txnAmt missing or malformed")
        if txn_type == self.REFUND:
            text(fields, "origQryId")  # a refund's notification names the payment it refunds
            return RefundNotification(
                out_refund_no=text(fields, "orderId"), refund_id=text(fields, "queryId"),
                state="succeeded" if fields.get("respCode") == OK else "failed")
        # A back notification is sent for a consume that succeeded; any other respCode is one
        # that failed, and will not be paid.
        return Notification(out_trade_no=text(fields, "orderId"),
                            trade_no=text(fields, "queryId"), amount=txn_amt,
                            state="paid" if fields.get("respCode") == OK else "closed")

    def answer(self, ok: bool) -> tuple[int, str]:
        return (200, "ok") if ok else (400, "fail")

    # The calls.

    async def _call(self, call: str, path: str, fields: dict, meaning):
        if not self.places_orders:
            raise RuntimeError("UnionPay has no merchant key, certId or public URL to call with")
        return await self.caller.call(
            call, "POST", self.gateway + path,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
            body=self._signed(fields),
            check=lambda reply: meaning(self._verified(reply, fields["orderId"])))

    def _signed(self, fields: dict) -> bytes:
        fields = {"version": VERSION, "encoding": "UTF-8", "signMethod": "01",
                  "certId": self.cert_id, "accessType": "0", "merId": self.mer_id, **fields}
        # The gateway's SDK leaves empty fields out of what it signs and sends: so do we.
        fields = {name: value for name, value in fields.items() if value != ""}
        fields["signature"] = rsa_sign(self.merchant_key, digest(fields))
        return urllib.parse.urlencode(fields).encode()

    def _verified(self, reply: Reply, order_id: str) -> dict[str, str]:
        """The answer's fields once they are verifiably UnionPay's answer about this order."""
        if reply.status != 200:
            raise BadAnswer(f"HTTP {reply.status}")
        fields = answer_fields(reply.body)
        # 5.1.0 answers carry signPubKeyCert, the certificate to verify them with; this
        # deployment verifies with the configured public key of UnionPay instead, so that an
        # answer bringing its own certificate proves nothing.
        try:
            rsa_verify(self.key, fields.get("signature", ""), digest(fields))
        except BadSignature:
            raise BadAnswer("signature does not verify with UnionPay's key") from None
        if "respCode" not in fields:
            raise BadAnswer("answer without respCode")
        for name, ours in (("merId", self.mer_id), ("orderId", order_id)):
            if name in fields and not same(fields[name], ours):
                raise BadAnswer(f"answer about another {name}")
        return fields

    def _about(self, order_id: str, created: int) -> dict:
        """A query names a transaction by our orderId and its txnTime."""
        return {"txnType": "00", "txnSubType": "00", "bizType": "000000", "orderId": order_id,
                "txnTime": beijing(created, TIME)}

    def _payable(self, order: Order) -> bool:
        return time.time() <= order.expires + CLOCK_SLACK

    def _tn(self, answer: dict) -> str:
        if answer["respCode"] != OK:
            raise self._refusal(answer)
        return self._field(answer, "tn")

    def _trade(self, answer: dict, order: Order) -> Trade:
        code = answer["respCode"]
        if code == NO_SUCH_ORDER:
            # The docs: not found means the state is unknown, ask later; it is also what the
            # gateway says of a tn nobody has tried to pay yet. Before payTimeout a payment
            # may still come; after it none can: the gateway refuses every try.
            return Trade("unpaid") if self._payable(order) else Trade("closed")
        if code != OK:
            raise self._refusal(answer)
        paid_with = self._field(answer, "origRespCode")
        if paid_with in PAID:
            amount = positive_integer(answer.get("txnAmt"), self.MOST_FEN)
            if amount is None:
                raise BadAnswer("paid answer without a well-formed txnAmt")
            return Trade("paid", self._field(answer, "queryId"), amount)
        # Other original codes are a payment that failed (the docs: 其他应答码为交易失败).
        return Trade("unpaid") if paid_with in UNDECIDED else Trade("closed")

    def _refund_taken(self, answer: dict) -> RefundAnswer | None:
        """The refund's synchronous answer; None when it was asked already (then query it)."""
        code = answer["respCode"]
        if code == DUPLICATE:
            return None
        if code != OK:
            raise self._refusal(answer)
        return RefundAnswer("pending", answer.get("queryId", ""), self._words(answer))

    def _refund_state(self, answer: dict) -> RefundAnswer:
        code = answer["respCode"]
        if code == NO_SUCH_ORDER:
            # Asked only of a refund the gateway accepted: it is not found yet (the docs: the
            # state is unknown, ask later).
            return RefundAnswer("pending", detail=self._words(answer))
        if code != OK:
            raise self._refusal(answer)
        ended_with = self._field(answer, "origRespCode")
        words = self._words(answer, "origRespCode", "origRespMsg")
        if ended_with in PAID:
            return RefundAnswer("succeeded", self._field(answer, "queryId"), words)
        return RefundAnswer("pending" if ended_with in UNDECIDED else "failed",
                            answer.get("queryId", ""), words)

    def _refusal(self, answer: dict) -> Exception:
        """A signed answer that is not a success: the gateway said no, or (03, 04, 05) that the
        request has no outcome yet, which is asked again later like a time-out: every call here
        is idempotent on our orderId, and a refund asked twice is answered as a duplicate."""
        if answer["respCode"] in UNDECIDED:
            return ProviderDown(f"UnionPay {self._words(answer)}; retry later")
        return ProviderRefused(f"UnionPay {self._words(answer)}")

    @staticmethod
    def _words(answer: dict, code: str = "respCode", message: str = "respMsg") -> str:
        """The gateway's code and message, for the record: never a key or a body."""
        return f"{answer.get(code, '')} {answer.get(message, '')}".strip()[:200]

    @staticmethod
    def _field(answer: dict, name: str) -> str:
        value = answer.get(name, "")
        if not 0 < len(value) <= 64:
            raise BadAnswer(f"answer without a well-formed {name}")
        return value
