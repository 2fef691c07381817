"""Round trips with the providers, end to end: a real rtserver, its jobs' sweeps, and each
provider played by its stand-in on 127.0.0.1 (tests/standins), which checks every call as the
provider does and notifies our real webhooks. What each test asserts is what the users see and
what the money did; the audit closes every one."""
import asyncio
import dataclasses
import logging

import pymysql
import pytest

from rtserver import order_checks, payments, provider_refunds, refund
from storage.db import MysqlUrl
from tests.conftest import run_cli
from tests.providers import new_key
from tests.standins import send
from tests.standins.alipay import AlipayStandIn
from tests.standins.unionpay import UnionPayGateway
from tests.standins.wechat import WechatPayStandIn
from tests.test_packets import cents, group_with
from tests.test_payments import settle_all

TTL = 2  # seconds a paid packet stays grabbable here
# seconds an order may wait for its money here: an order placed in the second after its packet
# was created still expires at the provider in the future, as the providers require
PAY_WITHIN = 2


@dataclasses.dataclass
class StandIns:
    wechat: WechatPayStandIn
    alipay: AlipayStandIn
    unionpay: UnionPayGateway

    def all(self):
        return (self.wechat, self.alipay, self.unionpay)


@pytest.fixture
def standins(io_loop, providers, http_port):
    public_url = f"http://127.0.0.1:{http_port}"
    played = StandIns(WechatPayStandIn(providers, public_url + "/pay/notify/wechat"),
                      AlipayStandIn(providers), UnionPayGateway(providers))
    for standin in played.all():
        standin.start()
    yield played
    for standin in played.all():
        standin.stop()


@pytest.fixture
def settings(run_settings, standins, providers, http_port, tmp_path, request):
    flags = {**providers.round_trip_settings(
        tmp_path, wechat=standins.wechat.url, alipay=standins.alipay.url,
        unionpay=standins.unionpay.url, public_url=f"http://127.0.0.1:{http_port}"),
        "provider_timeout": 0.3, "order_query_after": 0, "packet_ttl": TTL,
        **getattr(request, "param", {})}
    return dataclasses.replace(run_settings, **flags)


@pytest.fixture(autouse=True)
def only_this_tests_orders(run_settings):
    """The run's database is shared: the orders earlier tests left unpaid are voided first, so
    that the sweeps here ask the stand-ins about this test's orders alone."""
    u = MysqlUrl.parse(run_settings.mysql_url)
    conn = pymysql.connect(host=u.host, port=u.port, user=u.user, password=u.password,
                           database=u.database, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("UPDATE red_packet SET pay_status = 3 WHERE pay_status IN (0, 2)"
                    " AND id IN (SELECT rp_id FROM payment_orders)")
        cur.execute("UPDATE provider_refunds SET state = 'succeeded' WHERE state IN"
                    " ('requested', 'accepted')")
    conn.close()


async def create(client, gid: int, provider: str, amount: str = "3.00", **more) -> dict:
    created = await client.request("packet.create", type=3, for_id=gid, number=2,
                                   amount=amount, pay_type=provider, **more)
    assert created["ok"], created
    return created


async def pay_at(standins: StandIns, provider: str, order: dict, notify: bool = True) -> None:
    """The payer pays the order in the provider's app, as that app takes it."""
    if provider == "wechat":
        await standins.wechat.pay(order["out_trade_no"], prepay=order["prepay"], notify=notify)
    elif provider == "alipay":
        standins.alipay.open(order["order_string"])
        await standins.alipay.pay(order["out_trade_no"], notify=notify)
    else:
        assert order["tn"], order
        await standins.unionpay.pay(order["out_trade_no"], notify=notify)


async def notify_again(providers, standins: StandIns, provider: str, order: dict) -> None:
    """The provider sends a paid order's notification once more (they repeat until answered)."""
    if provider == "wechat":
        placed = standins.wechat.orders[order["out_trade_no"]]
        await send(placed.fields["notify_url"], *providers.wechat(
            order["out_trade_no"], placed.fields["amount"]["total"], placed.transaction_id))
    elif provider == "alipay":
        await standins.alipay.notify(standins.alipay.trade(order["out_trade_no"]))
    else:
        await standins.unionpay.notify(standins.unionpay.consume(order["out_trade_no"]), "00")


async def pay_status(ctx, rp_id: int) -> int:
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT pay_status FROM red_packet WHERE id = %s", (rp_id,))
        return (await cur.fetchone())["pay_status"]


async def accepted_payments(ctx, out_trade_no: str) -> int:
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT COUNT(*) AS n FROM payment_notifications"
                          " WHERE out_trade_no = %s AND status = 'accepted'", (out_trade_no,))
        return (await cur.fetchone())["n"]


async def refunds_of(ctx, rp_id: int) -> list[dict]:
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT out_refund_no, kind, state, amount, answers, tries"
                          " FROM provider_refunds WHERE rp_id = %s", (rp_id,))
        return list(await cur.fetchall())


async def due_now(ctx) -> None:
    """Bring every refund's next try to now, as the sweep's clock would in time."""
    async with ctx.db.cursor() as cur:
        await cur.execute("UPDATE provider_refunds SET next_try = 0")


@pytest.mark.gen_test
@pytest.mark.parametrize("provider", ["wechat", "alipay", "unionpay"])
async def test_the_order_is_placed_with_the_provider_and_paid_through_its_app(
        admin, connect, ctx, standins, provider, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await create(clients[0], gid, provider)
    order = created["order"]
    assert (order["provider"], order["amount"]) == (provider, "3.00")
    if provider == "wechat":
        placed = standins.wechat.orders[order["out_trade_no"]].fields
        assert placed["notify_url"] == ctx.settings.public_url + "/pay/notify/wechat"
        assert placed["amount"] == {"total": 300, "currency": "CNY"}
        assert order["prepay"]["prepayid"] == standins.wechat.orders[
            order["out_trade_no"]].prepay_id
    elif provider == "unionpay":
        assert order["tn"] == standins.unionpay.consume(order["out_trade_no"]).tn
    await pay_at(standins, provider, order)  # the stand-in checks the app's parameters
    assert await pay_status(ctx, created["rp_id"]) == 1, "the notification paid it"
    shown = await clients[1].event("message", timeout=5)
    assert shown["message"]["packet"]["rp_id"] == created["rp_id"], "the packet is in the room"
    got = await clients[1].request("packet.grab", rp_id=created["rp_id"])
    assert got["result"] == "ok" and got["into_account"] is True
    audit()


@pytest.mark.gen_test
async def test_a_provider_that_cannot_be_reached_fails_the_create_and_moves_nothing(
        admin, connect, ctx, standins, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    standins.wechat.misbehave("timeout", times=3)
    failed = await clients[0].request("packet.create", type=3, for_id=gid, number=2,
                                      amount="3.00", pay_type="wechat", client_key="k-1")
    assert (failed["ok"], failed["code"]) == (False, "unavailable")
    # WeChat Pay may have taken the order though its answers came too late: the same client_key
    # places the same order again, and WeChat Pay answers with the same prepay_id.
    again = await create(clients[0], gid, "wechat", client_key="k-1")
    assert again["order"]["prepay"]["prepayid"]
    assert list(standins.wechat.orders) == [again["order"]["out_trade_no"]]
    assert cents((await clients[0].request("wallet.get"))["balance"]) == 100
    audit()


@pytest.mark.gen_test
async def test_a_broken_provider_answers_unavailable_at_once_and_leaves_the_others_alone(
        admin, connect, ctx, standins, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    standins.wechat.misbehave("5xx", times=6)
    for key in ("a", "b"):  # three tries each: its breaker opens after five failures
        failed = await clients[0].request("packet.create", type=3, for_id=gid, number=2,
                                          amount="3.00", pay_type="wechat", client_key=key)
        assert failed["code"] == "unavailable"
    reached = len(standins.wechat.requests) + len(standins.wechat.faults)
    failed = await clients[0].request("packet.create", type=3, for_id=gid, number=2,
                                      amount="3.00", pay_type="wechat", client_key="c")
    assert failed["code"] == "unavailable"
    assert len(standins.wechat.requests) + len(standins.wechat.faults) == reached, \
        "the open breaker did not call WeChat Pay"
    created = await create(clients[0], gid, "unionpay")
    assert created["order"]["tn"], "UnionPay is called as ever"
    audit()


@pytest.mark.gen_test
@pytest.mark.parametrize("provider", ["wechat", "alipay", "unionpay"])
async def test_a_lost_notification_is_made_up_for_by_a_query_and_counted_once(
        admin, connect, ctx, standins, provider, providers, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await create(clients[0], gid, provider)
    order = created["order"]
    await clients[0].request("packet.sync_paid", rp_id=created["rp_id"], result={})
    got = await clients[1].request("packet.grab", rp_id=created["rp_id"])
    assert got["into_account"] is False, "grabbed before the money is known"
    await pay_at(standins, provider, order, notify=False)
    assert await order_checks.query_unnotified(ctx) == 1
    assert await pay_status(ctx, created["rp_id"]) == 1
    await settle_all(ctx)
    assert (await clients[1].event("packet.settled"))["rp_id"] == created["rp_id"]
    assert await order_checks.query_unnotified(ctx) == 0, "a paid order is not asked again"
    for _ in range(2):  # the notification comes after all, twice: the payment is recorded
        await notify_again(providers, standins, provider, order)
    assert await accepted_payments(ctx, order["out_trade_no"]) == 1
    assert cents((await clients[1].request("wallet.get"))["balance"]) == 100 + cents(got["money"])
    audit()


@pytest.mark.gen_test
async def test_queries_and_notifications_racing_record_the_payment_once(
        admin, connect, ctx, standins, providers, audit):
    gid, users, clients = await group_with(admin, connect, 4, "1.00")
    created = await create(clients[0], gid, "wechat")
    order = created["order"]
    await clients[0].request("packet.sync_paid", rp_id=created["rp_id"], result={})
    grabs = await asyncio.gather(*(c.request("packet.grab", rp_id=created["rp_id"])
                                   for c in clients[1:]))
    await pay_at(standins, "wechat", order, notify=False)
    await asyncio.gather(*(order_checks.query_unnotified(ctx) for _ in range(10)),
                         *(notify_again(providers, standins, "wechat", order)
                           for _ in range(10)))
    assert await accepted_payments(ctx, order["out_trade_no"]) == 1
    await settle_all(ctx)
    won = [(client, got) for client, got in zip(clients[1:], grabs) if got["result"] == "ok"]
    assert len(won) == 2
    for client, got in won:
        assert (await client.event("packet.settled"))["money"] == got["money"]
        assert cents((await client.request("wallet.get"))["balance"]) == \
            100 + cents(got["money"])
    audit()


@pytest.mark.gen_test
async def test_a_failed_payment_voids_its_packet_at_once(admin, connect, ctx, standins, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await create(clients[0], gid, "unionpay")
    await clients[0].request("packet.sync_paid", rp_id=created["rp_id"], result={})
    standins.unionpay.decline(created["order"]["out_trade_no"])  # the bank said no
    assert await order_checks.query_unnotified(ctx) == 1
    assert await pay_status(ctx, created["rp_id"]) == 3
    assert (await clients[0].event("packet.voided"))["rp_id"] == created["rp_id"]
    assert (await clients[1].request("packet.grab", rp_id=created["rp_id"]))["result"] == \
        "expired"
    audit()


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"payment_timeout": PAY_WITHIN}], indirect=True)
async def test_an_overdue_order_is_closed_before_its_packet_is_voided(
        admin, connect, ctx, standins, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    unpaid = await create(clients[0], gid, "wechat")
    paid = await create(clients[0], gid, "wechat")
    await pay_at(standins, "wechat", paid["order"], notify=False)  # its notification is lost
    await asyncio.sleep(PAY_WITHIN + 0.1)
    assert await order_checks.close_overdue(ctx) == 2  # of this test's, one each way
    assert standins.wechat.orders[unpaid["order"]["out_trade_no"]].state == "CLOSED"
    assert await pay_status(ctx, unpaid["rp_id"]) == 3, "closed, then voided"
    assert await pay_status(ctx, paid["rp_id"]) == 1, "WeChat said paid: paid, not voided"
    with pytest.raises(AssertionError, match="not payable"):
        await standins.wechat.pay(unpaid["order"]["out_trade_no"])
    audit()


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"payment_timeout": PAY_WITHIN}], indirect=True)
async def test_a_provider_that_cannot_close_keeps_its_packet_waiting(
        admin, connect, ctx, standins, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await create(clients[0], gid, "wechat")
    await clients[0].request("packet.sync_paid", rp_id=created["rp_id"], result={})
    await asyncio.sleep(PAY_WITHIN + 0.1)
    standins.wechat.misbehave("drop", times=3)
    assert await order_checks.close_overdue(ctx) == 0
    assert await pay_status(ctx, created["rp_id"]) == 2, "money may still come: not voided"
    assert await order_checks.close_overdue(ctx) == 1
    assert await pay_status(ctx, created["rp_id"]) == 3
    audit()


async def paid_and_expired(admin, connect, ctx, standins, provider: str):
    """A packet paid through `provider`, one of its two shares grabbed, then expired and
    refunded: (clients, created, the grab, the refund event)."""
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await create(clients[0], gid, provider)
    await pay_at(standins, provider, created["order"])
    got = await clients[1].request("packet.grab", rp_id=created["rp_id"])
    await asyncio.sleep(TTL + 1.1)
    assert await refund.refund_expired(ctx) >= 1
    refunded = await clients[0].event("packet.refunded", rp_id=created["rp_id"])
    assert cents(refunded["return_money"]) == 300 - cents(got["money"])
    return clients, created, got, refunded


@pytest.mark.gen_test
@pytest.mark.parametrize("provider", ["wechat", "alipay", "unionpay"])
async def test_the_expiry_refund_goes_back_to_the_payment_method(
        admin, connect, ctx, standins, provider, audit):
    clients, created, got, refunded = await paid_and_expired(admin, connect, ctx, standins,
                                                             provider)
    rp_id, back = created["rp_id"], cents(refunded["return_money"])
    assert refunded["to"] == "original"
    assert cents((await clients[0].request("wallet.get"))["balance"]) == 100, \
        "nothing went to the balance"
    [row] = await refunds_of(ctx, rp_id)
    assert (row["kind"], row["state"], cents(str(row["amount"]))) == ("refund", "requested", back)
    audit()
    await provider_refunds.send_due(ctx)
    if provider == "wechat":
        sent = standins.wechat.refunds[row["out_refund_no"]].fields
        assert sent["amount"] == {"refund": back, "total": 300, "currency": "CNY"}
        await standins.wechat.end_refund(row["out_refund_no"], "SUCCESS")
    elif provider == "alipay":
        assert [r.amount for r in standins.alipay.refunds.values()] == [back]
    else:
        assert standins.unionpay.transactions[row["out_refund_no"]].txn_amt == back
        await standins.unionpay.end_refund(row["out_refund_no"], "00")
    [row] = await refunds_of(ctx, rp_id)
    assert row["state"] == "succeeded"
    detail = await clients[0].request("packet.detail", rp_id=rp_id)
    assert (detail["packet"]["return_money"], detail["packet"]["return_to"]) == \
        (refunded["return_money"], "original")
    audit()


@pytest.mark.gen_test
async def test_a_refund_is_sent_again_with_the_same_number_until_the_provider_takes_it(
        admin, connect, ctx, standins, audit):
    clients, created, got, refunded = await paid_and_expired(admin, connect, ctx, standins,
                                                             "wechat")
    standins.wechat.misbehave("5xx", times=3)
    assert await provider_refunds.send_due(ctx) == 0
    [row] = await refunds_of(ctx, created["rp_id"])
    assert (row["state"], row["tries"]) == ("requested", 1)
    assert "did not answer" in row["answers"], "the failure is kept in the refund's record"
    assert await provider_refunds.send_due(ctx) == 0, "not again before its backoff"
    assert standins.wechat.refunds == {}
    await due_now(ctx)
    await provider_refunds.send_due(ctx)
    assert list(standins.wechat.refunds) == [row["out_refund_no"]]
    [row] = await refunds_of(ctx, created["rp_id"])
    assert row["state"] == "accepted", "WeChat Pay is processing it"
    await standins.wechat.end_refund(row["out_refund_no"], "SUCCESS", notify=False)
    await due_now(ctx)
    assert await provider_refunds.send_due(ctx) == 1, "a query found it succeeded"
    audit()


@pytest.mark.gen_test
async def test_a_refund_the_provider_gives_up_on_is_credited_to_the_balance(
        admin, connect, ctx, standins, providers, audit):
    clients, created, got, refunded = await paid_and_expired(admin, connect, ctx, standins,
                                                             "wechat")
    await provider_refunds.send_due(ctx)
    [row] = await refunds_of(ctx, created["rp_id"])
    await standins.wechat.end_refund(row["out_refund_no"], "ABNORMAL")  # the card is gone
    [row] = await refunds_of(ctx, created["rp_id"])
    assert row["state"] == "failed"
    back = cents(refunded["return_money"])
    again = await clients[0].event("packet.refunded", rp_id=created["rp_id"])
    assert (again["to"], cents(again["return_money"])) == ("balance", back)
    assert cents((await clients[0].event("wallet"))["balance"]) == 100 + back
    detail = await clients[0].request("packet.detail", rp_id=created["rp_id"])
    assert detail["packet"]["return_to"] == "balance"
    sent = standins.wechat.refunds[row["out_refund_no"]]
    await send(sent.fields["notify_url"], *providers.wechat_refund(  # WeChat Pay repeats it
        sent.fields["out_trade_no"], row["out_refund_no"], back, 300, sent.refund_id, "ABNORMAL"))
    assert cents((await clients[0].request("wallet.get"))["balance"]) == 100 + back, "once"
    audit()


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"payment_timeout": PAY_WITHIN}], indirect=True)
async def test_money_that_comes_after_the_void_goes_back_to_the_payer(
        admin, connect, ctx, standins, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await create(clients[0], gid, "unionpay")
    order = created["order"]
    await clients[0].request("packet.sync_paid", rp_id=created["rp_id"], result={})
    standins.unionpay.start_paying(order["out_trade_no"])  # paid in time, still processing
    await asyncio.sleep(PAY_WITHIN + 0.1)
    # UnionPay cannot close it, and it was never answered: voided as without a provider's keys
    # (a node of v1, or after the payTimeout had passed with the bank still silent).
    assert await payments.void(ctx, created["rp_id"])
    consume = standins.unionpay.consume(order["out_trade_no"])
    consume.ended_with = "00"  # the bank's answer came at last: paid
    await standins.unionpay.notify(consume, "00")
    [row] = await refunds_of(ctx, created["rp_id"])
    assert (row["kind"], cents(str(row["amount"]))) == ("void_refund", 300)
    assert cents((await clients[0].request("wallet.get"))["balance"]) == 100
    await provider_refunds.send_due(ctx)
    assert standins.unionpay.transactions[row["out_refund_no"]].txn_amt == 300
    audit()


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"refund_to": "balance"}], indirect=True)
async def test_refund_to_balance_keeps_v1s_refunds(admin, connect, ctx, standins, audit):
    clients, created, got, refunded = await paid_and_expired(admin, connect, ctx, standins,
                                                             "wechat")
    assert refunded["to"] == "balance"
    assert cents((await clients[0].request("wallet.get"))["balance"]) == \
        100 + cents(refunded["return_money"])
    assert await refunds_of(ctx, created["rp_id"]) == []
    await provider_refunds.send_due(ctx)
    assert standins.wechat.refunds == {}
    audit()


@pytest.mark.gen_test
async def test_the_audit_counts_money_refunded_to_a_provider_as_gone(
        admin, connect, ctx, standins, settings):
    clients, created, got, refunded = await paid_and_expired(admin, connect, ctx, standins,
                                                             "wechat")
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT SUM(amount) AS s FROM provider_refunds WHERE state <> 'failed'")
        gone = (await cur.fetchone())["s"]
    assert gone >= cents(refunded["return_money"]) / 100
    result = run_cli(settings, "audit")
    assert result.returncode == 0, result.stdout
    assert f"refunded to providers: {gone}" in result.stdout


@pytest.mark.gen_test
async def test_no_key_signature_or_body_reaches_the_log(admin, connect, ctx, standins,
                                                        providers, caplog):
    caplog.set_level(logging.DEBUG)
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    standins.wechat.misbehave("bad_signature")
    standins.wechat.misbehave("5xx")
    created = await create(clients[0], gid, "wechat")  # the third try is believed
    await pay_at(standins, "wechat", created["order"])
    forged = providers.wechat(created["order"]["out_trade_no"], 300, key=new_key())
    await send(ctx.settings.public_url + "/pay/notify/wechat", *forged)  # refused, and logged
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "wechat place failed" in logged and "notification refused" in logged
    secrets = [providers.apiv3_key, created["order"]["prepay"]["sign"], "WECHATPAY2",
               forged[0]["Wechatpay-Signature"], "PRIVATE KEY", "ciphertext"]
    assert [s for s in secrets if s in logged] == []
