"""The payment providers: the order each app SDK takes, and each notification's verification.

Each provider is verified the way its documentation prescribes. Nothing here touches the
database; `rtserver.payments` decides what a verified notification does to money.
"""
import base64
import binascii
import datetime
import hashlib
import hmac
import json
import pathlib
import time
import urllib.parse
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rtserver.config import Settings
from rtserver.errors import BadRequest, Forbidden, RtError
from rtserver.integers import positive_integer
from rtserver.money import format_fen, parse_amount

WECHAT_REPLAY_WINDOW = 300  # seconds: WeChat Pay's notifications older or newer are refused
CHINA = datetime.timezone(datetime.timedelta(hours=8))


class BadSignature(RtError):
    code, default_message, http_status = "unauthorized", "signature does not verify", 401


@dataclass(frozen=True)
class Notification:
    """What a verified notification says: which order, which provider trade, how much, success."""

    out_trade_no: str
    trade_no: str
    amount: int
    success: bool


def same(given: str, expected: str) -> bool:
    """Compare in constant time; any text, not only ASCII, is a fair (and failing) guess."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _public_key(path: str):
    return serialization.load_pem_public_key(pathlib.Path(path).read_bytes())


def _private_key(path: str):
    return serialization.load_pem_private_key(pathlib.Path(path).read_bytes(), password=None)


def _rsa_verify(key, signature_b64: str, message: bytes) -> None:
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), message, padding.PKCS1v15(),
                   hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        raise BadSignature() from None


def _rsa_sign(key, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def sorted_pairs(fields: dict[str, str], leave_out: tuple[str, ...]) -> str:
    """`k=v&k=v` of the fields sorted by name: what Alipay and UnionPay sign."""
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k not in leave_out)


def _form(body: bytes) -> dict[str, str]:
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                       strict_parsing=bool(body), max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("body is not a form") from None
    return dict(pairs)


def _json(body: bytes) -> dict:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("body is not JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object")
    return value


def _text(fields: dict, name: str, max_len: int = 64) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise BadRequest(f"{name} missing or malformed")
    return value


class Alipay:
    name, pay_type = "alipay", 1
    answer_type = "text/plain"  # of the body `answer` gives
    SUCCESS = ("TRADE_SUCCESS", "TRADE_FINISHED")

    def __init__(self, app_id: str, alipay_public_key, merchant_private_key):
        self.app_id = app_id
        self.alipay_key, self.merchant_key = alipay_public_key, merchant_private_key

    def order(self, out_trade_no: str, amount: int, subject: str) -> dict:
        """The app-pay order string (alipay.trade.app.pay), signed RSA2 with our merchant key."""
        params = {
            "app_id": self.app_id, "method": "alipay.trade.app.pay", "format": "JSON",
            "charset": "utf-8", "sign_type": "RSA2", "version": "1.0",
            "timestamp": datetime.datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "biz_content": json.dumps({"out_trade_no": out_trade_no,
                                       "total_amount": format_fen(amount), "subject": subject,
                                       "product_code": "QUICK_MSECURITY_PAY"},
                                      ensure_ascii=False, separators=(",", ":")),
        }
        params["sign"] = _rsa_sign(self.merchant_key, sorted_pairs(params, ()).encode())
        return {"order_string": urllib.parse.urlencode(params)}

    def verify(self, headers, body: bytes) -> Notification:
        fields = _form(body)
        sign = _text(fields, "sign", 1024)
        if fields.get("sign_type", "RSA2") != "RSA2":
            raise BadSignature("only RSA2 signatures are accepted")
        _rsa_verify(self.alipay_key, sign, sorted_pairs(fields, ("sign", "sign_type")).encode())
        if not same(fields.get("app_id", ""), self.app_id):
            raise Forbidden("notification for another app_id")
        return Notification(out_trade_no=_text(fields, "out_trade_no"),
                            trade_no=_text(fields, "trade_no"),
                            amount=parse_amount(fields.get("total_amount")),
                            success=fields.get("trade_status") in self.SUCCESS)

    def answer(self, ok: bool) -> tuple[int, str]:
        return (200, "success") if ok else (400, "failure")


class WechatPay:
    name, pay_type = "wechat", 2
    answer_type = "application/json"  # of the body `answer` gives

    def __init__(self, mchid: str, apiv3_key: str, platform_public_key):
        self.mchid, self.platform_key = mchid, platform_public_key
        self.aead = AESGCM(apiv3_key.encode())

    def order(self, out_trade_no: str, amount: int, subject: str) -> dict:
        # The prepay call goes to WeChat Pay's servers; rtserver makes no outbound calls here.
        return {"prepay": None}

    def verify(self, headers, body: bytes) -> Notification:
        timestamp = headers.get("Wechatpay-Timestamp", "")
        nonce = headers.get("Wechatpay-Nonce", "")
        if not timestamp.isascii() or not timestamp.isdigit() or not nonce:
            raise BadSignature("Wechatpay-Timestamp and Wechatpay-Nonce are required")
        if abs(time.time() - int(timestamp)) > WECHAT_REPLAY_WINDOW:
            raise BadSignature("notification outside the 5-minute window")
        message = b"%s\n%s\n%s\n" % (timestamp.encode(), nonce.encode(), body)
        _rsa_verify(self.platform_key, headers.get("Wechatpay-Signature", ""), message)
        resource = _json(body).get("resource")
        if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise BadRequest("resource must be AEAD_AES_256_GCM")
        try:
            plain = self.aead.decrypt(_text(resource, "nonce").encode(),
                                      base64.b64decode(_text(resource, "ciphertext", 65536)),
                                      resource.get("associated_data", "").encode())
        except Exception:
            raise BadSignature("resource does not decrypt with our API v3 key") from None
        transaction = _json(plain)
        if not same(str(transaction.get("mchid", "")), self.mchid):
            raise Forbidden("notification for another mchid")
        total = (transaction.get("amount") or {}).get("total")
        if type(total) is not int or total <= 0:
            raise BadRequest("amount.total missing or malformed")
        return Notification(out_trade_no=_text(transaction, "out_trade_no"),
                            trade_no=_text(transaction, "transaction_id"), amount=total,
                            success=transaction.get("trade_state") == "SUCCESS")

    def answer(self, ok: bool) -> tuple[int, str]:
        return (204, "") if ok else (400, json.dumps({"code": "FAIL", "message": "refused"}))


class UnionPay:
    name, pay_type = "unionpay", 3
    answer_type = "text/plain"  # of the body `answer` gives
    CONSUME = "01"  # txnType of a payment; refunds and reversals are other types
    MOST_FEN = 999_999_999_999  # txnAmt is at most 12 digits

    def __init__(self, mer_id: str, unionpay_public_key):
        self.mer_id, self.key = mer_id, unionpay_public_key

    def order(self, out_trade_no: str, amount: int, subject: str) -> dict:
        # `tn` comes from the gateway's consume request, which is made outside rtserver.
        return {"tn": None}

    def verify(self, headers, body: bytes) -> Notification:
        fields = _form(body)
        digest = hashlib.sha256(sorted_pairs(fields, ("signature",)).encode()).hexdigest()
        _rsa_verify(self.key, _text(fields, "signature", 1024), digest.encode())
        # UnionPay signs every merchant's notifications with one key: the merchant must be us.
        if not same(fields.get("merId", ""), self.mer_id):
            raise Forbidden("notification for another merId")
        if fields.get("txnType") != self.CONSUME:
            raise BadRequest("not a payment (txnType 01)")
        txn_amt = positive_integer(fields.get("txnAmt"), self.MOST_FEN)
        if txn_amt is None:
            raise BadRequest("txnAmt missing or malformed")
        return Notification(out_trade_no=_text(fields, "orderId"),
                            trade_no=_text(fields, "queryId"), amount=txn_amt,
                            success=fields.get("respCode") == "00")

    def answer(self, ok: bool) -> tuple[int, str]:
        return (200, "ok") if ok else (400, "fail")


class Sandbox:
    name, pay_type = "sandbox", 4
    answer_type = "application/json"  # of the body `answer` gives

    def __init__(self, secret: str):
        self.secret = secret.encode()

    def sign(self, body: bytes) -> str:
        return hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def order(self, out_trade_no: str, amount: int, subject: str) -> dict:
        return {}

    def verify(self, headers, body: bytes) -> Notification:
        if not same(headers.get("X-Sandbox-Signature", ""), self.sign(body)):
            raise BadSignature()
        fields = _json(body)
        return Notification(out_trade_no=_text(fields, "out_trade_no"),
                            trade_no=_text(fields, "trade_no"),
                            amount=parse_amount(fields.get("amount")),
                            success=fields.get("status") == "SUCCESS")

    def answer(self, ok: bool) -> tuple[int, str]:
        return (204, "") if ok else (400, json.dumps({"code": "bad_request",
                                                      "message": "notification refused"}))


def load_providers(settings: Settings) -> dict:
    """The providers this server has keys for, by name."""
    found = {}
    if settings.alipay_app_id and settings.alipay_public_key_file and \
            settings.alipay_private_key_file:
        found["alipay"] = Alipay(settings.alipay_app_id,
                                 _public_key(settings.alipay_public_key_file),
                                 _private_key(settings.alipay_private_key_file))
    if settings.wechat_mchid and settings.wechat_apiv3_key and \
            settings.wechat_platform_public_key_file:
        found["wechat"] = WechatPay(settings.wechat_mchid, settings.wechat_apiv3_key,
                                    _public_key(settings.wechat_platform_public_key_file))
    if settings.unionpay_mer_id and settings.unionpay_public_key_file:
        found["unionpay"] = UnionPay(settings.unionpay_mer_id,
                                     _public_key(settings.unionpay_public_key_file))
    if settings.sandbox_secret:
        found["sandbox"] = Sandbox(settings.sandbox_secret)
    return found
