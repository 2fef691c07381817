"""WeChat Pay API v3 round trips: rtserver's WechatPay called directly against the stand-in.

Each test asserts what the stand-in received (and verified: our Authorization with our merchant
PUBLIC key) and what we concluded. wechatpayv3, WeChat Pay's Python SDK, checks our signatures
and the stand-in independently.
"""
import asyncio
import dataclasses
import datetime
import itertools
import math
import secrets
import time
import types

import pytest
import tornado.httpserver
import tornado.web
import wechatpayv3.utils
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from tornado.testing import bind_unused_port
from wechatpayv3 import WeChatPay as Sdk, WeChatPayType

from rtserver.config import Settings
from rtserver.errors import RtError
from rtserver.providers.calls import BREAKER_FAILURES, BREAKER_OPEN, ProviderDown, ProviderRefused
from rtserver.providers.trades import (Notification, Order, Refund, RefundAnswer,
                                       RefundNotification, Trade)
from rtserver.providers.wechat import WechatPay
from tests.providers import new_key
from tests.standins.wechat import WechatPayStandIn

NOWHERE = "http://127.0.0.1:9"
TRIES = 3  # what Caller.call makes of each call
NUMBERS = itertools.count(1)


class OurNotifyUrl(tornado.web.RequestHandler):
    """rtserver's /pay/notify/wechat, reduced to the provider's part: verify, then answer."""

    def initialize(self, box) -> None:
        self.box = box

    def post(self) -> None:
        try:
            self.box.notes.append(self.box.provider.verify(self.request.headers,
                                                           self.request.body))
            status, body = self.box.provider.answer(True)
        except RtError as refused:
            self.box.notes.append(refused)
            status, body = self.box.provider.answer(False)
        self.set_status(status)
        self.finish(body or None)


@dataclasses.dataclass
class Round:
    provider: WechatPay
    standin: WechatPayStandIn
    notes: list  # what our notify_url concluded of each notification, in order
    notify_url: str
    settings: Settings


@pytest.fixture
def wechat(io_loop, providers, tmp_path):
    box = types.SimpleNamespace(provider=None, notes=[])
    receiver = tornado.httpserver.HTTPServer(tornado.web.Application(
        [(r"/pay/notify/wechat", OurNotifyUrl, {"box": box})]))
    sock, port = bind_unused_port()
    receiver.add_sockets([sock])
    public_url = f"http://127.0.0.1:{port}"
    standin = WechatPayStandIn(providers, public_url + "/pay/notify/wechat", hang=1.0)
    settings = Settings(**providers.settings(tmp_path), **providers.round_trip_settings(
        tmp_path, wechat=standin.start(), alipay=NOWHERE, unionpay=NOWHERE,
        public_url=public_url), provider_timeout=0.3)
    box.provider = WechatPay.from_settings(settings)
    yield Round(box.provider, standin, box.notes, public_url + "/pay/notify/wechat", settings)
    standin.stop()
    receiver.stop()


def new_order(amount: int = 123, expires_in: int = 1800) -> Order:
    now = int(time.time())
    return Order(out_trade_no=f"RP{next(NUMBERS)}T{secrets.token_hex(6)}", amount=amount,
                 subject="恭喜发财，大吉大利", created=now, expires=now + expires_in)


async def placed(wechat: Round, amount: int = 123) -> Order:
    order = new_order(amount)
    await wechat.provider.place(order)
    return order


async def paid(wechat: Round, amount: int = 123) -> Order:
    order = await placed(wechat, amount)
    await wechat.standin.pay(order.out_trade_no, notify=False)
    return dataclasses.replace(order, trade_no=wechat.standin.orders[order.out_trade_no]
                               .transaction_id)


def refund_of(order: Order, amount: int | None = None) -> Refund:
    return Refund(out_refund_no=f"RF{next(NUMBERS):010d}E", order=order,
                  amount=order.amount if amount is None else amount, created=int(time.time()))


def pem(key, private: bool) -> str:
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sdk(providers, standin: WechatPayStandIn, notify_url: str) -> Sdk:
    """WeChat Pay's own SDK as our merchant, against the stand-in (platform public key mode:
    it downloads no certificate)."""
    client = Sdk(wechatpay_type=WeChatPayType.APP, mchid=providers.wechat_mchid,
                 private_key=pem(providers.wechat_merchant_key, True),
                 cert_serial_no=providers.wechat_merchant_serial, appid=providers.wechat_appid,
                 apiv3_key=providers.apiv3_key, notify_url=notify_url,
                 public_key=pem(providers.wechat_key, False),
                 public_key_id=providers.wechat_platform_serial)
    client._core._gate_way = standin.url
    return client


# Placing the order, and what the app takes

@pytest.mark.gen_test
async def test_place_sends_the_documented_app_order_and_gets_its_prepay_id(wechat, providers):
    order = new_order(amount=2345)
    prepay_id = await wechat.provider.place(order)
    assert prepay_id == wechat.standin.orders[order.out_trade_no].prepay_id
    [sent] = wechat.standin.calls("place")
    assert sent == {"appid": providers.wechat_appid, "mchid": providers.wechat_mchid,
                    "description": "恭喜发财，大吉大利", "out_trade_no": order.out_trade_no,
                    "time_expire": sent["time_expire"], "notify_url": wechat.notify_url,
                    "amount": {"total": 2345, "currency": "CNY"}}
    expires = datetime.datetime.fromisoformat(sent["time_expire"])
    assert (expires.timestamp(), expires.utcoffset()) == (order.expires,
                                                          datetime.timedelta(hours=8))
    [seen] = wechat.standin.seen
    assert (seen["method"], seen["uri"]) == ("POST", "/v3/pay/transactions/app")
    assert seen["headers"]["Accept"] == seen["headers"]["Content-Type"] == "application/json"
    assert (seen["authorization"]["mchid"], seen["authorization"]["serial_no"]) == \
        (providers.wechat_mchid, providers.wechat_merchant_serial)
    # Placed again (a retry after a lost answer): the same order, the same prepay_id.
    assert await wechat.provider.place(order) == prepay_id
    assert len(wechat.standin.orders) == 1


@pytest.mark.gen_test
async def test_our_authorization_is_the_one_wechatpayv3_builds(wechat, providers, monkeypatch):
    order = await placed(wechat)
    await wechat.provider.query(order)
    await wechat.provider.close(order)
    assert [s["method"] for s in wechat.standin.seen] == ["POST", "GET", "POST", "GET"]
    for seen in wechat.standin.seen:
        params = seen["authorization"]
        # RSA PKCS#1 v1.5 is deterministic: the SDK, at our timestamp and nonce, over the
        # request as it arrived, must build exactly our header.
        monkeypatch.setattr(wechatpayv3.utils, "time",
                            types.SimpleNamespace(time=lambda: int(params["timestamp"])))
        assert seen["headers"]["Authorization"] == wechatpayv3.utils.build_authorization(
            seen["uri"], seen["method"], providers.wechat_mchid,
            providers.wechat_merchant_serial, providers.wechat_merchant_key,
            data=seen["body"].decode(), nonce_str=params["nonce_str"])


@pytest.mark.gen_test
async def test_a_request_signed_with_another_key_or_serial_is_sign_error_and_provider_down(
        wechat):
    order = await placed(wechat)
    for merchant in (dataclasses.replace(wechat.provider.merchant, key=new_key()),
                     dataclasses.replace(wechat.provider.merchant, serial="00AB")):
        impostor = WechatPay(wechat.provider.mchid, wechat.settings.wechat_apiv3_key,
                             wechat.provider.platform_key, merchant)
        wechat.standin.seen.clear()
        with pytest.raises(ProviderDown):
            await impostor.query(order)
        # WeChat Pay answered SIGN_ERROR, unsigned (it did not verify who asked), each try.
        assert len(wechat.standin.seen) == TRIES
        assert not wechat.standin.calls("query")
        wechat.provider.merchant.caller.breaker.succeeded()


@pytest.mark.gen_test
async def test_the_stand_in_takes_wechatpayv3s_calls_and_they_verify_its_answers(wechat,
                                                                                providers):
    client = sdk(providers, wechat.standin, wechat.notify_url)
    loop, order = asyncio.get_running_loop(), new_order(amount=88)
    code, answer = await loop.run_in_executor(None, lambda: client.pay(
        description=order.subject, out_trade_no=order.out_trade_no,
        amount={"total": 88, "currency": "CNY"},
        time_expire=datetime.datetime.fromtimestamp(order.expires).astimezone().isoformat(
            timespec="seconds")))
    assert code == 200 and '"prepay_id"' in answer  # the SDK verified the answer's signature
    await wechat.standin.pay(order.out_trade_no, notify=False)
    code, answer = await loop.run_in_executor(None, lambda: client.query(
        out_trade_no=order.out_trade_no))
    assert code == 200 and '"trade_state": "SUCCESS"' in answer
    # And what we make of the same order agrees.
    assert (await wechat.provider.query(order)).state == "paid"
    # The notifications the tests send decrypt and verify with the SDK too.
    for headers, body in (providers.wechat(order.out_trade_no, 88),
                          providers.wechat_refund(order.out_trade_no, "RF0000000001E", 88, 88)):
        assert client.callback(headers, body)["resource"]["out_trade_no"] == order.out_trade_no


@pytest.mark.gen_test
async def test_app_params_are_signed_with_our_merchant_key_and_the_payer_can_pay(wechat,
                                                                                 providers):
    order = new_order()
    prepay_id = await wechat.provider.place(order)
    prepay = wechat.provider.app_params(order, prepay_id)["prepay"]
    assert {k: prepay[k] for k in ("appid", "partnerid", "prepayid", "package")} == \
        {"appid": providers.wechat_appid, "partnerid": providers.wechat_mchid,
         "prepayid": prepay_id, "package": "Sign=WXPay"}
    assert abs(int(prepay["timestamp"]) - time.time()) < 5 and len(prepay["noncestr"]) == 32
    client = sdk(providers, wechat.standin, wechat.notify_url)
    assert client.sign([prepay["appid"], prepay["timestamp"], prepay["noncestr"],
                        prepay["prepayid"]]) == prepay["sign"]
    # The WeChat app checks the sign with our certificate, then the payer pays.
    assert await wechat.standin.pay(order.out_trade_no, prepay=prepay) == (204, b"")
    assert wechat.notes == [Notification(order.out_trade_no,
                                         wechat.standin.orders[order.out_trade_no].transaction_id,
                                         123, "paid")]
    placed_order = wechat.standin.orders[order.out_trade_no]
    with pytest.raises(AssertionError):  # the stand-in's check can fail
        wechat.standin.check_prepay(placed_order, {**prepay, "prepayid": "wx" + "0" * 32})
    with pytest.raises(InvalidSignature):
        wechat.standin.check_prepay(placed_order, {**prepay, "timestamp": "1700000000"})
    assert wechat.provider.app_params(order, "") == {"prepay": None}


@pytest.mark.gen_test
async def test_without_the_order_keys_nothing_is_called_and_prepay_is_null(wechat, providers):
    v1 = WechatPay.from_settings(dataclasses.replace(wechat.settings, wechat_appid=""))
    assert (v1.places_orders, wechat.provider.places_orders) == (False, True)
    order = new_order()
    assert await v1.place(order) == ""
    assert v1.app_params(order, "") == {"prepay": None}
    with pytest.raises(ProviderDown):
        await v1.query(order)
    assert wechat.standin.seen == []
    assert WechatPay.from_settings(dataclasses.replace(wechat.settings, wechat_mchid="")) is None


# Asking instead of waiting

@pytest.mark.gen_test
async def test_query_reads_unpaid_paid_refunded_and_closed_orders(wechat, providers):
    unpaid = await placed(wechat)
    assert await wechat.provider.query(unpaid) == Trade("unpaid")
    assert wechat.standin.calls("query") == [{"out_trade_no": unpaid.out_trade_no,
                                             "mchid": providers.wechat_mchid}]
    assert wechat.standin.seen[-1]["uri"] == \
        f"/v3/pay/transactions/out-trade-no/{unpaid.out_trade_no}?mchid={providers.wechat_mchid}"
    order = await paid(wechat, amount=777)
    assert await wechat.provider.query(order) == Trade("paid", order.trade_no, 777)
    assert (await wechat.provider.refund(refund_of(order, 100))).state == "pending"
    assert wechat.standin.orders[order.out_trade_no].state == "REFUND"
    assert await wechat.provider.query(order) == Trade("paid", order.trade_no, 777)
    wechat.standin.orders[unpaid.out_trade_no].state = "CLOSED"
    assert await wechat.provider.query(unpaid) == Trade("closed")


@pytest.mark.gen_test
async def test_an_order_wechat_never_had_is_unpaid_until_it_expires_then_closed(wechat):
    assert await wechat.provider.query(new_order(expires_in=1800)) == Trade("unpaid")
    assert await wechat.provider.query(new_order(expires_in=-3600)) == Trade("closed")
    assert len(wechat.standin.calls("query")) == 2 and not wechat.standin.orders


# Closing before voiding

@pytest.mark.gen_test
async def test_close_of_an_unpaid_order_closes_it_for_good(wechat, providers):
    order = await placed(wechat)
    assert await wechat.provider.close(order) == Trade("closed")
    assert wechat.standin.calls("close") == [{"out_trade_no": order.out_trade_no,
                                             "mchid": providers.wechat_mchid}]
    assert [s["method"] for s in wechat.standin.seen[1:]] == ["POST", "GET"]  # then a query
    with pytest.raises(AssertionError, match="not payable"):
        await wechat.standin.pay(order.out_trade_no)
    # Closed again (a retry): WeChat Pay refuses, ORDER_CLOSED; the query still says closed.
    assert await wechat.provider.close(order) == Trade("closed")
    assert await wechat.provider.close(new_order()) == Trade("closed")  # never placed


@pytest.mark.gen_test
async def test_close_of_a_paid_order_reports_it_paid_with_its_trade(wechat):
    order = await paid(wechat, amount=456)
    assert await wechat.provider.close(order) == Trade("paid", order.trade_no, 456)
    assert wechat.standin.orders[order.out_trade_no].state == "SUCCESS"


# Refunds

@pytest.mark.gen_test
async def test_refund_pending_then_succeeded_by_notification_and_query(wechat):
    order = await paid(wechat, amount=500)
    refund = refund_of(order, 300)
    answer = await wechat.provider.refund(refund)
    assert answer == RefundAnswer("pending", answer.refund_id, "PROCESSING")
    assert answer.refund_id == wechat.standin.refunds[refund.out_refund_no].refund_id
    assert wechat.standin.calls("refund") == [{
        "out_trade_no": order.out_trade_no, "out_refund_no": refund.out_refund_no,
        "notify_url": wechat.notify_url, "amount": {"refund": 300, "total": 500,
                                                    "currency": "CNY"}}]
    # Asked again with the same number: the same refund, no second one.
    assert await wechat.provider.refund(refund) == answer
    assert len(wechat.standin.refunds) == 1
    assert wechat.standin.orders[order.out_trade_no].refunded == 300
    assert await wechat.provider.query_refund(refund) == answer
    assert wechat.standin.seen[-1]["uri"] == \
        f"/v3/refund/domestic/refunds/{refund.out_refund_no}"
    assert await wechat.standin.end_refund(refund.out_refund_no, "SUCCESS") == (204, b"")
    assert wechat.notes == [RefundNotification(refund.out_refund_no, "succeeded",
                                               answer.refund_id)]
    assert await wechat.provider.query_refund(refund) == \
        RefundAnswer("succeeded", answer.refund_id, "SUCCESS")


@pytest.mark.gen_test
async def test_refunds_that_end_abnormal_or_closed_have_failed(wechat):
    order = await paid(wechat, amount=100)
    for status in ("ABNORMAL", "CLOSED"):
        refund = refund_of(order, 40)
        await wechat.provider.refund(refund)
        await wechat.standin.end_refund(refund.out_refund_no, status)
        refund_id = wechat.standin.refunds[refund.out_refund_no].refund_id
        assert wechat.notes[-1] == RefundNotification(refund.out_refund_no, "failed", refund_id)
        assert await wechat.provider.query_refund(refund) == \
            RefundAnswer("failed", refund_id, status)


@pytest.mark.gen_test
async def test_a_refund_to_the_payers_balance_can_succeed_at_once(wechat):
    wechat.standin.refund_starts = "SUCCESS"
    answer = await wechat.provider.refund(refund_of(await paid(wechat)))
    assert (answer.state, answer.detail) == ("succeeded", "SUCCESS")


@pytest.mark.gen_test
async def test_a_refund_to_a_closed_account_has_failed_for_good(wechat):
    order = await paid(wechat)
    wechat.standin.orders[order.out_trade_no].payer_account_closed = True
    assert await wechat.provider.refund(refund_of(order)) == \
        RefundAnswer("failed", "", "退款请求失败，用户帐号已注销")
    assert not wechat.standin.refunds


# WeChat Pay's refusals

@pytest.mark.gen_test
async def test_signed_refusals_carry_wechats_own_message(wechat):
    order = await paid(wechat, amount=200)
    wechat.standin.balance = 100
    with pytest.raises(ProviderRefused, match="^基本账户余额不足，请充值后重新发起$"):
        await wechat.provider.refund(refund_of(order))  # NOT_ENOUGH
    assert not wechat.standin.refunds
    with pytest.raises(ProviderRefused, match="订单未支付"):  # INVALID_REQUEST
        await wechat.provider.refund(refund_of(await placed(wechat)))
    with pytest.raises(ProviderRefused, match="^订单不存在$"):  # RESOURCE_NOT_EXISTS
        await wechat.provider.refund(refund_of(new_order()))
    with pytest.raises(ProviderRefused, match="^退款单不存在$"):  # RESOURCE_NOT_EXISTS
        await wechat.provider.query_refund(refund_of(order))
    with pytest.raises(ProviderRefused, match="^该订单已支付$"):  # ORDERPAID
        await wechat.provider.place(order)
    closed = await placed(wechat)
    await wechat.provider.close(closed)
    with pytest.raises(ProviderRefused, match="^订单已关闭$"):  # ORDER_CLOSED
        await wechat.provider.place(closed)
    with pytest.raises(ProviderRefused, match="description"):  # PARAM_ERROR
        await wechat.provider.place(dataclasses.replace(new_order(), subject="红" * 128))
    unpaid = await placed(wechat)
    with pytest.raises(ProviderRefused, match="^商户订单号重复$"):  # OUT_TRADE_NO_USED
        await wechat.provider.place(dataclasses.replace(unpaid, amount=201))
    assert wechat.provider.merchant.caller.breaker.failed_in_row == 0  # refusals are answers


# Faults

@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("fault", ["timeout", "5xx", "drop", "bad_signature"])
async def test_faults_on_every_try_are_provider_down_and_then_it_works(wechat, fault):
    order = await paid(wechat)
    wechat.standin.misbehave(fault, TRIES)
    with pytest.raises(ProviderDown):
        await wechat.provider.query(order)  # a forged "paid" is never believed
    assert not wechat.standin.faults  # each try met one fault: TRIES tries, no more
    if fault == "timeout":
        await asyncio.sleep(wechat.standin.hang)  # the last hung answer goes out, to no one
    assert (await wechat.provider.query(order)).state == "paid"


@pytest.mark.gen_test
async def test_one_forged_answer_is_retried_and_the_genuine_one_believed(wechat):
    # WeChat Pay itself sends bad signatures now and then, to see that merchants check.
    order = await paid(wechat)
    wechat.standin.misbehave("bad_signature", 1)
    assert (await wechat.provider.query(order)).state == "paid"
    assert len(wechat.standin.calls("query")) == 2


@pytest.mark.gen_test
async def test_frequency_limited_is_provider_down_not_a_refusal(wechat):
    order = await placed(wechat)
    wechat.standin.frequency_limited = 1
    with pytest.raises(ProviderDown):
        await wechat.provider.query(order)
    assert await wechat.provider.query(order) == Trade("unpaid")


@pytest.mark.gen_test
async def test_the_breaker_opens_after_failures_in_a_row(wechat):
    order = await placed(wechat)
    wechat.standin.misbehave("5xx", BREAKER_FAILURES)
    for _ in range(math.ceil(BREAKER_FAILURES / TRIES)):
        with pytest.raises(ProviderDown):
            await wechat.provider.query(order)
    assert not wechat.standin.faults  # it failed BREAKER_FAILURES times in a row
    asked = len(wechat.standin.seen)
    with pytest.raises(ProviderDown, match="unavailable"):
        await wechat.provider.query(order)  # WeChat Pay would answer now, but is not asked
    assert len(wechat.standin.seen) == asked
    wechat.provider.merchant.caller.breaker.opened_at -= BREAKER_OPEN  # time passes
    assert await wechat.provider.query(order) == Trade("unpaid")
    assert len(wechat.standin.seen) == asked + 1


# Notifications

@pytest.mark.gen_test
async def test_refund_notifications_verify_like_payments(wechat, providers):
    verify = wechat.provider.verify
    note = verify(*providers.wechat_refund("RP1Tx", "RF0000000001E", 50, 100, "5000001",
                                           "SUCCESS"))
    assert note == RefundNotification("RF0000000001E", "succeeded", "5000001")
    assert verify(*providers.wechat_refund("RP1Tx", "RF0000000001E", 50, 100, "5000001",
                                           "ABNORMAL")).state == "failed"
    assert isinstance(verify(*providers.wechat("RP1Tx", 100)), Notification)
    for forged in (dict(key=new_key()), dict(mchid="1999999999"), dict(apiv3_key="k" * 32),
                   dict(timestamp=int(time.time()) - 3600), dict(event_type="REFUND.CLOSED"),
                   dict(status="PROCESSING", event_type="REFUND.PROCESSING")):
        with pytest.raises(RtError):
            verify(*providers.wechat_refund("RP1Tx", "RF0000000001E", 50, 100, **forged))
