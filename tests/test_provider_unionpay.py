"""UnionPay (银联) gateway 5.1.0 round trips: the provider called directly against its stand-in.

Each test says what the gateway received (the stand-in checks our signature with our merchant
public key, and every field as the gateway does) and what rtserver concluded from its answer.
"""
import asyncio
import base64
import dataclasses
import datetime
import hashlib
import itertools
import secrets
import time
import zoneinfo

import pytest
import tornado.httpserver
import tornado.web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from tornado.testing import bind_unused_port

from rtserver.config import Settings
from rtserver.errors import BadRequest, Forbidden, RtError
from rtserver.providers.calls import BadAnswer, ProviderDown, ProviderRefused, Reply
from rtserver.providers.trades import (BadSignature, Notification, Order, Refund, RefundAnswer,
                                       RefundNotification, Trade)
from rtserver.providers.unionpay import CLOCK_SLACK, UnionPay, answer_fields
from tests.providers import new_key
from tests.standins.unionpay import PaymentRefused, UnionPayGateway, signed

NOWHERE = "http://127.0.0.1:9"
NUMBERS = itertools.count(1)
UNPAYABLE = 2 * CLOCK_SLACK  # seconds past payTimeout after which nothing can be paid


class Merchant(tornado.web.RequestHandler):
    """Our notify URL: what the gateway's back notifications made of, once verified."""

    def initialize(self, inbox: "Inbox") -> None:
        self.inbox = inbox

    def post(self) -> None:
        provider = self.inbox.provider
        try:
            self.inbox.heard.append(provider.verify(self.request.headers, self.request.body))
            status, body = provider.answer(True)
        except RtError:
            status, body = provider.answer(False)
        self.set_status(status)
        self.finish(body)


class Inbox:
    def __init__(self):
        self.provider: UnionPay | None = None
        self.heard: list = []
        sock, port = bind_unused_port()
        self.server = tornado.httpserver.HTTPServer(tornado.web.Application(
            [("/pay/notify/unionpay", Merchant, {"inbox": self})]))
        self.server.add_sockets([sock])
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
def gateway(io_loop, providers):
    standin = UnionPayGateway(providers, hang=1.0)
    standin.start()
    yield standin
    standin.stop()


@pytest.fixture
def inbox(io_loop):
    box = Inbox()
    yield box
    box.server.stop()


def settings_for(providers, folder, gateway_url: str, public_url: str) -> Settings:
    return Settings(**providers.settings(folder), provider_timeout=0.3,
                    **providers.round_trip_settings(folder, wechat=NOWHERE, alipay=NOWHERE,
                                                    unionpay=gateway_url, public_url=public_url))


@pytest.fixture
def unionpay(gateway, inbox, providers, tmp_path) -> UnionPay:
    provider = UnionPay.from_settings(settings_for(providers, tmp_path, gateway.url, inbox.url))
    inbox.provider = provider
    return provider


def new_order(amount: int = 123, created: int | None = None,
              expires: int | None = None) -> Order:
    created = int(time.time()) if created is None else created
    return Order(out_trade_no=f"RP{next(NUMBERS)}T{secrets.token_hex(6)}", amount=amount,
                 subject="红包", created=created, expires=created + 1800 if expires is None
                 else expires)


def overdue_order(amount: int = 123) -> Order:
    """An order whose payTimeout passed long enough ago that nothing can pay it."""
    now = int(time.time())
    return new_order(amount, created=now - 3600, expires=now - UNPAYABLE)


def refund_of(order: Order, query_id: str, amount: int | None = None) -> Refund:
    return Refund(out_refund_no=f"RF{next(NUMBERS):010d}L{secrets.token_hex(5)}",
                  order=dataclasses.replace(order, trade_no=query_id),
                  amount=order.amount if amount is None else amount, created=int(time.time()))


async def paid_order(gateway, unionpay, amount: int = 500) -> tuple[Order, str]:
    order = new_order(amount)
    await unionpay.place(order)
    return order, await gateway.pay(order.out_trade_no, notify=False)


def beijing(epoch: int) -> str:
    """Beijing time as the tz database has it: a check independent of rtserver's."""
    return datetime.datetime.fromtimestamp(epoch, zoneinfo.ZoneInfo("Asia/Shanghai")).strftime(
        "%Y%m%d%H%M%S")


def signed_by_us(providers, fields: dict) -> bool:
    """Whether `signature` is our merchant key's signMethod 01 signature of the other fields."""
    string = "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "signature")
    hex_digest = hashlib.sha256(string.encode()).hexdigest().encode()
    providers.unionpay_merchant_key.public_key().verify(
        base64.b64decode(fields["signature"]), hex_digest, padding.PKCS1v15(), hashes.SHA256())
    return True


def without_signature(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if k != "signature"}


# Placing the order

@pytest.mark.gen_test
async def test_place_sends_the_signed_app_consume_and_returns_its_tn(gateway, unionpay, inbox,
                                                                      providers):
    order = new_order(1234, created=1700000000, expires=1700001800)
    tn = await unionpay.place(order)
    sent, = gateway.calls("consume")
    assert without_signature(sent) == {
        "version": "5.1.0", "encoding": "UTF-8", "signMethod": "01",
        "certId": providers.unionpay_cert_id, "txnType": "01", "txnSubType": "01",
        "bizType": "000201", "channelType": "08", "accessType": "0",
        "merId": providers.unionpay_mer_id, "orderId": order.out_trade_no,
        "txnTime": "20231115061320", "txnAmt": "1234", "currencyCode": "156",
        "backUrl": inbox.url + "/pay/notify/unionpay", "payTimeout": "20231115064320"}
    assert (sent["txnTime"], sent["payTimeout"]) == (beijing(order.created),
                                                     beijing(order.expires))
    assert signed_by_us(providers, sent)
    assert tn == gateway.transactions[order.out_trade_no].tn and len(tn) == 21
    assert unionpay.app_params(order, tn) == {"tn": tn}


def test_app_params_without_a_tn_are_null():
    assert UnionPay("777290058110048", new_key().public_key()).app_params(
        new_order(), "") == {"tn": None}


@pytest.mark.gen_test
async def test_an_order_placed_twice_is_refused_by_the_gateway_with_its_message(gateway,
                                                                             unionpay):
    order = new_order()
    await unionpay.place(order)
    with pytest.raises(ProviderRefused) as refused:
        await unionpay.place(order)
    assert refused.value.message == "UnionPay 12 重复交易"
    assert len(gateway.calls("consume")) == 2


@pytest.mark.gen_test
async def test_a_refusal_carries_the_gateways_code_and_message(gateway, unionpay):
    gateway.answer_next("31", "商户状态不正确")
    with pytest.raises(ProviderRefused) as refused:
        await unionpay.place(new_order())
    assert refused.value.message == "UnionPay 31 商户状态不正确"
    assert gateway.arrivals == 1  # a refusal is an answer: not asked again


@pytest.mark.gen_test
async def test_an_answer_with_no_outcome_yet_is_unavailable_not_a_refusal(gateway, unionpay):
    gateway.answer_next("03", "交易通讯超时，请发起查询交易")
    with pytest.raises(ProviderDown) as down:
        await unionpay.place(new_order())
    assert "03" in down.value.message and not isinstance(down.value, ProviderRefused)


def test_without_our_key_cert_id_or_public_url_no_call_is_made(providers, tmp_path):
    full = settings_for(providers, tmp_path, NOWHERE, "https://rt.example")
    assert UnionPay.from_settings(full).places_orders
    for missing in ({"unionpay_private_key_file": ""}, {"unionpay_cert_id": ""},
                    {"public_url": ""}):
        provider = UnionPay.from_settings(dataclasses.replace(full, **missing))
        assert not provider.places_orders and provider.caller is None, missing
        assert asyncio.run(provider.place(new_order())) == ""
    assert UnionPay.from_settings(dataclasses.replace(full, unionpay_mer_id="")) is None


# Asking about the payment

@pytest.mark.gen_test
async def test_query_of_a_paid_order_gives_its_query_id_and_amount(gateway, unionpay, providers):
    order, query_id = await paid_order(gateway, unionpay, 888)
    assert await unionpay.query(order) == Trade("paid", query_id, 888)
    sent, = gateway.calls("query")
    assert without_signature(sent) == {
        "version": "5.1.0", "encoding": "UTF-8", "signMethod": "01",
        "certId": providers.unionpay_cert_id, "txnType": "00", "txnSubType": "00",
        "bizType": "000000", "accessType": "0", "merId": providers.unionpay_mer_id,
        "orderId": order.out_trade_no, "txnTime": beijing(order.created)}
    assert signed_by_us(providers, sent)


@pytest.mark.gen_test
async def test_query_of_an_order_not_paid_yet_is_unpaid(gateway, unionpay):
    untried, paying = new_order(), new_order()
    for order in (untried, paying):
        await unionpay.place(order)
    gateway.start_paying(paying.out_trade_no)
    assert await unionpay.query(untried) == Trade("unpaid")  # 34: nobody tried to pay it yet
    assert await unionpay.query(paying) == Trade("unpaid")  # origRespCode 05: processing
    assert [a["respCode"] for a in gateway.answers[-2:]] == ["34", "00"]


@pytest.mark.gen_test
async def test_query_of_a_failed_or_unpayable_order_is_closed(gateway, unionpay):
    declined = new_order()
    await unionpay.place(declined)
    gateway.decline(declined.out_trade_no)
    assert await unionpay.query(declined) == Trade("closed")
    overdue = overdue_order()
    await unionpay.place(overdue)
    with pytest.raises(PaymentRefused):  # the gateway takes nothing after payTimeout
        await gateway.pay(overdue.out_trade_no)
    assert await unionpay.query(overdue) == Trade("closed")
    assert gateway.answers[-1]["respCode"] == "34"


@pytest.mark.gen_test
async def test_a_query_answered_about_another_order_is_not_believed(gateway, unionpay,
                                                                    providers):
    answer = signed({"merId": providers.unionpay_mer_id, "orderId": "RP1Tsomeoneelse",
                     "respCode": "00", "origRespCode": "00", "queryId": "1" * 21,
                     "txnAmt": "100"}, providers.unionpay_key)
    body = "&".join(f"{k}={v}" for k, v in answer.items()).encode()
    with pytest.raises(BadAnswer):
        unionpay._verified(Reply(200, {}, body), "RP1Tmine00000")
    assert unionpay._verified(Reply(200, {}, body), "RP1Tsomeoneelse")["queryId"] == "1" * 21


# Closing: UnionPay has none, payTimeout does it

@pytest.mark.gen_test
async def test_close_before_pay_timeout_is_unpaid_and_the_payer_may_still_pay(gateway, unionpay):
    order = new_order(300)
    await unionpay.place(order)
    assert await unionpay.close(order) == Trade("unpaid")
    gateway.decline(order.out_trade_no)  # a first try fails; the tn is good until payTimeout
    assert await unionpay.close(order) == Trade("unpaid")
    query_id = await gateway.pay(order.out_trade_no, notify=False)
    assert await unionpay.close(order) == Trade("paid", query_id, 300)


@pytest.mark.gen_test
async def test_close_after_pay_timeout_is_closed_and_nothing_can_pay_it(gateway, unionpay):
    order = overdue_order()
    await unionpay.place(order)
    assert await unionpay.close(order) == Trade("closed")
    with pytest.raises(PaymentRefused):
        await gateway.pay(order.out_trade_no)
    assert await unionpay.close(order) == Trade("closed")


@pytest.mark.gen_test
async def test_close_after_pay_timeout_waits_for_a_payment_made_in_time(gateway, unionpay):
    order = new_order()
    await unionpay.place(order)
    gateway.start_paying(order.out_trade_no)
    late = dataclasses.replace(order, expires=int(time.time()) - UNPAYABLE)
    assert await unionpay.close(late) == Trade("unpaid")  # 05: it may still succeed


@pytest.mark.gen_test
async def test_close_of_a_paid_order_is_paid(gateway, unionpay):
    order, query_id = await paid_order(gateway, unionpay, 250)
    late = dataclasses.replace(order, expires=int(time.time()) - UNPAYABLE)
    assert await unionpay.close(late) == Trade("paid", query_id, 250)


# Refunds

@pytest.mark.gen_test
async def test_refund_is_pending_then_succeeds_by_notification_and_query(gateway, unionpay,
                                                                         inbox, providers):
    order, query_id = await paid_order(gateway, unionpay, 500)
    refund = refund_of(order, query_id)
    answer = await unionpay.refund(refund)
    at_gateway = gateway.transactions[refund.out_refund_no]
    assert answer == RefundAnswer("pending", at_gateway.query_id, "00 成功[0000000]")
    sent, = gateway.calls("refund")
    assert without_signature(sent) == {
        "version": "5.1.0", "encoding": "UTF-8", "signMethod": "01",
        "certId": providers.unionpay_cert_id, "txnType": "04", "txnSubType": "00",
        "bizType": "000201", "channelType": "07", "accessType": "0",
        "merId": providers.unionpay_mer_id, "orderId": refund.out_refund_no,
        "origQryId": query_id, "txnAmt": "500", "txnTime": beijing(refund.created),
        "backUrl": inbox.url + "/pay/notify/unionpay"}
    assert signed_by_us(providers, sent)
    assert (await unionpay.query_refund(refund)).state == "pending"
    await gateway.end_refund(refund.out_refund_no)
    assert inbox.heard == [RefundNotification(refund.out_refund_no, "succeeded",
                                              at_gateway.query_id)]
    assert gateway.notifications[-1][1:] == (200, b"ok")
    assert await unionpay.query_refund(refund) == RefundAnswer(
        "succeeded", at_gateway.query_id, "00 成功[0000000]")
    asked = gateway.calls("query")[-1]
    assert (asked["orderId"], asked["txnTime"]) == (refund.out_refund_no,
                                                    beijing(refund.created))


@pytest.mark.gen_test
async def test_refund_that_fails_is_failed_by_notification_and_query(gateway, unionpay, inbox):
    order, query_id = await paid_order(gateway, unionpay)
    refund = refund_of(order, query_id)
    assert (await unionpay.refund(refund)).state == "pending"
    await gateway.end_refund(refund.out_refund_no, "01")
    assert [(n.out_refund_no, n.state) for n in inbox.heard] == [(refund.out_refund_no,
                                                                 "failed")]
    assert (await unionpay.query_refund(refund)).state == "failed"


@pytest.mark.gen_test
async def test_a_refund_asked_again_is_found_not_made_twice(gateway, unionpay):
    order, query_id = await paid_order(gateway, unionpay)
    refund = refund_of(order, query_id)
    first = await unionpay.refund(refund)
    again = await unionpay.refund(refund)  # 12, then its query: still processing
    assert (again.state, again.refund_id) == (first.state, first.refund_id) == (
        "pending", gateway.transactions[refund.out_refund_no].query_id)
    await gateway.end_refund(refund.out_refund_no, notify=False)
    assert (await unionpay.refund(refund)).state == "succeeded"
    assert [a["respCode"] for a in gateway.answers if "origQryId" in a] == ["00"]
    assert len(gateway.refunds_of(query_id)) == 1


@pytest.mark.gen_test
async def test_refunds_never_take_back_more_than_was_paid(gateway, unionpay):
    order, query_id = await paid_order(gateway, unionpay, 300)
    for amount in (100, 200):
        assert (await unionpay.refund(refund_of(order, query_id, amount))).state == "pending"
    with pytest.raises(ProviderRefused) as refused:
        await unionpay.refund(refund_of(order, query_id, 1))
    assert refused.value.message.startswith("UnionPay 36 ")
    assert sum(t.txn_amt for t in gateway.refunds_of(query_id)) == 300


@pytest.mark.gen_test
async def test_refund_of_a_payment_the_gateway_does_not_know_is_refused(gateway, unionpay):
    order, _ = await paid_order(gateway, unionpay)
    with pytest.raises(ProviderRefused) as refused:
        await unionpay.refund(refund_of(order, "9" * 21))
    assert refused.value.message == "UnionPay 35 原交易不存在或状态不正确"


# Notifications

@pytest.mark.gen_test
async def test_the_payments_back_notification_is_verified_and_answered(gateway, unionpay, inbox):
    order = new_order(777)
    await unionpay.place(order)
    query_id = await gateway.pay(order.out_trade_no)
    assert inbox.heard == [Notification(order.out_trade_no, query_id, 777, "paid")]
    assert gateway.notifications[-1][1:] == (200, b"ok")


def test_refund_notifications_are_verified_like_payments(providers):
    provider = UnionPay(providers.unionpay_mer_id, providers.unionpay_key.public_key())
    heard = provider.verify({}, providers.unionpay_refund("RF0000000123E", 150, "1" * 21,
                                                          query_id="2" * 21)[1])
    assert heard == RefundNotification("RF0000000123E", "succeeded", "2" * 21)
    failed = provider.verify({}, providers.unionpay_refund("RF0000000124E", 150, "1" * 21,
                                                           resp_code="01")[1])
    assert failed.state == "failed"
    refused = {
        BadSignature: providers.unionpay_refund("RF0000000123E", 150, "1" * 21, key=new_key()),
        Forbidden: providers.unionpay_refund("RF0000000123E", 150, "1" * 21,
                                             mer_id="898000000000001"),
        BadRequest: providers.unionpay("RF0000000123E", 150, txn_type="04"),  # no origQryId
    }
    for error, (headers, body) in refused.items():
        with pytest.raises(error):
            provider.verify(headers, body)
    with pytest.raises(BadRequest):  # a consume's undo (消费撤销) is neither
        provider.verify({}, providers.unionpay("RP1T00000000", 150, txn_type="31")[1])


# Faults

@pytest.mark.gen_test
@pytest.mark.parametrize("fault", ["timeout", "5xx", "drop"])
async def test_a_gateway_that_fails_is_tried_three_times_then_unavailable(gateway, unionpay,
                                                                          fault):
    gateway.misbehave(fault, 3)
    with pytest.raises(ProviderDown):
        await unionpay.place(new_order())
    assert gateway.arrivals == 3
    if fault == "timeout":
        await asyncio.sleep(gateway.hang)  # let the late answers go nowhere before the end


@pytest.mark.gen_test
async def test_a_forged_answer_is_never_believed(gateway, unionpay):
    order = new_order()
    gateway.misbehave("bad_signature", 3)
    with pytest.raises(ProviderDown):
        await unionpay.place(order)
    assert gateway.arrivals == 3 and order.out_trade_no in gateway.transactions
    assert await unionpay.query(order) == Trade("unpaid")
    # Each forged answer verifies with the certificate it brings: only our configured key of
    # UnionPay tells that it is not the gateway's.
    forged = gateway.answers[-1]
    cert = x509.load_pem_x509_certificate(forged["signPubKeyCert"].encode())
    string = "&".join(f"{k}={forged[k]}" for k in sorted(forged) if k != "signature")
    cert.public_key().verify(base64.b64decode(forged["signature"]),
                             hashlib.sha256(string.encode()).hexdigest().encode(),
                             padding.PKCS1v15(), hashes.SHA256())
    query_id = await gateway.pay(order.out_trade_no, notify=False)
    gateway.misbehave("bad_signature", 3)
    with pytest.raises(ProviderDown):
        await unionpay.query(order)
    assert await unionpay.query(order) == Trade("paid", query_id, order.amount)


@pytest.mark.gen_test
async def test_the_breaker_opens_after_five_failures_and_calls_fail_at_once(gateway, unionpay):
    gateway.misbehave("5xx", 10)
    for arrived in (3, 5, 5):  # 3 tries; 2 more open the breaker; then none reaches it
        with pytest.raises(ProviderDown):
            await unionpay.place(new_order())
        assert gateway.arrivals == arrived


# The answer's form

def test_answers_are_read_unencoded_with_braced_values_whole():
    body = b"a=1&signature=ab+c/d==&reserved={x=1&y=2}&list=[p&q]&empty="
    assert answer_fields(body) == {"a": "1", "signature": "ab+c/d==", "reserved": "{x=1&y=2}",
                                   "list": "[p&q]", "empty": ""}
    for broken in (b"a=1&b", b"=1", b"a=1&a=2", b"\xff=1"):
        with pytest.raises(BadAnswer):
            answer_fields(broken)
