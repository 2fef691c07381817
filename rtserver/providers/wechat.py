"""WeChat Pay (微信支付) API v3: the APP order, its query, close and refunds, and the
notifications of payments and refunds.

Every request carries a WECHATPAY2-SHA256-RSA2048 Authorization signed with our merchant key;
every answer, a refusal or a 204 as much as a 200, carries a Wechatpay-Signature of the platform
key over its timestamp, nonce and body, and one that does not verify is not WeChat Pay's
(`BadAnswer`: WeChat Pay itself sends bad signatures now and then to see that we check).
"""
import base64
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rtserver.config import Settings
from rtserver.errors import BadRequest, Forbidden
from rtserver.providers.calls import BadAnswer, Caller, ProviderDown, ProviderRefused, Reply
from rtserver.providers.signing import (json_object, private_key, public_key, rsa_sign,
                                         rsa_verify, same, text)
from rtserver.providers.trades import (BadSignature, Notification, Order, Refund, RefundAnswer,
                                       RefundNotification, Trade, beijing)
from storage.schema import PayType

REPLAY_WINDOW = 300  # seconds a signed timestamp (a notification's, an answer's) may be off
CLOCK_SKEW = 60  # seconds our clock and WeChat Pay's may differ on when an order expires
SCHEME = "WECHATPAY2-SHA256-RSA2048"
USER_AGENT = "rtserver"  # API v3 refuses requests without one

PAID = ("SUCCESS", "REFUND")  # REFUND (转入退款): paid, then a refund of it began
UNPAID = ("NOTPAY", "USERPAYING")
CLOSED = ("CLOSED", "REVOKED", "PAYERROR")  # will never be paid
REFUND_STATES = {"SUCCESS": "succeeded", "PROCESSING": "pending", "CLOSED": "failed",
                 "ABNORMAL": "failed"}  # ABNORMAL: the payer's card refused it; left to us


@dataclass(frozen=True)
class Merchant:
    """What calling WeChat Pay takes beyond verifying it: our app, key, certificate, the
    base URL, where notifications go, and the caller (time-out, retries, breaker)."""

    appid: str
    key: object  # our merchant private key
    serial: str  # of our merchant certificate
    api_base: str
    notify_url: str
    caller: Caller


class WechatPay:
    name, pay_type = "wechat", PayType.WECHAT
    answer_type = "application/json"  # of the body `answer` gives

    def __init__(self, mchid: str, apiv3_key: str, platform_public_key,
                 merchant: Merchant | None = None):
        self.mchid, self.platform_key, self.merchant = mchid, platform_public_key, merchant
        self.aead = AESGCM(apiv3_key.encode())

    @classmethod
    def from_settings(cls, settings: Settings) -> "WechatPay | None":
        if not (settings.wechat_mchid and settings.wechat_apiv3_key
                and settings.wechat_platform_public_key_file):
            return None
        merchant = None
        if (settings.wechat_appid and settings.wechat_merchant_private_key_file
                and settings.wechat_merchant_serial and settings.public_url):
            merchant = Merchant(
                settings.wechat_appid, private_key(settings.wechat_merchant_private_key_file),
                settings.wechat_merchant_serial, settings.wechat_api_base.rstrip("/"),
                settings.public_url.rstrip("/") + "/pay/notify/wechat",
                Caller("wechat", settings.provider_timeout))
        return cls(settings.wechat_mchid, settings.wechat_apiv3_key,
                   public_key(settings.wechat_platform_public_key_file), merchant)

    @property
    def places_orders(self) -> bool:
        """Whether this server calls WeChat Pay (order, query, close, refund)."""
        return self.merchant is not None

    # The calls

    async def place(self, order: Order) -> str:
        """Place the APP order; return its prepay_id ("" when we place no orders).

        A repeat with the same out_trade_no and fields is answered the same prepay_id."""
        if not self.places_orders:
            return ""
        body = {"appid": self.merchant.appid, "mchid": self.mchid,
                "description": order.subject or "红包",  # shown in the payer's bill; required
                "out_trade_no": order.out_trade_no,
                "time_expire": beijing(order.expires, "%Y-%m-%dT%H:%M:%S+08:00"),
                "notify_url": self.merchant.notify_url,
                "amount": {"total": order.amount, "currency": "CNY"}}

        def placed(reply: Reply) -> str:
            return field(expected(self._answer(reply), 200), "prepay_id")
        return await self._call("place", "POST", "/v3/pay/transactions/app", body, placed)

    def app_params(self, order: Order, placed: str) -> dict:
        """What the app's SDK takes to pay (APP调起支付), signed with our merchant key."""
        if not (self.places_orders and placed):
            return {"prepay": None}
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        signed = f"{self.merchant.appid}\n{timestamp}\n{nonce}\n{placed}\n".encode()
        return {"prepay": {"appid": self.merchant.appid, "partnerid": self.mchid,
                           "prepayid": placed, "package": "Sign=WXPay", "noncestr": nonce,
                           "timestamp": timestamp, "sign": rsa_sign(self.merchant.key, signed)}}

    async def query(self, order: Order) -> Trade:
        """Ask WeChat Pay how the order stands.

        ORDER_NOT_EXIST (404 订单不存在: only an order whose placing succeeded can be queried)
        means WeChat Pay holds no order of that number, so nothing was paid. It is "unpaid"
        until the order's time_expire (a placing may still be on its way, and a payer cannot
        pay without the prepay_id it answers) and "closed" after it: WeChat Pay takes no
        payment past time_expire."""
        still_payable = time.time() < order.expires + CLOCK_SKEW
        return await self._trade(order, missing="unpaid" if still_payable else "closed")

    async def close(self, order: Order) -> Trade:
        """Close the order, then believe only what a query says of it: "paid" (with the
        trade) if the payer was quicker, else "closed". A refusal to close (ORDERPAID,
        ORDER_CLOSED...) is only a hint; the query decides."""
        path = f"/v3/pay/transactions/out-trade-no/{segment(order.out_trade_no)}/close"

        def closing(reply: Reply) -> ProviderRefused | None:
            status, answer = self._answer(reply)
            return refusal(answer) if status >= 400 else None
        refused = await self._call("close", "POST", path, {"mchid": self.mchid}, closing)
        # No order of that number (and we place none after closing): nothing can be paid.
        trade = await self._trade(order, missing="closed")
        if trade.state != "unpaid":
            return trade
        raise refused or ProviderDown("WeChat Pay has not closed the order yet; retry later")

    async def refund(self, refund: Refund) -> RefundAnswer:
        """Ask for a refund (申请退款) back where the money came from; a repeat of the same
        out_refund_no is answered the same refund."""
        body = {"out_trade_no": refund.order.out_trade_no, "out_refund_no": refund.out_refund_no,
                "notify_url": self._calling().notify_url,
                "amount": {"refund": refund.amount, "total": refund.order.amount,
                           "currency": "CNY"}}
        # USER_ACCOUNT_ABNORMAL: the payer closed their account, WeChat Pay will never refund
        # it; the money is ours to give back otherwise.
        return await self._call("refund", "POST", "/v3/refund/domestic/refunds", body,
                                self._refund_answer(refund, gave_up=("USER_ACCOUNT_ABNORMAL",)))

    async def query_refund(self, refund: Refund) -> RefundAnswer:
        """Ask how a refund stands; one WeChat Pay never heard of is refused
        (RESOURCE_NOT_EXISTS): asking for it again with the same number is the cure."""
        path = f"/v3/refund/domestic/refunds/{segment(refund.out_refund_no)}"
        return await self._call("query_refund", "GET", path, None,
                                self._refund_answer(refund, gave_up=()))

    async def _trade(self, order: Order, missing: str) -> Trade:
        path = (f"/v3/pay/transactions/out-trade-no/{segment(order.out_trade_no)}"
                f"?mchid={segment(self.mchid)}")

        def found(reply: Reply) -> Trade:
            status, answer = self._answer(reply)
            if status == 404 and answer["code"] == "ORDER_NOT_EXIST":
                return Trade(missing)
            answer = expected((status, answer), 200)
            if not (same(str(answer.get("out_trade_no", "")), order.out_trade_no)
                    and same(str(answer.get("mchid", "")), self.mchid)):
                raise BadAnswer("an answer about another order")
            state = answer.get("trade_state")
            if state in PAID:
                return Trade("paid", field(answer, "transaction_id"), total(answer))
            if state in UNPAID or state in CLOSED:
                return Trade("unpaid" if state in UNPAID else "closed")
            raise BadAnswer("an unknown trade_state")
        return await self._call("query", "GET", path, None, found)

    def _refund_answer(self, refund: Refund, gave_up: tuple[str, ...]):
        def answered(reply: Reply) -> RefundAnswer:
            status, answer = self._answer(reply)
            if status >= 400 and answer["code"] in gave_up:
                return RefundAnswer("failed", detail=str(answer.get("message", answer["code"])))
            answer = expected((status, answer), 200)
            if not same(str(answer.get("out_refund_no", "")), refund.out_refund_no):
                raise BadAnswer("an answer about another refund")
            state = REFUND_STATES.get(answer.get("status"))
            if state is None:
                raise BadAnswer("an unknown refund status")
            return RefundAnswer(state, field(answer, "refund_id"), detail=answer["status"])
        return answered

    async def _call(self, call: str, method: str, path: str, body: dict | None, check):
        """Sign and make one call; `path` is the request target (with its query), as signed."""
        merchant = self._calling()
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() \
            if body is not None else b""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        signature = rsa_sign(merchant.key, b"%s\n%s\n%s\n%s\n%s\n" % (
            method.encode(), path.encode(), timestamp.encode(), nonce.encode(), payload))
        headers = {"Authorization": f'{SCHEME} mchid="{self.mchid}",nonce_str="{nonce}",'
                                    f'signature="{signature}",timestamp="{timestamp}",'
                                    f'serial_no="{merchant.serial}"',
                   "Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return await merchant.caller.call(call, method, merchant.api_base + path,
                                          headers=headers,
                                          body=payload if body is not None else None, check=check)

    def _calling(self) -> Merchant:
        if self.merchant is None:
            raise ProviderDown("WeChat Pay calls are not configured on this server")
        return self.merchant

    # Answers

    def _answer(self, reply: Reply) -> tuple[int, dict]:
        """The status and JSON of a verified answer; an error's carries its `code`."""
        try:
            self._check_signed(reply.headers, reply.body)
        except BadSignature:
            raise BadAnswer("Wechatpay-Signature missing or not the platform key's") from None
        try:
            answer = json_object(reply.body) if reply.body else {}
        except BadRequest:
            raise BadAnswer("an answer that is not a JSON object") from None
        if reply.status == 429:  # FREQUENCY_LIMITED: nothing was done, and retrying now won't do
            raise ProviderDown("WeChat Pay is limiting our calls; retry later")
        if reply.status >= 400 and not isinstance(answer.get("code"), str):
            raise BadAnswer("an error without its code")
        return reply.status, answer

    def _check_signed(self, headers, body: bytes) -> None:
        """Verify a Wechatpay-Signature (a notification's or an answer's) with the platform
        key, over `timestamp\\nnonce\\nbody\\n`, within the replay window."""
        timestamp = headers.get("Wechatpay-Timestamp", "")
        nonce = headers.get("Wechatpay-Nonce", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12 and nonce
                and headers.get("Wechatpay-Serial")):
            raise BadSignature("Wechatpay-Timestamp, -Nonce and -Serial are required")
        if headers.get("Wechatpay-Signature-Type", SCHEME) != SCHEME:
            raise BadSignature("only WECHATPAY2-SHA256-RSA2048 signatures are accepted")
        if abs(time.time() - int(timestamp)) > REPLAY_WINDOW:
            raise BadSignature("signed outside the 5-minute window")
        message = b"%s\n%s\n%s\n" % (timestamp.encode(), nonce.encode(), body)
        rsa_verify(self.platform_key, headers.get("Wechatpay-Signature", ""), message)

    # Notifications

    def verify(self, headers, body: bytes) -> Notification | RefundNotification:
        """A payment's notification (TRANSACTION.SUCCESS) or a refund's (REFUND.SUCCESS,
        REFUND.ABNORMAL, REFUND.CLOSED), both at /pay/notify/wechat."""
        self._check_signed(headers, body)
        envelope = json_object(body)
        resource = envelope.get("resource")
        if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise BadRequest("resource must be AEAD_AES_256_GCM")
        try:
            plain = self.aead.decrypt(text(resource, "nonce").encode(),
                                      base64.b64decode(text(resource, "ciphertext", 65536)),
                                      str(resource.get("associated_data", "")).encode())
        except Exception:
            raise BadSignature("resource does not decrypt with our API v3 key") from None
        fields = json_object(plain)
        if not same(str(fields.get("mchid", "")), self.mchid):
            raise Forbidden("notification for another mchid")
        if resource.get("original_type") == "refund":
            return refund_notification(envelope.get("event_type"), fields)
        return transaction_notification(fields)

    def answer(self, ok: bool) -> tuple[int, str]:
        return (204, "") if ok else (400, json.dumps({"code": "FAIL", "message": "refused"}))


def transaction_notification(transaction: dict) -> Notification:
    state = transaction.get("trade_state")
    return Notification(out_trade_no=text(transaction, "out_trade_no"),
                        trade_no=text(transaction, "transaction_id"),
                        amount=notified_total(transaction),
                        state="paid" if state == "SUCCESS" else
                        "closed" if state in CLOSED else "unpaid")


def refund_notification(event_type, refund: dict) -> RefundNotification:
    status = refund.get("refund_status")
    if status not in ("SUCCESS", "ABNORMAL", "CLOSED") or event_type != f"REFUND.{status}":
        raise BadRequest("refund_status missing, unknown, or not the event_type's")
    return RefundNotification(out_refund_no=text(refund, "out_refund_no"),
                              state=REFUND_STATES[status],
                              refund_id=text(refund, "refund_id"))


def notified_total(transaction: dict) -> int:
    amount = transaction.get("amount")
    value = amount.get("total") if isinstance(amount, dict) else None
    if type(value) is not int or value <= 0:  # not 100.0, True or "100": fen, as an integer
        raise BadRequest("amount.total missing or malformed")
    return value


def expected(verified: tuple[int, dict], status: int) -> dict:
    """A verified answer's JSON if it has `status`; a signed refusal raises ProviderRefused."""
    got, answer = verified
    if 400 <= got < 500:
        raise refusal(answer)
    if got != status:
        raise BadAnswer(f"HTTP {got}, not the documented {status}")
    return answer


def refusal(answer: dict) -> ProviderRefused:
    return ProviderRefused(str(answer.get("message") or answer["code"]))


def field(answer: dict, name: str) -> str:
    value = answer.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise BadAnswer(f"{name} missing or malformed")
    return value


def total(answer: dict) -> int:
    try:
        return notified_total(answer)
    except BadRequest:
        raise BadAnswer("amount.total missing or malformed") from None


def segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")
