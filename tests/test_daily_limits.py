"""Daily limits (--daily-send-limit, --daily-send-count): per user and Beijing day, over every
packet paid that day whatever its payment type; `packet.create` beyond them is `limit_exceeded`."""
import asyncio
import datetime
import time

import pytest

from rtserver import daily, payments
from rtserver.limits import DailyLimit, beijing_day
from storage.db import to_fen
from tests.test_packets import cents, create_and_pay
from tests.test_payments import third_party_packet

SOCKETS = 20  # of one user, creating at once


def test_the_day_turns_at_beijing_midnight():
    midnight = int(datetime.datetime(2025, 3, 1, tzinfo=datetime.timezone(
        datetime.timedelta(hours=8))).timestamp())
    assert beijing_day(midnight - 1) == datetime.date(2025, 2, 28)
    assert beijing_day(midnight) == datetime.date(2025, 3, 1)
    assert midnight % 86400 == 16 * 3600, "16:00 UTC"


def test_a_limit_of_zero_is_no_limit_and_a_total_on_the_limit_is_within_it():
    assert DailyLimit().allows(10**6, 10**12)
    assert DailyLimit(packets=5).allows(5, 10**12) and not DailyLimit(packets=5).allows(6, 1)
    assert DailyLimit(fen=1000).allows(99, 1000) and not DailyLimit(fen=1000).allows(1, 1001)
    assert DailyLimit(packets=5).refusal(6, 600) == "at most 5 packets a day may be sent"
    assert DailyLimit(fen=1000).refusal(2, 1200) == \
        "at most 10.00 a day may be sent in packets (with this one: 12.00)"


async def until_lapsed():
    """Wait out a --payment-timeout of 1 s (times are whole seconds)."""
    await asyncio.sleep(2.1)


async def sender_and_friend(admin, connect, deposit: str = "100.00"):
    sender, friend = await admin.users(2)
    await admin.deposit(sender, deposit)
    return sender, friend, await connect(sender)


async def sent_today(ctx, user_id: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(the day's row, the packets counted on it): (packets, fen) each."""
    today = beijing_day(int(time.time()))
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT packets, amount FROM daily_sends WHERE user_id = %s"
                          " AND day = %s", (user_id, today))
        row = await cur.fetchone()
        await cur.execute("SELECT COUNT(*) AS n, COALESCE(SUM(total_money), 0) AS s"
                          " FROM red_packet WHERE user_id = %s AND send_day = %s",
                          (user_id, today))
        counted = await cur.fetchone()
    return ((row["packets"], to_fen(row["amount"])) if row else (0, 0),
            (counted["n"], to_fen(counted["s"])))


@pytest.mark.parametrize("settings, amount, allowed", [
    ({"daily_send_count": 5}, "1.00", 5),
    ({"daily_send_limit": "10.00"}, "3.00", 3),
], indirect=["settings"])
@pytest.mark.gen_test(timeout=60)
async def test_twenty_sockets_of_one_user_creating_at_once_never_pass_the_limit_together(
        admin, connect, ctx, audit, amount, allowed):
    sender, friend, first = await sender_and_friend(admin, connect)
    sockets = [first] + [await connect(sender) for _ in range(SOCKETS - 1)]
    created = await asyncio.gather(*(s.request("packet.create", type=1, for_id=friend,
                                               amount=amount, pay_type="balance")
                                     for s in sockets))
    made = [c for c in created if c["ok"]]
    assert len(made) == allowed
    assert {c["code"] for c in created if not c["ok"]} == {"limit_exceeded"}
    assert all(c["message"] for c in created if not c["ok"])
    paid = await asyncio.gather(*(s.request("packet.pay", rp_id=c["rp_id"])
                                  for s, c in zip(sockets, made)))
    assert all(p["ok"] for p in paid), paid
    fen = allowed * cents(amount)
    assert await sent_today(ctx, sender) == ((allowed, fen), (allowed, fen))
    assert cents((await first.request("wallet.get"))["balance"]) == 10000 - fen
    refused = await first.request("packet.create", type=1, for_id=friend, amount=amount,
                                  pay_type="balance")
    assert refused["code"] == "limit_exceeded"
    audit()


@pytest.mark.parametrize("settings", [{"daily_send_count": 2}], indirect=True)
@pytest.mark.gen_test
async def test_packets_paid_by_a_provider_count_as_those_paid_from_the_balance(
        admin, connect, ctx, audit):
    sender, friend, client = await sender_and_friend(admin, connect)
    gid = await admin.group([sender, friend])
    await create_and_pay(client, type=1, for_id=friend, amount="1.00")
    await third_party_packet(client, gid, number=1, amount="2.00")
    refused = await client.request("packet.create", type=1, for_id=friend, amount="1.00",
                                   pay_type="balance")
    assert refused["code"] == "limit_exceeded"
    assert await sent_today(ctx, sender) == ((2, 300), (2, 300))
    audit()


@pytest.mark.parametrize("settings", [{"daily_send_count": 1}], indirect=True)
@pytest.mark.gen_test
async def test_a_voided_packet_gives_its_place_back(admin, connect, ctx, audit):
    sender, friend, client = await sender_and_friend(admin, connect)
    gid = await admin.group([sender, friend])
    created = await third_party_packet(client, gid, number=1, amount="2.00")
    assert (await client.request("packet.sync_paid", rp_id=created["rp_id"],
                                 result={}))["pay_status"] == 2
    refused = await client.request("packet.create", type=1, for_id=friend, amount="1.00",
                                   pay_type="balance")
    assert refused["code"] == "limit_exceeded", "sync-paid: counted"
    assert await payments.void(ctx, created["rp_id"])
    assert await sent_today(ctx, sender) == ((0, 0), (0, 0))
    await create_and_pay(client, type=1, for_id=friend, amount="1.00")
    audit()


@pytest.mark.parametrize("settings", [{"daily_send_count": 1, "payment_timeout": 1}],
                         indirect=True)
@pytest.mark.gen_test
async def test_an_unpaid_packet_holds_its_place_until_its_payment_lapses(
        admin, connect, ctx, audit):
    sender, friend, client = await sender_and_friend(admin, connect, "5.00")
    abandoned = await client.request("packet.create", type=1, for_id=friend, amount="1.00",
                                     pay_type="balance")
    refused = await client.request("packet.create", type=1, for_id=friend, amount="1.00",
                                   pay_type="balance")
    assert refused["code"] == "limit_exceeded", "unpaid, but it may still be paid"
    await until_lapsed()
    assert await daily.uncount_lapsed(ctx) >= 1
    await daily.uncount_lapsed(ctx)
    assert await sent_today(ctx, sender) == ((0, 0), (0, 0)), "uncounted once"
    taken = await create_and_pay(client, type=1, for_id=friend, amount="1.00")
    # Paying the lapsed one now would make two today: refused, and nothing moves.
    late = await client.request("packet.pay", rp_id=abandoned["rp_id"])
    assert late["code"] == "limit_exceeded"
    assert (await client.request("wallet.get"))["balance"] == "4.00"
    detail = await client.request("packet.detail", rp_id=abandoned["rp_id"])
    assert detail["packet"]["status"] == "unpaid"
    assert await sent_today(ctx, sender) == ((1, 100), (1, 100))
    assert (await client.request("packet.detail", rp_id=taken))["packet"]["status"] == "active"
    audit()


@pytest.mark.parametrize("settings", [{"daily_send_count": 2, "payment_timeout": 1}],
                         indirect=True)
@pytest.mark.gen_test
async def test_a_lapsed_packet_paid_within_the_limit_is_counted_again(admin, connect, ctx,
                                                                      audit):
    sender, friend, client = await sender_and_friend(admin, connect, "5.00")
    created = await client.request("packet.create", type=1, for_id=friend, amount="1.00",
                                   pay_type="balance")
    await until_lapsed()
    assert await daily.uncount_lapsed(ctx) >= 1
    assert await sent_today(ctx, sender) == ((0, 0), (0, 0))
    assert (await client.request("packet.pay", rp_id=created["rp_id"]))["ok"]
    assert await sent_today(ctx, sender) == ((1, 100), (1, 100))
    audit()
