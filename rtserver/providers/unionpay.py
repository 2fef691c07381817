"""UnionPay (银联) gateway: the app consume, and the back notification's verification."""
import hashlib

from rtserver.config import Settings
from rtserver.errors import BadRequest, Forbidden
from rtserver.integers import positive_integer
from rtserver.providers.signing import form, public_key, rsa_verify, same, sorted_pairs, text
from rtserver.providers.trades import Notification, Order
from storage.schema import PayType


class UnionPay:
    name, pay_type = "unionpay", PayType.UNIONPAY
    answer_type = "text/plain"  # of the body `answer` gives
    CONSUME = "01"  # txnType of a payment; refunds and reversals are other types
    MOST_FEN = 999_999_999_999  # txnAmt is at most 12 digits

    def __init__(self, mer_id: str, unionpay_public_key):
        self.mer_id, self.key = mer_id, unionpay_public_key

    @classmethod
    def from_settings(cls, settings: Settings) -> "UnionPay | None":
        if not (settings.unionpay_mer_id and settings.unionpay_public_key_file):
            return None
        return cls(settings.unionpay_mer_id, public_key(settings.unionpay_public_key_file))

    @property
    def places_orders(self) -> bool:
        """Whether this server calls the gateway (consume, query, refund)."""
        return False

    async def place(self, order: Order) -> str:
        return ""

    def app_params(self, order: Order, placed: str) -> dict:
        return {"tn": placed or None}

    def verify(self, headers, body: bytes) -> Notification:
        fields = form(body)
        digest = hashlib.sha256(sorted_pairs(fields, ("signature",)).encode()).hexdigest()
        rsa_verify(self.key, text(fields, "signature", 1024), digest.encode())
        # UnionPay signs every merchant's notifications with one key: the merchant must be us.
        if not same(fields.get("merId", ""), self.mer_id):
            raise Forbidden("notification for another merId")
        if fields.get("txnType") != self.CONSUME:
            raise BadRequest("not a payment (txnType 01)")
        txn_amt = positive_integer(fields.get("txnAmt"), self.MOST_FEN)
        if txn_amt is None:
            raise BadRequest("txnAmt missing or malformed")
        # A back notification is sent for a consume that succeeded; any other respCode is one
        # that failed, and will not be paid.
        return Notification(out_trade_no=text(fields, "orderId"),
                            trade_no=text(fields, "queryId"), amount=txn_amt,
                            state="paid" if fields.get("respCode") == "00" else "closed")

    def answer(self, ok: bool) -> tuple[int, str]:
        return (200, "ok") if ok else (400, "fail")
