"""The UnionPay (银联) online gateway, version 5.1.0, as its documentation and SDK describe it.

Three endpoints: the app consume (`appTransReq.do`, answers a `tn`), the transaction query
(`queryTrans.do`) and background transactions (`backTransReq.do`, here the refund 退货). Each
checks what the gateway checks, refuses with the gateway's response codes (respCode), answers
`k=v&k=v` unencoded and signed with UnionPay's key, and keeps its transactions. The payer is
played by `pay`, `start_paying` and `decline`; the end of a refund by `end_refund`. Back
notifications go to the backUrl of each transaction, as the gateway sends them.
"""
import base64
import collections
import dataclasses
import datetime
import hashlib
import re
import secrets
import time
import urllib.parse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import NameOID

from tests.providers import new_key, rsa2
from tests.standins import StandIn, StandInHandler, send

APP_CONSUME, QUERY, BACK = ("/gateway/api/appTransReq.do", "/gateway/api/queryTrans.do",
                            "/gateway/api/backTransReq.do")
BEIJING = datetime.timezone(datetime.timedelta(hours=8))
ORDER_ID = re.compile(r"[0-9A-Za-z]{8,32}", re.ASCII)  # no "-" nor "_"
FEN = re.compile(r"[1-9][0-9]{0,11}", re.ASCII)
SUCCESS = "成功[0000000]"
CONSUME, REFUND = "01", "04"
PROCESSING = "05"  # 交易已受理，请稍后查询交易结果


class PaymentRefused(Exception):
    """What the payer's UnionPay control is told: no such order, paid already, or too late."""


class Refused(Exception):
    """The gateway answers `resp_code` with `resp_msg`, and does nothing."""

    def __init__(self, resp_code: str, resp_msg: str):
        super().__init__(f"{resp_code} {resp_msg}")
        self.resp_code, self.resp_msg = resp_code, resp_msg


@dataclasses.dataclass
class Transaction:
    """A consume (txnType 01) or a refund (04), named by our orderId, as the gateway keeps it."""

    txn_type: str
    order_id: str
    txn_time: str
    txn_amt: int
    back_url: str
    pay_timeout: str = ""  # consume: no payment after it
    orig_qry_id: str = ""  # refund: the consume's queryId
    tn: str = ""  # consume: what the app's control pays
    query_id: str = ""  # the gateway's number, once the transaction was tried
    ended_with: str = ""  # origRespCode once tried: 00 done, 05 processing, any other failed


def beijing_time(value: str) -> datetime.datetime:
    """YYYYMMDDhhmmss in Beijing time; ValueError for anything else."""
    if not re.fullmatch(r"[0-9]{14}", value, re.ASCII):
        raise ValueError(value)
    return datetime.datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING)


def digest(fields: dict) -> bytes:
    """What signMethod 01 signs: the SHA-256 hex digest of the sorted `k=v` but `signature`."""
    signed = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "signature")
    return hashlib.sha256(signed.encode()).hexdigest().encode()


def signed(fields: dict, key) -> dict:
    return {**fields, "signature": rsa2(key, digest(fields).decode())}


def certificate(key) -> str:
    """A certificate of `key` in PEM, standing in for the signPubKeyCert of 5.1.0 messages."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         "CFCA@China UnionPay Co.,Ltd.@00040000:SIGN@00000001")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))


class UnionPayGateway(StandIn):
    """UnionPay's gateway for one merchant: ours (merId, certId, our signing key's public half)."""

    def __init__(self, providers, hang: float = 1.0):
        super().__init__([(APP_CONSUME, AppConsume), (QUERY, Query), (BACK, Back)], hang)
        self.mer_id, self.cert_id = providers.unionpay_mer_id, providers.unionpay_cert_id
        self.key, self.forger = providers.unionpay_key, new_key()
        self.merchant_key = providers.unionpay_merchant_key.public_key()
        self.certificates = {id(key): certificate(key) for key in (self.key, self.forger)}
        self.transactions: dict[str, Transaction] = {}  # by orderId
        self.arrivals = 0  # requests that reached the gateway, faults or not
        self.answers: list[dict] = []  # every answer's fields, as sent
        self.notifications: list[tuple[dict, int, bytes]] = []  # (fields, answer's status, body)
        self.forced: collections.deque[tuple[str, str]] = collections.deque()

    def answer_next(self, resp_code: str, resp_msg: str) -> None:
        """Answer the next call, once its request is checked, with this code (signed) instead."""
        self.forced.append((resp_code, resp_msg))

    # What every request must be.

    def check(self, fields: dict, fixed: dict, required: tuple) -> None:
        for name, value in (("version", "5.1.0"), ("encoding", "UTF-8"), ("signMethod", "01")):
            if fields.get(name, "").upper() != value:
                raise Refused("10", f"报文格式错误[{name}]")
        for name in ("certId", "signature", "merId", "accessType", *fixed, *required):
            if not fields.get(name):
                raise Refused("13", f"报文交易要素缺失[{name}]")
        if fields["certId"] != self.cert_id:
            raise Refused("11", "验证签名失败[certId]")
        try:
            self.merchant_key.verify(base64.b64decode(fields["signature"], validate=True),
                                     digest(fields), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            raise Refused("11", "验证签名失败") from None
        if fields["merId"] != self.mer_id:
            raise Refused("31", "商户状态不正确")
        for name, allowed in fixed.items():
            if fields[name] not in allowed:
                raise Refused("10", f"报文格式错误[{name}]")
        self.check_formats(fields)

    def check_formats(self, fields: dict) -> None:
        def wrong(name):
            return Refused("10", f"报文格式错误[{name}]")

        if not ORDER_ID.fullmatch(fields["orderId"]):
            raise wrong("orderId")
        for name in ("txnTime", "payTimeout"):
            try:
                if name in fields:
                    beijing_time(fields[name])
            except ValueError:
                raise wrong(name) from None
        if "txnAmt" in fields and not FEN.fullmatch(fields["txnAmt"]):
            raise wrong("txnAmt")
        if fields.get("currencyCode", "156") != "156":
            raise wrong("currencyCode")
        if "backUrl" in fields and not re.match(r"https?://[^/?#]+/", fields["backUrl"]):
            raise wrong("backUrl")
        if "payTimeout" in fields and fields["payTimeout"] <= fields["txnTime"]:
            raise wrong("payTimeout")

    def answer(self, request: dict, answer: dict, forged: bool) -> str:
        """The answer's body: the request's own fields echoed, then `answer`, signed."""
        key = self.forger if forged else self.key
        echoed = ("version", "encoding", "signMethod", "txnType", "txnSubType", "bizType",
                  "accessType", "merId", "orderId", "txnTime")
        fields = signed({**{k: request[k] for k in echoed if k in request}, **answer,
                         "signPubKeyCert": self.certificates[id(key)]}, key)
        self.answers.append(fields)
        return "&".join(f"{k}={v}" for k, v in fields.items())  # unencoded, as the gateway does

    # The transactions.

    def consume(self, out_trade_no: str) -> Transaction:
        txn = self.transactions.get(out_trade_no)
        if txn is None or txn.txn_type != CONSUME:
            raise PaymentRefused("no such order")
        return txn

    def refunds_of(self, query_id: str) -> list[Transaction]:
        return [t for t in self.transactions.values()
                if t.txn_type == REFUND and t.orig_qry_id == query_id]

    def _try(self, out_trade_no: str, ended_with: str) -> Transaction:
        txn = self.consume(out_trade_no)
        if txn.ended_with in ("00", PROCESSING):
            raise PaymentRefused("paid already")
        if txn.pay_timeout and time.time() > beijing_time(txn.pay_timeout).timestamp():
            raise PaymentRefused("订单已超时")  # the gateway takes no money after payTimeout
        txn.query_id, txn.ended_with = digits(21), ended_with
        return txn

    async def pay(self, out_trade_no: str, notify: bool = True) -> str:
        """The payer pays with the tn: the consume succeeds, and is notified unless not to be
        (a lost notification). Returns its queryId."""
        txn = self._try(out_trade_no, "00")
        if notify:
            await self.notify(txn, "00")
        return txn.query_id

    def start_paying(self, out_trade_no: str) -> str:
        """A payment is made in time and is still being processed (origRespCode 05)."""
        return self._try(out_trade_no, PROCESSING).query_id

    def decline(self, out_trade_no: str, resp_code: str = "60") -> None:
        """The payer's bank says no (60: 交易失败). The gateway notifies no failed consume."""
        self._try(out_trade_no, resp_code)

    async def end_refund(self, out_refund_no: str, resp_code: str = "00",
                         notify: bool = True) -> None:
        """The refund ends, done (00) or failed, and its back notification is sent."""
        txn = self.transactions[out_refund_no]
        txn.ended_with = resp_code
        if notify:
            await self.notify(txn, resp_code)

    async def notify(self, txn: Transaction, resp_code: str) -> tuple[int, bytes]:
        """The back notification to the transaction's backUrl, form-encoded and signed."""
        now = datetime.datetime.now(BEIJING)
        fields = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01",
                  "txnType": txn.txn_type, "txnSubType": "01" if txn.txn_type == CONSUME else "00",
                  "bizType": "000201", "accessType": "0", "merId": self.mer_id,
                  "orderId": txn.order_id, "txnTime": txn.txn_time, "txnAmt": str(txn.txn_amt),
                  "currencyCode": "156", "queryId": txn.query_id, "traceNo": digits(6),
                  "traceTime": now.strftime("%m%d%H%M%S"), "settleAmt": str(txn.txn_amt),
                  "settleCurrencyCode": "156", "settleDate": now.strftime("%m%d"),
                  "respCode": resp_code, "respMsg": SUCCESS if resp_code == "00" else "交易失败",
                  "signPubKeyCert": self.certificates[id(self.key)]}
        if txn.txn_type == REFUND:
            fields["origQryId"] = txn.orig_qry_id
        fields = signed(fields, self.key)
        status, body = await send(txn.back_url, {
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
            urllib.parse.urlencode(fields).encode())
        self.notifications.append((fields, status, body))
        return status, body


class GatewayHandler(StandInHandler):
    """One endpoint: record, check, act or refuse, answer signed."""

    call = ""
    fixed: dict[str, tuple[str, ...]] = {}  # fields that have one of these values
    required: tuple[str, ...] = ()

    async def prepare(self) -> None:
        self.standin.arrivals += 1
        await super().prepare()

    def post(self) -> None:
        gateway: UnionPayGateway = self.standin
        try:
            fields = dict(urllib.parse.parse_qsl(self.request.body.decode("utf-8"),
                                                 keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            fields = {}
        self.record(self.call, fields)
        try:
            if not fields:
                raise Refused("10", "报文格式错误")
            gateway.check(fields, self.fixed, self.required)
            if gateway.forced:
                raise Refused(*gateway.forced.popleft())
            answer = {"respCode": "00", "respMsg": SUCCESS, **self.act(fields)}
        except Refused as refusal:
            answer = {"respCode": refusal.resp_code, "respMsg": refusal.resp_msg}
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(gateway.answer(fields, answer, forged=not self.signed_by_provider()))

    def act(self, fields: dict) -> dict:
        raise NotImplementedError


class AppConsume(GatewayHandler):
    call = "consume"
    fixed = {"txnType": ("01",), "txnSubType": ("01",), "bizType": ("000201",),
             "channelType": ("08",), "accessType": ("0",)}
    required = ("orderId", "txnTime", "txnAmt", "currencyCode", "backUrl")

    def act(self, fields: dict) -> dict:
        gateway: UnionPayGateway = self.standin
        if fields["orderId"] in gateway.transactions:
            raise Refused("12", "重复交易")
        txn = Transaction(CONSUME, fields["orderId"], fields["txnTime"], int(fields["txnAmt"]),
                          fields["backUrl"], pay_timeout=fields.get("payTimeout", ""),
                          tn=digits(21))
        gateway.transactions[txn.order_id] = txn
        return {"tn": txn.tn}


class Query(GatewayHandler):
    call = "query"
    fixed = {"txnType": ("00",), "txnSubType": ("00",), "bizType": ("000000",),
             "accessType": ("0",)}
    required = ("orderId", "txnTime")

    def act(self, fields: dict) -> dict:
        txn = self.standin.transactions.get(fields["orderId"])
        # A consume nobody has tried to pay yet is no transaction the gateway can find.
        if txn is None or txn.txn_time != fields["txnTime"] or not txn.ended_with:
            raise Refused("34", "查无此交易")
        return {"origRespCode": txn.ended_with,
                "origRespMsg": {"00": SUCCESS, PROCESSING: "交易已受理，请稍后查询交易结果"}.get(
                    txn.ended_with, "交易失败"),
                "queryId": txn.query_id, "txnAmt": str(txn.txn_amt), "currencyCode": "156",
                "settleAmt": str(txn.txn_amt), "settleCurrencyCode": "156"}


class Back(GatewayHandler):
    """Background transactions; this gateway plays the refund (退货, txnType 04)."""

    call = "refund"
    fixed = {"txnType": ("04",), "txnSubType": ("00",), "bizType": ("000201",),
             "channelType": ("07", "08"), "accessType": ("0",)}
    required = ("orderId", "origQryId", "txnTime", "txnAmt", "backUrl")

    def act(self, fields: dict) -> dict:
        gateway: UnionPayGateway = self.standin
        if fields["orderId"] in gateway.transactions:
            raise Refused("12", "重复交易")
        paid = [t for t in gateway.transactions.values() if t.txn_type == CONSUME
                and t.query_id == fields["origQryId"] and t.ended_with == "00"]
        if not paid:
            raise Refused("35", "原交易不存在或状态不正确")
        amount = int(fields["txnAmt"])
        refunded = sum(t.txn_amt for t in gateway.refunds_of(paid[0].query_id)
                       if t.ended_with in ("00", PROCESSING))
        if refunded + amount > paid[0].txn_amt:  # 退货总金额需要小于等于原消费
            raise Refused("36", "与原交易信息不符[退货金额超过原交易可退金额]")
        txn = Transaction(REFUND, fields["orderId"], fields["txnTime"], amount,
                          fields["backUrl"], orig_qry_id=paid[0].query_id, query_id=digits(21),
                          ended_with=PROCESSING)
        gateway.transactions[txn.order_id] = txn
        return {"queryId": txn.query_id, "origQryId": txn.orig_qry_id, "txnAmt": str(amount)}
