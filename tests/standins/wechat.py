"""WeChat Pay API v3 on 127.0.0.1, as its documentation describes it: APP下单, 商户订单号查询订单,
关闭订单, 申请退款, 查询单笔退款, and the notifications of payments and refunds.

It checks our Authorization (WECHATPAY2-SHA256-RSA2048: our mchid, our certificate's serial, a
timestamp within five minutes, the signature with our merchant PUBLIC key over the request as
sent) and every field as WeChat Pay does, refuses with WeChat Pay's codes, keeps its orders and
refunds, and signs every answer with the platform key (but a SIGN_ERROR: WeChat Pay signs only
answers to requests whose signature it verified).
"""
import base64
import datetime
import json
import re
import secrets
import time
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.providers import new_key, rsa2
from tests.standins import StandIn, StandInHandler, send

WINDOW = 300  # seconds an Authorization's timestamp may be off (WeChat Pay: five minutes)
FORGER = new_key()  # signs answers under the bad_signature fault
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d")
AUTHORIZATION = re.compile(r'WECHATPAY2-SHA256-RSA2048 ((?:\w+="[^"]*",?)+)')


@dataclass
class PlacedOrder:
    fields: dict  # the order as placed: a repeat must say the same
    prepay_id: str
    expires: float
    state: str = "NOTPAY"
    transaction_id: str = ""
    refunded: int = 0  # fen, over every refund accepted
    payer_account_closed: bool = False  # the payer closed their WeChat account (注销)


@dataclass
class RefundRecord:
    fields: dict
    refund_id: str
    status: str
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S+08:00"))
    success_time: str = ""


def digits(prefix: str, length: int) -> str:
    """A number as WeChat Pay makes them (transaction_id 4200…, refund_id 50…)."""
    rest = length - len(prefix)
    return prefix + str(secrets.randbelow(10 ** rest)).zfill(rest)


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class WechatPayStandIn(StandIn):
    """WeChat Pay for the merchant `providers` describes; notifications go to `notify_url`."""

    def __init__(self, providers, notify_url: str, hang: float = 1.0):
        super().__init__([
            (r"/v3/pay/transactions/app", PlaceOrder),
            (r"/v3/pay/transactions/out-trade-no/([^/]+)", QueryOrder),
            (r"/v3/pay/transactions/out-trade-no/([^/]+)/close", CloseOrder),
            (r"/v3/refund/domestic/refunds", AskRefund),
            (r"/v3/refund/domestic/refunds/([^/]+)", QueryRefund),
        ], hang)
        self.providers, self.notify_url = providers, notify_url
        self.orders: dict[str, PlacedOrder] = {}
        self.refunds: dict[str, RefundRecord] = {}
        self.seen: list[dict] = []  # each request as it came (its Authorization parsed), in order
        self.frequency_limited = 0  # the next so many requests answer 429 FREQUENCY_LIMITED
        self.refund_starts = "PROCESSING"  # what a new refund answers; SUCCESS for 零钱 at once
        self.balance: int | None = None  # fen the merchant may refund from; None: enough

    def authorization_problem(self, request) -> str | None:
        """Why WeChat Pay would answer SIGN_ERROR to this request, or None."""
        match = AUTHORIZATION.fullmatch(request.headers.get("Authorization", ""))
        params = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) if match else {}
        self.seen.append({"method": request.method, "uri": request.uri, "body": request.body,
                          "headers": dict(request.headers), "authorization": params})
        if not match:
            return "Authorization is not WECHATPAY2-SHA256-RSA2048"
        if set(params) != {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}:
            return "Authorization lacks a parameter, or has one too many"
        if params["mchid"] != self.providers.wechat_mchid:
            return "mchid is not this merchant's"
        if params["serial_no"] != self.providers.wechat_merchant_serial:
            return "serial_no is not this merchant's certificate"
        stamp = params["timestamp"]
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > WINDOW:
            return "timestamp outside five minutes"
        signed = b"%s\n%s\n%s\n%s\n%s\n" % (
            request.method.encode(), request.uri.encode(), params["timestamp"].encode(),
            params["nonce_str"].encode(), request.body)
        try:
            self.providers.wechat_merchant_key.public_key().verify(
                base64.b64decode(params["signature"]), signed, padding.PKCS1v15(),
                hashes.SHA256())
        except (InvalidSignature, ValueError):
            return "signature does not verify with the merchant's certificate"
        return None

    # What happens at WeChat Pay between our calls

    async def pay(self, out_trade_no: str, prepay: dict | None = None, notify: bool = True):
        """The payer pays (with the app's pay parameters `prepay`, checked as the WeChat app
        checks them); then WeChat Pay notifies, unless `notify` is False (a lost notification).
        Return our answer to the notification, or None."""
        order = self.orders[out_trade_no]
        assert order.state == "NOTPAY" and time.time() < order.expires, "not payable"
        if prepay is not None:
            self.check_prepay(order, prepay)
        order.state, order.transaction_id = "SUCCESS", digits("4200", 28)
        if notify:
            total = order.fields["amount"]["total"]
            return await send(order.fields["notify_url"],
                              *self.providers.wechat(out_trade_no, total, order.transaction_id))
        return None

    def check_prepay(self, order: PlacedOrder, prepay: dict) -> None:
        assert (prepay["appid"], prepay["partnerid"], prepay["prepayid"], prepay["package"]) == \
            (self.providers.wechat_appid, self.providers.wechat_mchid, order.prepay_id,
             "Sign=WXPay")
        signed = "%s\n%s\n%s\n%s\n" % (prepay["appid"], prepay["timestamp"], prepay["noncestr"],
                                       prepay["prepayid"])
        self.providers.wechat_merchant_key.public_key().verify(
            base64.b64decode(prepay["sign"]), signed.encode(), padding.PKCS1v15(),
            hashes.SHA256())

    async def end_refund(self, out_refund_no: str, status: str = "SUCCESS",
                         notify: bool = True):
        """A refund still PROCESSING ends SUCCESS, ABNORMAL (the payer's card refused it) or
        CLOSED; WeChat Pay notifies the refund's notify_url. Return our answer, or None."""
        refund = self.refunds[out_refund_no]
        assert refund.status == "PROCESSING" and status in ("SUCCESS", "ABNORMAL", "CLOSED")
        refund.status = status
        if status == "CLOSED":  # the money stays with the merchant, refundable again
            self.orders[refund.fields["out_trade_no"]].refunded -= refund.fields["amount"]["refund"]
        if status == "SUCCESS":
            refund.success_time = time.strftime("%Y-%m-%dT%H:%M:%S+08:00")
        if notify and refund.fields.get("notify_url"):
            amount = refund.fields["amount"]
            return await send(refund.fields["notify_url"], *self.providers.wechat_refund(
                refund.fields["out_trade_no"], out_refund_no, amount["refund"], amount["total"],
                refund.refund_id, status))
        return None

    # What WeChat Pay answers

    def transaction(self, no: str, order: PlacedOrder) -> dict:
        answer = {"appid": order.fields["appid"], "mchid": order.fields["mchid"],
                  "out_trade_no": no, "trade_type": "APP", "trade_state": order.state,
                  "trade_state_desc": {"NOTPAY": "未支付", "SUCCESS": "支付成功",
                                       "CLOSED": "已关闭", "REFUND": "转入退款"}[order.state],
                  "amount": {"total": order.fields["amount"]["total"], "currency": "CNY"}}
        if order.transaction_id:
            answer.update(transaction_id=order.transaction_id, bank_type="OTHERS",
                          success_time=time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
                          payer={"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"})
            answer["amount"].update(payer_total=order.fields["amount"]["total"],
                                    payer_currency="CNY")
        return answer

    def refund_answer(self, refund: RefundRecord) -> dict:
        order = self.orders[refund.fields["out_trade_no"]]
        amount = refund.fields["amount"]
        answer = {"refund_id": refund.refund_id, "out_refund_no": refund.fields["out_refund_no"],
                  "transaction_id": order.transaction_id,
                  "out_trade_no": refund.fields["out_trade_no"], "channel": "ORIGINAL",
                  "user_received_account": "支付用户零钱", "create_time": refund.created,
                  "status": refund.status, "funds_account": "AVAILABLE",
                  "amount": {"total": amount["total"], "refund": amount["refund"],
                             "payer_total": amount["total"], "payer_refund": amount["refund"],
                             "settlement_total": amount["total"],
                             "settlement_refund": amount["refund"], "discount_refund": 0,
                             "currency": "CNY"}}
        if refund.success_time:
            answer["success_time"] = refund.success_time
        return answer


class WechatHandler(StandInHandler):
    """One API v3 endpoint: SIGN_ERROR unless our Authorization verifies, then `answer`."""

    call = ""

    async def prepare(self) -> None:
        await super().prepare()
        if self._finished:
            return
        problem = self.standin.authorization_problem(self.request)
        if problem:
            self.set_status(401)  # unsigned: WeChat Pay did not verify who asked
            self.finish({"code": "SIGN_ERROR", "message": problem})
            return
        if self.request.headers.get("Accept") != "application/json" \
                or not self.request.headers.get("User-Agent"):
            self.reply(400, {"code": "PARAM_ERROR",
                             "message": "Accept 须为 application/json，且须有 User-Agent"})
        elif self.standin.frequency_limited:
            self.standin.frequency_limited -= 1
            self.reply(429, {"code": "FREQUENCY_LIMITED", "message": "频率超限"})

    def body_fields(self) -> dict:
        if self.request.headers.get("Content-Type") != "application/json":
            raise Refusal(400, "PARAM_ERROR", "Content-Type 须为 application/json")
        try:
            fields = json.loads(self.request.body)
        except ValueError:
            raise Refusal(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
        if not isinstance(fields, dict):
            raise Refusal(400, "PARAM_ERROR", "请求体须为 JSON 对象")
        return fields

    async def handle(self, *args) -> None:
        try:
            status, answer = self.answer(*args)
        except Refusal as refused:
            status, answer = refused.status, {"code": refused.code, "message": refused.message}
        self.reply(status, answer)

    def answer(self, *args) -> tuple[int, dict | None]:
        raise NotImplementedError

    def reply(self, status: int, answer: dict | None) -> None:
        """Answer signed as WeChat Pay signs: `timestamp\\nnonce\\nbody\\n`, platform key."""
        body = json.dumps(answer, ensure_ascii=False) if answer is not None else ""
        stamp, nonce = str(int(time.time())), secrets.token_hex(16)
        key = self.standin.providers.wechat_key if self.signed_by_provider() else FORGER
        self.set_status(status)
        self.set_header("Request-ID", secrets.token_hex(16))
        self.set_header("Wechatpay-Timestamp", stamp)
        self.set_header("Wechatpay-Nonce", nonce)
        self.set_header("Wechatpay-Serial", self.standin.providers.wechat_platform_serial)
        self.set_header("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048")
        self.set_header("Wechatpay-Signature", rsa2(key, f"{stamp}\n{nonce}\n{body}\n"))
        if answer is None:
            self.clear_header("Content-Type")
            self.finish()
        else:
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(body.encode())

    def our_mchid(self, mchid) -> None:
        if mchid != self.standin.providers.wechat_mchid:
            raise Refusal(400, "PARAM_ERROR", "mchid 与请求头中的商户号不一致")

    def known_order(self, no: str) -> PlacedOrder:
        order = self.standin.orders.get(no)
        if order is None:
            raise Refusal(404, "ORDER_NOT_EXIST", "订单不存在")
        return order


class PlaceOrder(WechatHandler):
    async def post(self) -> None:
        await self.handle()

    def answer(self) -> tuple[int, dict]:
        fields = self.body_fields()
        self.record("place", fields)
        standin, providers = self.standin, self.standin.providers
        if fields.get("appid") != providers.wechat_appid \
                or fields.get("mchid") != providers.wechat_mchid:
            raise Refusal(400, "APPID_MCHID_NOT_MATCH", "AppID和mch_id不匹配")
        description, no = fields.get("description"), fields.get("out_trade_no")
        if not isinstance(description, str) or not 0 < len(description) <= 127:
            raise Refusal(400, "PARAM_ERROR", "description 须为 1 到 127 个字符")
        if not isinstance(no, str) or not OUT_TRADE_NO.fullmatch(no):
            raise Refusal(400, "PARAM_ERROR", "out_trade_no 须为 6 到 32 个数字、字母或 _-|*")
        expires = self.time_expire(fields.get("time_expire"))
        if fields.get("notify_url") != standin.notify_url:
            raise Refusal(400, "PARAM_ERROR", "notify_url 不是商户的通知地址")
        amount = fields.get("amount")
        if not isinstance(amount, dict) or type(amount.get("total")) is not int \
                or amount["total"] <= 0 or amount.get("currency", "CNY") != "CNY":
            raise Refusal(400, "PARAM_ERROR", "amount.total 须为正整数（分），currency 为 CNY")
        order = standin.orders.get(no)
        if order is None:
            order = standin.orders[no] = PlacedOrder(fields, "wx" + secrets.token_hex(16),
                                                     expires)
        elif order.state == "SUCCESS":
            raise Refusal(400, "ORDERPAID", "该订单已支付")
        elif order.state == "CLOSED":
            raise Refusal(400, "ORDER_CLOSED", "订单已关闭")
        elif order.fields != fields:  # a repeat must be the same order
            raise Refusal(403, "OUT_TRADE_NO_USED", "商户订单号重复")
        return 200, {"prepay_id": order.prepay_id}

    @staticmethod
    def time_expire(value) -> float:
        if value is None:
            return time.time() + 2 * 3600  # the prepay_id's two hours
        if not isinstance(value, str) or not RFC3339.fullmatch(value):
            raise Refusal(400, "PARAM_ERROR", "time_expire 须为 rfc3339 格式")
        expires = datetime.datetime.fromisoformat(value).timestamp()
        if expires <= time.time():
            raise Refusal(400, "PARAM_ERROR", "time_expire 已过期")
        return expires


class QueryOrder(WechatHandler):
    async def get(self, no: str) -> None:
        await self.handle(no)

    def answer(self, no: str) -> tuple[int, dict]:
        self.record("query", {"out_trade_no": no, "mchid": self.get_query_argument("mchid", "")})
        self.our_mchid(self.get_query_argument("mchid", None))
        return 200, self.standin.transaction(no, self.known_order(no))


class CloseOrder(WechatHandler):
    async def post(self, no: str) -> None:
        await self.handle(no)

    def answer(self, no: str) -> tuple[int, None]:
        fields = self.body_fields()
        self.record("close", {"out_trade_no": no, **fields})
        self.our_mchid(fields.get("mchid"))
        order = self.known_order(no)
        if order.state in ("SUCCESS", "REFUND"):
            raise Refusal(400, "ORDERPAID", "订单已支付，不能关单")
        if order.state == "CLOSED":
            raise Refusal(400, "ORDER_CLOSED", "订单已关闭")
        order.state = "CLOSED"
        return 204, None


class AskRefund(WechatHandler):
    async def post(self) -> None:
        await self.handle()

    def answer(self) -> tuple[int, dict]:
        fields = self.body_fields()
        self.record("refund", fields)
        standin = self.standin
        number, amount = fields.get("out_refund_no"), fields.get("amount")
        if not isinstance(number, str) or not OUT_REFUND_NO.fullmatch(number):
            raise Refusal(400, "PARAM_ERROR", "out_refund_no 须为 1 到 64 个数字、字母或 _-|*@")
        if not isinstance(amount, dict) or amount.get("currency") != "CNY" or any(
                type(amount.get(k)) is not int or amount[k] <= 0 for k in ("refund", "total")):
            raise Refusal(400, "PARAM_ERROR", "amount.refund、amount.total 须为正整数（分），"
                                              "currency 为 CNY")
        if "notify_url" in fields and fields["notify_url"] != standin.notify_url:
            raise Refusal(400, "PARAM_ERROR", "notify_url 不是商户的通知地址")
        known = standin.refunds.get(number)
        if known is not None:  # the same refund asked again: the same answer
            if known.fields != fields:
                raise Refusal(400, "INVALID_REQUEST", "退款单号已存在，且参数与原单不一致")
            return 200, standin.refund_answer(known)
        order = standin.orders.get(fields.get("out_trade_no"))
        if order is None:
            raise Refusal(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if order.state not in ("SUCCESS", "REFUND"):
            raise Refusal(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if amount["total"] != order.fields["amount"]["total"]:
            raise Refusal(400, "PARAM_ERROR", "订单金额与原订单不一致")
        if order.refunded + amount["refund"] > amount["total"]:
            raise Refusal(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        if order.payer_account_closed:
            raise Refusal(403, "USER_ACCOUNT_ABNORMAL", "退款请求失败，用户帐号已注销")
        if standin.balance is not None and standin.balance < amount["refund"]:
            raise Refusal(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")
        if standin.balance is not None:
            standin.balance -= amount["refund"]
        order.refunded += amount["refund"]
        order.state = "REFUND"
        refund = standin.refunds[number] = RefundRecord(fields, digits("50", 29),
                                                        standin.refund_starts)
        if refund.status == "SUCCESS":
            refund.success_time = refund.created
        return 200, standin.refund_answer(refund)


class QueryRefund(WechatHandler):
    async def get(self, number: str) -> None:
        await self.handle(number)

    def answer(self, number: str) -> tuple[int, dict]:
        self.record("query_refund", {"out_refund_no": number, **self.request.query_arguments})
        refund = self.standin.refunds.get(number)
        if refund is None:
            raise Refusal(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return 200, self.standin.refund_answer(refund)
