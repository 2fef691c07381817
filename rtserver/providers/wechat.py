"""WeChat Pay (微信支付) API v3: the APP order, and the notification's verification."""
import base64
import json
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rtserver.config import Settings
from rtserver.errors import BadRequest, Forbidden
from rtserver.providers.signing import json_object, public_key, rsa_verify, same, text
from rtserver.providers.trades import BadSignature, Notification, Order
from storage.schema import PayType

REPLAY_WINDOW = 300  # seconds: WeChat Pay's notifications older or newer are refused


class WechatPay:
    name, pay_type = "wechat", PayType.WECHAT
    answer_type = "application/json"  # of the body `answer` gives
    CLOSED = ("CLOSED", "REVOKED", "PAYERROR")  # trade states that will never be paid

    def __init__(self, mchid: str, apiv3_key: str, platform_public_key):
        self.mchid, self.platform_key = mchid, platform_public_key
        self.aead = AESGCM(apiv3_key.encode())

    @classmethod
    def from_settings(cls, settings: Settings) -> "WechatPay | None":
        if not (settings.wechat_mchid and settings.wechat_apiv3_key
                and settings.wechat_platform_public_key_file):
            return None
        return cls(settings.wechat_mchid, settings.wechat_apiv3_key,
                   public_key(settings.wechat_platform_public_key_file))

    @property
    def places_orders(self) -> bool:
        """Whether this server calls WeChat Pay (order, query, close, refund)."""
        return False

    async def place(self, order: Order) -> str:
        return ""

    def app_params(self, order: Order, placed: str) -> dict:
        return {"prepay": None}

    def verify(self, headers, body: bytes) -> Notification:
        timestamp = headers.get("Wechatpay-Timestamp", "")
        nonce = headers.get("Wechatpay-Nonce", "")
        if not timestamp.isascii() or not timestamp.isdigit() or not nonce:
            raise BadSignature("Wechatpay-Timestamp and Wechatpay-Nonce are required")
        if abs(time.time() - int(timestamp)) > REPLAY_WINDOW:
            raise BadSignature("notification outside the 5-minute window")
        message = b"%s\n%s\n%s\n" % (timestamp.encode(), nonce.encode(), body)
        rsa_verify(self.platform_key, headers.get("Wechatpay-Signature", ""), message)
        resource = json_object(body).get("resource")
        if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise BadRequest("resource must be AEAD_AES_256_GCM")
        try:
            plain = self.aead.decrypt(text(resource, "nonce").encode(),
                                      base64.b64decode(text(resource, "ciphertext", 65536)),
                                      resource.get("associated_data", "").encode())
        except Exception:
            raise BadSignature("resource does not decrypt with our API v3 key") from None
        transaction = json_object(plain)
        if not same(str(transaction.get("mchid", "")), self.mchid):
            raise Forbidden("notification for another mchid")
        total = (transaction.get("amount") or {}).get("total")
        if type(total) is not int or total <= 0:
            raise BadRequest("amount.total missing or malformed")
        state = transaction.get("trade_state")
        return Notification(out_trade_no=text(transaction, "out_trade_no"),
                            trade_no=text(transaction, "transaction_id"), amount=total,
                            state="paid" if state == "SUCCESS" else
                            "closed" if state in self.CLOSED else "unpaid")

    def answer(self, ok: bool) -> tuple[int, str]:
        return (204, "") if ok else (400, json.dumps({"code": "FAIL", "message": "refused"}))
