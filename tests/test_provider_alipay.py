"""Alipay round trips: the provider class against the gateway stand-in, on the test's IOLoop.

Each test asserts what Alipay received (the stand-in checks our app_id, timestamp, RSA2
signature and biz_content as Alipay does) and what rtserver concluded. python-alipay-sdk, an
implementation of Alipay's signing that is not ours, checks both our signatures and the
stand-in's.
"""
import asyncio
import dataclasses
import datetime
import json
import secrets
import time
import types
import urllib.parse

import pytest
from alipay import AliPay, AliPayValidationError
from cryptography.hazmat.primitives import serialization

from rtserver.config import Settings
from rtserver.providers import alipay as alipay_module
from rtserver.providers.alipay import CLOCK_MARGIN, Alipay, json_members
from rtserver.providers.calls import BREAKER_FAILURES, ProviderDown, ProviderRefused
from rtserver.providers.trades import (Notification, Order, Refund, RefundAnswer,
                                       RefundNotification, Trade)
from tests.conftest import NOWHERE
from tests.providers import new_key, write_private
from tests.standins.alipay import AlipayStandIn, Refused

CHINA = datetime.timezone(datetime.timedelta(hours=8))
TRIES = 3  # the Caller's default


@pytest.fixture(scope="module")
def key_flags(providers, tmp_path_factory) -> dict:
    return providers.settings(tmp_path_factory.mktemp("alipay-keys"))


@pytest.fixture
def standin(io_loop, providers):
    standin = AlipayStandIn(providers, hang=1.0)
    standin.start()
    yield standin
    standin.stop()


def provider(key_flags, standin, **flags) -> Alipay:
    """Alipay as rtserver builds it from its flags, calling the stand-in."""
    return Alipay.from_settings(Settings(**{
        **key_flags, "alipay_gateway": standin.url + "/gateway.do", "provider_timeout": 0.3,
        "public_url": NOWHERE, **flags}))


@pytest.fixture
def alipay(io_loop, key_flags, standin) -> Alipay:
    return provider(key_flags, standin)


def an_order(amount: int = 888, expires_in: int = 1800, subject: str = "恭喜发财，大吉大利"):
    now = int(time.time())
    return Order(out_trade_no=f"RP{secrets.randbelow(10 ** 6)}T{secrets.token_hex(6)}",
                 amount=amount, subject=subject, created=now, expires=now + expires_in)


def order_string(alipay: Alipay, order: Order) -> str:
    return alipay.app_params(order, "")["order_string"]


async def paid(standin: AlipayStandIn, alipay: Alipay, order: Order) -> str:
    """The payer opens the order string in the Alipay app and pays; the trade_no."""
    standin.open(order_string(alipay, order))
    return (await standin.pay(order.out_trade_no)).trade_no


def sent(standin: AlipayStandIn, method: str) -> tuple[dict, dict]:
    """The last call of `method` the stand-in received: its parameters and biz_content."""
    params = standin.calls(method)[-1]
    return params, json.loads(params["biz_content"])


def pem(key, private: bool) -> str:
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sdk_sign(providers, params: dict) -> str:
    """python-alipay-sdk's signature of `params` with our merchant key (RSA2 is deterministic:
    the same string signed gives the same bytes)."""
    sdk = AliPay(providers.alipay_app_id, app_private_key_string=pem(providers.merchant_key, True),
                 alipay_public_key_string=pem(providers.alipay_key, False), sign_type="RSA2")
    unsigned = {k: v for k, v in params.items() if k != "sign"}
    return dict(urllib.parse.parse_qsl(sdk.sign_data(unsigned)))["sign"]


# The order string: what the app SDK takes.

@pytest.mark.gen_test
async def test_order_string_is_signed_by_us_and_carries_notify_url_and_time_expire(
        alipay, standin, providers):
    order = an_order(amount=888)
    params = dict(urllib.parse.parse_qsl(order_string(alipay, order)))
    biz = json.loads(params["biz_content"])
    assert (params["app_id"], params["method"], params["sign_type"], params["charset"]) == (
        providers.alipay_app_id, "alipay.trade.app.pay", "RSA2", "utf-8")
    assert params["notify_url"] == NOWHERE + "/pay/notify/alipay"
    expires = datetime.datetime.fromtimestamp(order.expires, CHINA).strftime("%Y-%m-%d %H:%M:%S")
    assert biz == {"out_trade_no": order.out_trade_no, "total_amount": "8.88",
                   "subject": "恭喜发财，大吉大利", "product_code": "QUICK_MSECURITY_PAY",
                   "time_expire": expires}
    assert params["sign"] == sdk_sign(providers, params)
    trade = standin.open(order_string(alipay, order))  # Alipay verifies it with our public key
    assert (trade.status, trade.amount, trade.notify_url) == (
        "WAIT_BUYER_PAY", 888, NOWHERE + "/pay/notify/alipay")


@pytest.mark.gen_test
async def test_a_tampered_order_string_is_refused_by_alipay(alipay, standin):
    order = an_order(amount=888)
    tampered = order_string(alipay, order).replace("8.88", "0.01")
    with pytest.raises(Refused) as refused:
        standin.open(tampered)
    assert refused.value.sub_code == "isv.invalid-signature"
    assert order.out_trade_no not in standin.trades


@pytest.mark.gen_test
async def test_an_order_string_cannot_be_paid_after_our_payment_timeout(alipay, standin):
    late = an_order(expires_in=-1)
    with pytest.raises(Refused) as refused:
        standin.open(order_string(alipay, late))
    assert refused.value.sub_code == "ACQ.TRADE_HAS_CLOSE"
    assert await alipay.query(late) == Trade("unpaid")  # within the clock margin: not yet sure
    assert await alipay.query(an_order(expires_in=-CLOCK_MARGIN)) == Trade("closed")


@pytest.mark.gen_test
async def test_subject_without_characters_alipay_refuses_and_no_notify_url_without_public_url(
        key_flags, standin):
    alipay = provider(key_flags, standin, public_url="")
    params = dict(urllib.parse.parse_qsl(order_string(alipay, an_order(subject="a&b=c/d"))))
    assert "notify_url" not in params
    assert json.loads(params["biz_content"])["subject"] == "abcd"
    assert standin.open(order_string(alipay, an_order(subject="&/="))).subject == "红包"


def test_keys_are_all_it_takes_to_call_alipay(key_flags):
    assert Alipay.from_settings(Settings(**key_flags)).places_orders
    assert Alipay.from_settings(Settings(**{**key_flags, "alipay_app_id": ""})) is None


# Query.

@pytest.mark.gen_test
async def test_query_of_a_paid_order(alipay, standin, providers):
    order = an_order(amount=1234)
    trade_no = await paid(standin, alipay, order)
    assert await alipay.query(order) == Trade("paid", trade_no, 1234)
    params, biz = sent(standin, "alipay.trade.query")
    assert biz == {"out_trade_no": order.out_trade_no}
    assert {k: params[k] for k in ("app_id", "format", "charset", "sign_type", "version")} == {
        "app_id": providers.alipay_app_id, "format": "JSON", "charset": "utf-8",
        "sign_type": "RSA2", "version": "1.0"}
    assert params["sign"] == sdk_sign(providers, params)


@pytest.mark.gen_test
async def test_query_of_an_opened_unpaid_order_and_of_one_closed_at_time_expire(alipay, standin):
    order = an_order()
    trade = standin.open(order_string(alipay, order))
    assert await alipay.query(order) == Trade("unpaid", trade.trade_no)
    trade.time_expire = time.time() - 1  # our payment time-out passes: Alipay closes it
    assert await alipay.query(order) == Trade("closed", trade.trade_no)


@pytest.mark.gen_test
async def test_query_of_an_order_nobody_opened_is_unpaid_until_time_expire(alipay, standin):
    order = an_order()
    assert await alipay.query(order) == Trade("unpaid")
    assert standin.calls("alipay.trade.query")  # Alipay said ACQ.TRADE_NOT_EXIST
    assert order.out_trade_no not in standin.trades


# Close.

@pytest.mark.gen_test
async def test_close_of_an_unpaid_order_means_no_payment_can_arrive(alipay, standin):
    order = an_order()
    trade = standin.open(order_string(alipay, order))
    assert await alipay.close(order) == Trade("closed", trade.trade_no)
    assert sent(standin, "alipay.trade.close")[1] == {"out_trade_no": order.out_trade_no}
    with pytest.raises(Refused):
        await standin.pay(order.out_trade_no)
    assert await alipay.close(order) == Trade("closed", trade.trade_no)  # again: still closed


@pytest.mark.gen_test
async def test_close_of_a_paid_order_says_paid(alipay, standin):
    order = an_order(amount=500)
    trade_no = await paid(standin, alipay, order)
    assert await alipay.close(order) == Trade("paid", trade_no, 500)
    assert len(standin.calls("alipay.trade.close")) == 1  # refused: ACQ.TRADE_STATUS_ERROR
    assert len(standin.calls("alipay.trade.query")) == 1


@pytest.mark.gen_test
async def test_close_of_an_order_nobody_opened_waits_for_time_expire(alipay, standin):
    with pytest.raises(ProviderDown):
        await alipay.close(an_order())
    late = an_order(expires_in=-CLOCK_MARGIN)
    assert await alipay.close(late) == Trade("closed")
    assert len(standin.calls("alipay.trade.close")) == 2


# Refunds.

def a_refund(order: Order, amount: int) -> Refund:
    return Refund(out_refund_no=f"RF{secrets.randbelow(10 ** 10):010d}E", order=order,
                  amount=amount, created=int(time.time()))


@pytest.mark.gen_test
async def test_refund_succeeds_once_however_often_it_is_asked(alipay, standin):
    order = an_order(amount=1000)
    await paid(standin, alipay, order)
    refund = a_refund(order, 300)
    assert (await alipay.refund(refund)).state == "succeeded"
    assert sent(standin, "alipay.trade.refund")[1] == {
        "out_trade_no": order.out_trade_no, "refund_amount": "3.00",
        "out_request_no": refund.out_refund_no}
    assert (await alipay.refund(refund)).state == "pending"  # fund_change N: nothing moved
    assert (await alipay.query_refund(refund)).state == "succeeded"
    assert sent(standin, "alipay.trade.fastpay.refund.query")[1] == {
        "out_trade_no": order.out_trade_no, "out_request_no": refund.out_refund_no}
    assert standin.trades[order.out_trade_no].refunded == 300
    assert standin.seller_balance == 10 ** 9 - 300


@pytest.mark.gen_test
async def test_refund_alipay_is_still_processing_is_pending_until_done(alipay, standin):
    order = an_order(amount=1000)
    await paid(standin, alipay, order)
    standin.refund_later = True
    refund = a_refund(order, 1000)
    assert (await alipay.refund(refund)).state == "pending"
    assert (await alipay.query_refund(refund)).state == "pending"
    await standin.settle_refunds()
    assert (await alipay.query_refund(refund)).state == "succeeded"


@pytest.mark.gen_test
async def test_refund_alipay_gives_up_on_is_failed(alipay, standin):
    order = an_order(amount=1000)
    await paid(standin, alipay, order)
    too_much = await alipay.refund(a_refund(order, 1001))
    assert too_much == RefundAnswer("failed", detail="退款金额无效 (ACQ.REASON_TRADE_REFUND_FEE_ERR)")
    unpaid = an_order()
    standin.open(order_string(alipay, unpaid))
    assert (await alipay.refund(a_refund(unpaid, 100))).state == "failed"
    assert standin.trades[order.out_trade_no].refunded == 0


@pytest.mark.gen_test
async def test_refund_alipay_refuses_for_now_is_refused_not_failed(alipay, standin):
    order = an_order(amount=1000)
    await paid(standin, alipay, order)
    standin.seller_balance = 0
    refund = a_refund(order, 500)
    with pytest.raises(ProviderRefused, match="卖家余额不足"):
        await alipay.refund(refund)
    standin.seller_balance = 10 ** 9  # the merchant tops up; the same refund goes through
    assert (await alipay.refund(refund)).state == "succeeded"
    with pytest.raises(ProviderRefused, match="ACQ.DISCORDANT_REPEAT_REQUEST"):
        await alipay.refund(dataclasses.replace(refund, amount=200))


@pytest.mark.gen_test
async def test_query_of_a_refund_alipay_never_received_is_pending(alipay, standin):
    order = an_order()
    await paid(standin, alipay, order)
    assert (await alipay.query_refund(a_refund(order, 100))).state == "pending"


@pytest.mark.gen_test
async def test_notifications_of_payment_and_refunds(alipay, standin):
    order = an_order(amount=1000)
    trade_no = await paid(standin, alipay, order)
    part, rest = a_refund(order, 400), a_refund(order, 600)
    await alipay.refund(part)
    await alipay.refund(rest)  # in full now: Alipay's notification says TRADE_CLOSED
    payment, first, last = [(url, alipay.verify(headers, body))
                            for url, headers, body, _ in standin.notifications]
    assert payment == (NOWHERE + "/pay/notify/alipay",
                       Notification(order.out_trade_no, trade_no, 1000, "paid"))
    assert first[1] == RefundNotification(part.out_refund_no, "succeeded")
    assert last[1] == RefundNotification(rest.out_refund_no, "succeeded")
    assert b"TRADE_CLOSED" in standin.notifications[-1][2]


# Faults: nothing is believed that is not verifiably Alipay's.

@pytest.mark.parametrize("fault", ["timeout", "5xx", "drop", "bad_signature"])
@pytest.mark.gen_test
async def test_faults_after_the_retries_are_provider_down(alipay, standin, fault):
    order = an_order()
    trade_no = await paid(standin, alipay, order)
    standin.misbehave(fault, TRIES)
    with pytest.raises(ProviderDown):
        await alipay.query(order)
    assert not standin.faults  # every try reached Alipay
    assert await alipay.query(order) == Trade("paid", trade_no, 888)  # and now it answers


@pytest.mark.gen_test
async def test_a_forged_answer_is_tried_again_and_never_believed(alipay, standin):
    order = an_order(amount=700)
    trade_no = await paid(standin, alipay, order)
    standin.misbehave("bad_signature")
    assert await alipay.query(order) == Trade("paid", trade_no, 700)
    assert len(standin.calls("alipay.trade.query")) == 2


@pytest.mark.gen_test
async def test_alipay_system_errors_are_tried_again(alipay, standin):
    order = an_order()
    standin.system_errors = 1
    assert await alipay.query(order) == Trade("unpaid")
    standin.system_errors = TRIES
    with pytest.raises(ProviderDown):
        await alipay.query(order)


@pytest.mark.gen_test
async def test_a_signed_refusal_is_provider_refused_with_alipays_words(key_flags, standin,
                                                                        tmp_path):
    stranger = provider(key_flags, standin, alipay_private_key_file=write_private(
        new_key(), tmp_path / "not_ours.pem"))
    with pytest.raises(ProviderRefused, match=r"验签出错 \(isv.invalid-signature\)"):
        await stranger.query(an_order())
    assert len(standin.calls("alipay.trade.query")) == 1  # a refusal is not tried again


@pytest.mark.gen_test
async def test_a_request_stamped_off_beijing_time_is_refused(alipay, standin, monkeypatch):
    an_hour_ago = time.time() - 3600
    monkeypatch.setattr(alipay_module, "time", types.SimpleNamespace(time=lambda: an_hour_ago))
    with pytest.raises(ProviderRefused, match="isv.invalid-timestamp"):
        await alipay.query(an_order())


@pytest.mark.gen_test
async def test_an_unsigned_refusal_is_not_believed(key_flags, standin):
    other_app = provider(key_flags, standin, alipay_app_id="2099000000000009")
    with pytest.raises(ProviderDown):
        await other_app.query(an_order())
    assert len(standin.calls("alipay.trade.query")) == TRIES


@pytest.mark.gen_test
async def test_the_breaker_opens_after_failures_in_a_row(alipay, standin):
    standin.misbehave("5xx", 20)
    for _ in range(2):
        with pytest.raises(ProviderDown):
            await alipay.query(an_order())
    assert len(standin.faults) == 20 - BREAKER_FAILURES  # the breaker stopped the sixth try
    with pytest.raises(ProviderDown, match="unavailable"):
        await alipay.query(an_order())
    assert len(standin.faults) == 20 - BREAKER_FAILURES  # failed at once, Alipay not called


# The answer's raw text.

@pytest.mark.gen_test
async def test_an_answer_laid_out_over_lines_is_verified_as_it_was_sent(alipay, standin):
    standin.pretty = True
    order = an_order(amount=321)
    trade_no = await paid(standin, alipay, order)
    assert await alipay.query(order) == Trade("paid", trade_no, 321)
    assert len(standin.calls("alipay.trade.query")) == 1


def test_members_are_cut_out_of_the_answer_as_sent():
    document = ('{"note":"{\\"alipay_trade_query_response\\":{}}",'
                ' "alipay_trade_query_response" : {"sub_msg":"}{\\u4ea4", "n": [1, {"a": 2}]} ,'
                '"sign":"c2ln"}')
    members = json_members(document)
    assert members["alipay_trade_query_response"] == (
        '{"sub_msg":"}{\\u4ea4", "n": [1, {"a": 2}]}', {"sub_msg": "}{交", "n": [1, {"a": 2}]})
    assert members["sign"] == ('"c2ln"', "c2ln")
    for broken in ('{"a":1,"a":2}', '{"a":1,}', '{"a":1} x', '[{"a":1}]', '{a:1}', '{"a":1'):
        with pytest.raises(ValueError):
            json_members(broken)


# python-alipay-sdk against the stand-in: its requests, its verification of the answers.

class BeijingAliPay(AliPay):
    """The SDK stamps requests with the machine's local time; Alipay reads Beijing time."""

    def build_body(self, *args, **kwargs):
        data = super().build_body(*args, **kwargs)
        data["timestamp"] = datetime.datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S")
        return data


@pytest.mark.gen_test
async def test_python_alipay_sdk_is_answered_and_verifies_the_answers(alipay, standin, providers):
    order = an_order(amount=250)
    trade_no = await paid(standin, alipay, order)
    sdk = BeijingAliPay(providers.alipay_app_id,
                        app_private_key_string=pem(providers.merchant_key, True),
                        alipay_public_key_string=pem(providers.alipay_key, False))
    sdk._gateway = standin.url + "/gateway.do"  # the SDK knows only Alipay's own addresses
    loop = asyncio.get_running_loop()  # the SDK blocks: it runs beside the stand-in's loop
    answer = await loop.run_in_executor(None, lambda: sdk.api_alipay_trade_query(
        out_trade_no=order.out_trade_no))
    assert (answer["trade_no"], answer["trade_status"], answer["total_amount"]) == (
        trade_no, "TRADE_SUCCESS", "2.50")
    standin.pretty = True  # the SDK too finds the signed text as it stands
    answer = await loop.run_in_executor(None, lambda: sdk.api_alipay_trade_close(
        out_trade_no=order.out_trade_no))
    assert (answer["code"], answer["sub_code"]) == ("40004", "ACQ.TRADE_STATUS_ERROR")  # paid
    standin.misbehave("bad_signature")
    with pytest.raises(AliPayValidationError):
        await loop.run_in_executor(None, lambda: sdk.api_alipay_trade_query(
            out_trade_no=order.out_trade_no))
