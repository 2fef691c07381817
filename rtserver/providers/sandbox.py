"""The built-in sandbox provider, for development and tests: HMAC-signed JSON notifications."""
import hashlib
import hmac
import json

from rtserver.config import Settings
from rtserver.money import parse_amount
from rtserver.providers.signing import json_object, same, text
from rtserver.providers.trades import BadSignature, Notification, Order
from storage.schema import PayType


class Sandbox:
    name, pay_type = "sandbox", PayType.SANDBOX
    answer_type = "application/json"  # of the body `answer` gives
    places_orders = False  # nothing to call: the --dev gateway is rtserver itself

    def __init__(self, secret: str):
        self.secret = secret.encode()

    @classmethod
    def from_settings(cls, settings: Settings) -> "Sandbox | None":
        return cls(settings.sandbox_secret) if settings.sandbox_secret else None

    def sign(self, body: bytes) -> str:
        return hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    async def place(self, order: Order) -> str:
        return ""

    def app_params(self, order: Order, placed: str) -> dict:
        return {}

    def verify(self, headers, body: bytes) -> Notification:
        if not same(headers.get("X-Sandbox-Signature", ""), self.sign(body)):
            raise BadSignature()
        fields = json_object(body)
        status = fields.get("status")
        return Notification(out_trade_no=text(fields, "out_trade_no"),
                            trade_no=text(fields, "trade_no"),
                            amount=parse_amount(fields.get("amount")),
                            state="paid" if status == "SUCCESS" else
                            "closed" if status == "FAILED" else "unpaid")

    def answer(self, ok: bool) -> tuple[int, str]:
        return (204, "") if ok else (400, json.dumps({"code": "bad_request",
                                                      "message": "notification refused"}))
