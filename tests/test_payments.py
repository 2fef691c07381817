"""Third-party payment: sync callback, provider notifications, settlement, voiding — every order."""
import asyncio
import dataclasses
import base64
import json
import urllib.parse

import pytest
import tornado.httpclient
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from jobs.settler import Settler
from rtserver import finishing, payments, settlement
from storage import packets
from storage.queue import SettlementQueue
from tests.providers import new_key
from tests.test_admin import LOOKALIKES
from tests.test_packets import calls_of, cents, group_with


ONE_YUAN_MISSPELT = ("1", "1.0", "1.000", "01.00")


async def notify(base_url: str, provider: str, headers_body) -> tuple[int, str]:
    headers, body = headers_body
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        f"{base_url}/pay/notify/{provider}", method="POST", headers=headers, body=body,
        raise_error=False)
    return response.code, (response.body or b"").decode()


async def third_party_packet(client, gid: int, provider: str = "sandbox", number: int = 3,
                             amount: str = "3.00") -> dict:
    created = await client.request("packet.create", type=3, for_id=gid, number=number,
                                   amount=amount, pay_type=provider)
    assert created["ok"], created
    order = created["order"]
    assert (order["provider"], order["amount"]) == (provider, amount)
    return created


def sandbox_note(providers, created, **kw):
    return providers.sandbox(created["order"]["out_trade_no"], created["total"], **kw)


async def settle_all(ctx) -> int:
    """Run the settlement consumer until the queue is empty now."""
    settler, handled = Settler(ctx, name="test"), 0
    while n := await settler.run_once(block_ms=10):
        handled += n
    return handled


async def finished_before_paid(admin, connect) -> tuple[list, dict, list]:
    """A two-share group packet paid through the sandbox provider, both shares grabbed (so
    finished) before the provider's notification: the clients, the packet, the grabs."""
    gid, users, clients = await group_with(admin, connect, 3, "1.00")
    created = await third_party_packet(clients[0], gid, number=2, amount="2.00")
    rp_id = created["rp_id"]
    await clients[0].request("packet.sync_paid", rp_id=rp_id, result={})
    grabs = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients[1:]))
    assert [g["result"] for g in grabs] == ["ok", "ok"]
    assert (await clients[0].event("packet.state", rp_id=rp_id))["status"] == "finished"
    return clients, created, grabs


async def balances(clients) -> list[int]:
    return [cents((await c.request("wallet.get"))["balance"]) for c in clients]


@pytest.mark.gen_test
async def test_sync_then_notification_then_settlement(admin, connect, base_url, providers, ctx,
                                                      audit):
    gid, users, clients = await group_with(admin, connect, 4, "1.00")
    sender, grabbers = clients[0], clients[1:]
    created = await third_party_packet(sender, gid)
    rp_id = created["rp_id"]
    synced = await sender.request("packet.sync_paid", rp_id=rp_id,
                                  result={"resultStatus": "9000"})
    assert synced["pay_status"] == 2
    assert (await grabbers[0].event("message"))["message"]["packet"]["pay_status"] == 2
    grabs = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in grabbers))
    assert all(g["result"] == "ok" and g["into_account"] is False for g in grabs)
    assert await balances(clients) == [100, 100, 100, 100], "nothing credited before the money"
    detail = await grabbers[0].request("packet.detail", rp_id=rp_id)
    assert detail["mine"]["into_account"] is False

    assert await notify(base_url, "sandbox", sandbox_note(providers, created)) == (204, "")
    assert await settle_all(ctx) >= 1  # earlier tests may have left their second passes
    for client, grab in zip(grabbers, grabs):
        assert (await client.event("packet.settled"))["money"] == grab["money"]
        assert (await client.event("wallet"))["balance"] == f"{1 + cents(grab['money']) / 100:.2f}"
    assert await balances(clients) == [100] + [100 + cents(g["money"]) for g in grabs]
    again = await grabbers[0].request("packet.grab", rp_id=rp_id)
    assert again["result"] == "already" and again["into_account"] is True
    audit()


@pytest.mark.gen_test
async def test_notification_before_sync_pays_and_broadcasts_at_once(admin, connect, base_url,
                                                                    providers, audit):
    gid, users, clients = await group_with(admin, connect, 3, "1.00")
    created = await third_party_packet(clients[0], gid, number=2, amount="2.00")
    assert await notify(base_url, "sandbox", sandbox_note(providers, created)) == (204, "")
    message = await clients[1].event("message")
    assert message["message"]["packet"]["pay_status"] == 1
    synced = await clients[0].request("packet.sync_paid", rp_id=created["rp_id"], result={})
    assert synced["pay_status"] == 1
    got = await clients[1].request("packet.grab", rp_id=created["rp_id"])
    assert got["into_account"] is True
    assert await balances(clients[1:2]) == [100 + cents(got["money"])]
    assert len(clients[2].named("message")) == 1, "broadcast once"
    audit()


@pytest.mark.gen_test
async def test_grabs_before_and_after_settlement_credit_each_share_once(
        admin, connect, base_url, providers, ctx, audit):
    gid, users, clients = await group_with(admin, connect, 6, "1.00")
    created = await third_party_packet(clients[0], gid, number=5, amount="5.00")
    rp_id = created["rp_id"]
    await clients[0].request("packet.sync_paid", rp_id=rp_id, result={})
    early = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients[1:3]))
    assert await notify(base_url, "sandbox", sandbox_note(providers, created)) == (204, "")
    late = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients[3:6]))
    assert [g["into_account"] for g in late] == [True, True, True]
    await settle_all(ctx)
    # The second pass, as the settler re-queues it 5 s later, credits nothing twice.
    await SettlementQueue(ctx.redis, ctx.keys).put(rp_id, 2)
    assert await settle_all(ctx) == 1
    won = [cents(g["money"]) for g in early + late]
    assert sum(won) == 500
    assert await balances(clients[1:]) == [100 + w for w in won]
    audit()


@pytest.mark.gen_test
async def test_taps_after_the_finish_say_whether_the_share_is_credited_yet(
        admin, connect, base_url, providers, ctx, monkeypatch, audit):
    """Until every share is credited the taps go through Redis; once they are, and the node's
    verdict "not final yet" has run out, who holds what answers them without Redis."""
    monkeypatch.setattr(ctx.caches.not_final, "ttl", 0.2)
    clients, created, grabs = await finished_before_paid(admin, connect)
    rp_id = created["rp_id"]
    # Paid now, but the shares grabbed before are credited by the settler, which has not run.
    assert await notify(base_url, "sandbox", sandbox_note(providers, created)) == (204, "")
    for client, got in zip(clients[1:], grabs):
        again = await client.request("packet.grab", rp_id=rp_id)
        assert (again["result"], again["money"], again["into_account"]) == \
            ("already", got["money"], False)
    await settle_all(ctx)
    for client, got in zip(clients[1:], grabs):
        again = await client.request("packet.grab", rp_id=rp_id)
        assert (again["result"], again["money"], again["into_account"]) == \
            ("already", got["money"], True)
    await asyncio.sleep(0.25)
    redis_calls = calls_of(monkeypatch, ctx.redis, "execute_command")
    for client, got in zip(clients, [None] + grabs):
        again = await client.request("packet.grab", rp_id=rp_id)
        assert (again["result"], again.get("money"), again.get("into_account")) == \
            (("too_slow", None, None) if got is None else ("already", got["money"], True))
    assert redis_calls == [], "answered from who holds what"
    assert await balances(clients[1:]) == [100 + cents(g["money"]) for g in grabs]
    audit()


@pytest.mark.gen_test
async def test_repeated_notifications_move_money_once(admin, connect, base_url, providers, ctx,
                                                      audit):
    gid, users, clients = await group_with(admin, connect, 3, "1.00")
    created = await third_party_packet(clients[0], gid, number=2, amount="2.00")
    await clients[0].request("packet.sync_paid", rp_id=created["rp_id"], result={})
    await clients[1].request("packet.grab", rp_id=created["rp_id"])
    note = sandbox_note(providers, created, trade_no="SBX-same")
    answers = await asyncio.gather(*(notify(base_url, "sandbox", note) for _ in range(3)))
    assert answers == [(204, "")] * 3
    await settle_all(ctx)
    await settle_all(ctx)
    [balance] = await balances(clients[1:2])
    detail = await clients[1].request("packet.detail", rp_id=created["rp_id"])
    assert balance == 100 + cents(detail["mine"]["money"])
    audit()


@pytest.mark.gen_test
async def test_each_provider_notification_pays_its_own_packet(admin, connect, base_url,
                                                              providers, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    for provider in ("alipay", "wechat", "unionpay", "sandbox"):
        created = await third_party_packet(clients[0], gid, provider, number=1, amount="1.23")
        no = created["order"]["out_trade_no"]
        note = {"alipay": lambda: providers.alipay(no, "1.23"),
                "wechat": lambda: providers.wechat(no, 123),
                "unionpay": lambda: providers.unionpay(no, 123),
                "sandbox": lambda: providers.sandbox(no, "1.23")}[provider]()
        expected = {"alipay": (200, "success"), "wechat": (204, ""), "unionpay": (200, "ok"),
                    "sandbox": (204, "")}[provider]
        assert await notify(base_url, provider, note) == expected, provider
        detail = await clients[1].request("packet.detail", rp_id=created["rp_id"])
        assert detail["packet"]["pay_status"] == 1, provider
        got = await clients[1].request("packet.grab", rp_id=created["rp_id"])
        assert (got["money"], got["into_account"]) == ("1.23", True)
    assert await balances(clients[1:]) == [100 + 4 * 123]
    audit()


@pytest.mark.gen_test
async def test_forged_wrong_and_unknown_notifications_change_nothing(
        admin, connect, base_url, providers, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = {p: await third_party_packet(clients[0], gid, p, number=1, amount="1.00")
               for p in ("alipay", "wechat", "unionpay", "sandbox")}
    no = {p: c["order"]["out_trade_no"] for p, c in created.items()}
    other = new_key()
    refused = [
        ("alipay", providers.alipay(no["alipay"], "1.00", key=other)),            # forged
        ("alipay", providers.alipay(no["alipay"], "0.99")),                       # wrong amount
        ("alipay", providers.alipay("RP0Tnothing", "1.00")),                      # unknown order
        ("alipay", providers.alipay(no["alipay"], "1.00", app_id="2099")),        # not our app
        ("wechat", providers.wechat(no["wechat"], 100, key=other)),
        ("wechat", providers.wechat(no["wechat"], 101)),
        ("wechat", providers.wechat(no["wechat"], 100, mchid="1999999999")),
        ("wechat", providers.wechat(no["wechat"], 100, timestamp=1700000000)),   # replayed
        ("wechat", providers.wechat(no["wechat"], 100, apiv3_key="k" * 32)),
        ("unionpay", providers.unionpay(no["unionpay"], 100, key=other)),
        ("unionpay", providers.unionpay(no["unionpay"], 99)),
        ("unionpay", providers.unionpay(no["sandbox"], 100)),                     # not its order
        ("unionpay", providers.unionpay(no["unionpay"], 100, mer_id="898000000000001")),
        ("unionpay", providers.unionpay(no["unionpay"], 100, txn_type="04")),     # a refund
        ("sandbox", ({"X-Sandbox-Signature": "sign\xe9"}, b"{}")),                # not ASCII
        ("sandbox", providers.sandbox(no["sandbox"], "1.00", secret="guess")),
        ("sandbox", providers.sandbox(no["sandbox"], "100.00")),
        ("sandbox", ({"X-Sandbox-Signature": "00"}, b"{}")),
        # the right amount, spelled otherwise: two places, or integer fen without a leading 0
        *(("alipay", providers.alipay(no["alipay"], amount)) for amount in ONE_YUAN_MISSPELT),
        *(("sandbox", providers.sandbox(no["sandbox"], amount)) for amount in ONE_YUAN_MISSPELT),
        *(("wechat", providers.wechat(no["wechat"], total)) for total in (100.0, True, "100")),
        *(("unionpay", providers.unionpay(no["unionpay"], total))
          for total in ("0100", "+100", " 100", "100 ", "100.00")),
    ]
    for provider, note in refused:
        status, _ = await notify(base_url, provider, note)
        assert 400 <= status < 500, (provider, note)
    for provider, packet in created.items():
        detail = await clients[0].request("packet.detail", rp_id=packet["rp_id"])
        assert detail["packet"]["pay_status"] == 0, provider
    assert not clients[1].named("message")
    assert await balances(clients) == [100, 100]
    audit()


@pytest.mark.gen_test
async def test_trade_numbers_differing_in_case_space_or_accent_are_four_payments(
        admin, connect, base_url, providers, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await third_party_packet(clients[0], gid, number=1, amount="2.00")
    trades = [f"SBX{created['rp_id']}-{spelling}" for spelling in LOOKALIKES]
    for _ in range(2):  # the second round repeats each notification: it moves nothing
        for trade_no in trades:
            note = sandbox_note(providers, created, trade_no=trade_no)
            assert await notify(base_url, "sandbox", note) == (204, ""), trade_no
    # The first trade paid the packet; each other one is money of its own, back to the sender.
    assert await balances(clients) == [100 + 3 * 200, 100]
    note = providers.sandbox(created["order"]["out_trade_no"].lower(), "2.00")
    assert (await notify(base_url, "sandbox", note))[0] == 400, "another order number"
    assert await balances(clients) == [100 + 3 * 200, 100]
    audit()


@pytest.mark.gen_test
async def test_alipay_wait_then_success_for_one_trade_pays_once(admin, connect, base_url,
                                                                providers, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await third_party_packet(clients[0], gid, "alipay", number=1, amount="0.50")
    no = created["order"]["out_trade_no"]
    for status in ("WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_SUCCESS"):
        assert await notify(base_url, "alipay",
                            providers.alipay(no, "0.50", trade_no="T1", status=status)) == \
            (200, "success")
    assert (await clients[1].request("packet.grab", rp_id=created["rp_id"]))["money"] == "0.50"
    assert await balances(clients) == [100, 150]
    audit()


@pytest.mark.gen_test
async def test_alipay_order_string_is_signed_by_our_merchant_key(admin, connect, providers):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await third_party_packet(clients[0], gid, "alipay", number=2, amount="8.88")
    params = dict(urllib.parse.parse_qsl(created["order"]["order_string"]))
    biz = json.loads(params["biz_content"])
    assert (biz["out_trade_no"], biz["total_amount"]) == (created["order"]["out_trade_no"], "8.88")
    assert (params["app_id"], params["sign_type"]) == (providers.alipay_app_id, "RSA2")
    signed = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign")
    providers.merchant_key.public_key().verify(base64.b64decode(params["sign"]), signed.encode(),
                                               padding.PKCS1v15(), hashes.SHA256())
    for provider, field in (("wechat", "prepay"), ("unionpay", "tn")):
        order = (await third_party_packet(clients[0], gid, provider, number=1))["order"]
        assert order[field] is None and order["out_trade_no"]


@pytest.mark.gen_test
async def test_sync_paid_rules(admin, connect, base_url, providers, audit):
    gid, users, clients = await group_with(admin, connect, 2, "5.00")
    created = await third_party_packet(clients[0], gid, number=2)
    rp_id = created["rp_id"]
    assert (await clients[1].request("packet.sync_paid", rp_id=rp_id))["code"] == "forbidden"
    assert (await clients[0].request("packet.pay", rp_id=rp_id))["code"] == "bad_request"
    assert (await clients[0].request("packet.sync_paid", rp_id=rp_id))["pay_status"] == 2
    assert (await clients[0].request("packet.sync_paid", rp_id=rp_id))["code"] == "already_paid"
    balance_packet = await clients[0].request("packet.create", type=2, for_id=gid, number=1,
                                              amount="1.00", pay_type="balance")
    assert (await clients[0].request("packet.sync_paid", rp_id=balance_packet["rp_id"]))[
        "code"] == "bad_request"
    audit()


@pytest.mark.gen_test
async def test_consumer_killed_mid_settlement_another_finishes_it(
        admin, connect, base_url, providers, ctx, audit):
    gid, users, clients = await group_with(admin, connect, 4, "1.00")
    created = await third_party_packet(clients[0], gid, number=3, amount="3.00")
    rp_id = created["rp_id"]
    await clients[0].request("packet.sync_paid", rp_id=rp_id, result={})
    grabs = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients[1:]))
    await notify(base_url, "sandbox", sandbox_note(providers, created))
    # A consumer takes the message, credits one share, and dies without acknowledging.
    dying = Settler(ctx, name="dying")
    await dying.queue.ensure_group()  # as its run_once would first (this run's first consumer)
    [(message_id, taken, _)] = await dying.queue.take("dying", block_ms=10)
    assert taken == rp_id
    async with ctx.db.cursor() as cur:
        first = (await packets.uncredited(cur, rp_id))[0]
    assert await settlement.credit_share(ctx, first)
    # Another consumer claims the abandoned message once it has been idle.
    rescuer = Settler(ctx, name="rescuer", reclaim_idle_ms=0)
    assert await rescuer.run_once(block_ms=10) == 1
    assert await balances(clients[1:]) == [100 + cents(g["money"]) for g in grabs]
    audit()


@pytest.mark.gen_test
async def test_void_after_timeout_then_late_success_refunds_the_sender(
        admin, connect, base_url, providers, ctx, audit):
    gid, users, clients = await group_with(admin, connect, 3, "1.00")
    created = await third_party_packet(clients[0], gid, number=2, amount="2.00")
    rp_id = created["rp_id"]
    await clients[0].request("packet.sync_paid", rp_id=rp_id, result={})
    got = await clients[1].request("packet.grab", rp_id=rp_id)
    assert got["result"] == "ok"
    soon = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings,
                                                                 payment_timeout=-1))
    assert await payments.void_overdue(soon) >= 1
    assert await payments.void_overdue(soon) == 0, "voided once"
    for client in clients[:2]:
        assert (await client.event("packet.voided"))["rp_id"] == rp_id
    assert (await clients[2].event("packet.state", rp_id=rp_id))["status"] == "voided"
    assert (await clients[2].request("packet.grab", rp_id=rp_id))["result"] == "expired"
    assert (await clients[1].request("packet.grab", rp_id=rp_id))["result"] == "expired"
    assert (await clients[0].request("packet.detail", rp_id=rp_id))["packet"]["status"] == "voided"
    await finishing.finish(ctx, rp_id)  # as a finisher that had read it before the void would
    async with ctx.db.cursor() as cur:
        assert (await packets.get(cur, rp_id))["finish_time"] == 0, "a voided packet finished"
    assert await notify(base_url, "sandbox", sandbox_note(providers, created)) == (204, "")
    await settle_all(ctx)
    assert await balances(clients) == [300, 100, 100], "the payment went back to the sender"
    assert (await clients[0].event("wallet"))["balance"] == "3.00"
    audit()


@pytest.mark.gen_test
async def test_a_finished_packet_whose_payment_never_comes_is_still_voided_for_its_grabbers(
        admin, connect, ctx, audit):
    clients, created, grabs = await finished_before_paid(admin, connect)
    rp_id = created["rp_id"]
    again = await clients[1].request("packet.grab", rp_id=rp_id)
    assert (again["result"], again["into_account"]) == ("already", False)
    soon = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings,
                                                                 payment_timeout=-1))
    assert await payments.void_overdue(soon) >= 1
    for client in clients[1:]:
        assert (await client.event("packet.voided"))["rp_id"] == rp_id
        assert (await client.request("packet.grab", rp_id=rp_id))["result"] == "expired"
    assert await balances(clients) == [100, 100, 100]
    audit()


@pytest.mark.gen_test
async def test_sandbox_gateway_is_dev_only(http_server, base_url):
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + "/sandbox/pay", method="POST", body=b'{"out_trade_no": "x"}',
        raise_error=False)
    assert response.code == 404
