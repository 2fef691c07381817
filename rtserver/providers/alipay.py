"""Alipay (支付宝): the app-pay order string, and the asynchronous notification's verification."""
import datetime
import json
import urllib.parse

from rtserver.config import Settings
from rtserver.errors import Forbidden
from rtserver.money import format_fen, parse_amount
from rtserver.providers.signing import (form, private_key, public_key, rsa_sign, rsa_verify,
                                         same, sorted_pairs, text)
from rtserver.providers.trades import CHINA, BadSignature, Notification, Order
from storage.schema import PayType


class Alipay:
    name, pay_type = "alipay", PayType.ALIPAY
    answer_type = "text/plain"  # of the body `answer` gives
    SUCCESS = ("TRADE_SUCCESS", "TRADE_FINISHED")
    CLOSED = ("TRADE_CLOSED",)

    def __init__(self, app_id: str, alipay_public_key, merchant_private_key):
        self.app_id = app_id
        self.alipay_key, self.merchant_key = alipay_public_key, merchant_private_key

    @classmethod
    def from_settings(cls, settings: Settings) -> "Alipay | None":
        if not (settings.alipay_app_id and settings.alipay_public_key_file
                and settings.alipay_private_key_file):
            return None
        return cls(settings.alipay_app_id, public_key(settings.alipay_public_key_file),
                   private_key(settings.alipay_private_key_file))

    @property
    def places_orders(self) -> bool:
        """Whether this server calls Alipay's gateway (query, close, refund)."""
        return False

    async def place(self, order: Order) -> str:
        return ""  # the app SDK places the order with the order string itself

    def app_params(self, order: Order, placed: str) -> dict:
        """The app-pay order string (alipay.trade.app.pay), signed RSA2 with our merchant key."""
        params = {
            "app_id": self.app_id, "method": "alipay.trade.app.pay", "format": "JSON",
            "charset": "utf-8", "sign_type": "RSA2", "version": "1.0",
            "timestamp": datetime.datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "biz_content": json.dumps({"out_trade_no": order.out_trade_no,
                                       "total_amount": format_fen(order.amount),
                                       "subject": order.subject,
                                       "product_code": "QUICK_MSECURITY_PAY"},
                                      ensure_ascii=False, separators=(",", ":")),
        }
        params["sign"] = rsa_sign(self.merchant_key, sorted_pairs(params, ()).encode())
        return {"order_string": urllib.parse.urlencode(params)}

    def verify(self, headers, body: bytes) -> Notification:
        fields = form(body)
        sign = text(fields, "sign", 1024)
        if fields.get("sign_type", "RSA2") != "RSA2":
            raise BadSignature("only RSA2 signatures are accepted")
        rsa_verify(self.alipay_key, sign, sorted_pairs(fields, ("sign", "sign_type")).encode())
        if not same(fields.get("app_id", ""), self.app_id):
            raise Forbidden("notification for another app_id")
        status = fields.get("trade_status")
        return Notification(out_trade_no=text(fields, "out_trade_no"),
                            trade_no=text(fields, "trade_no"),
                            amount=parse_amount(fields.get("total_amount")),
                            state="paid" if status in self.SUCCESS else
                            "closed" if status in self.CLOSED else "unpaid")

    def answer(self, ok: bool) -> tuple[int, str]:
        return (200, "success") if ok else (400, "failure")
