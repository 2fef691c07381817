"""Background jobs: the expiry refund racing grabs, runners on many nodes, orphaned grabs."""
import asyncio
import dataclasses

import pytest

from rtserver import orphans, refund
from storage import slots
from tests.test_packets import cents, create_and_pay, group_with

TTL = 2  # seconds a packet stays grabbable in these tests


@pytest.fixture
def settings(run_settings):
    return dataclasses.replace(run_settings, packet_ttl=TTL)


async def until_expired():
    await asyncio.sleep(TTL + 1.1)


@pytest.mark.gen_test
async def test_expiry_refunds_what_nobody_grabbed(admin, connect, ctx, audit):
    gid, users, clients = await group_with(admin, connect, 4, "10.00")
    sender = clients[0]
    rp_id = await create_and_pay(sender, type=3, for_id=gid, number=4, amount="8.00")
    got = [await c.request("packet.grab", rp_id=rp_id) for c in clients[1:3]]
    taken = sum(cents(g["money"]) for g in got)
    await until_expired()
    assert (await clients[3].request("packet.grab", rp_id=rp_id))["result"] == "expired"
    assert await refund.refund_expired(ctx) >= 1
    refunded = await sender.event("packet.refunded", rp_id=rp_id)
    assert cents(refunded["return_money"]) == 800 - taken
    assert cents((await sender.request("wallet.get"))["balance"]) == 1000 - 800 + 800 - taken
    state = await clients[3].event("packet.state", rp_id=rp_id)
    assert (state["status"], state["grabbed_count"]) == ("expired", 2)
    detail = await sender.request("packet.detail", rp_id=rp_id)
    assert detail["packet"]["status"] == "expired"
    assert detail["packet"]["return_money"] == refunded["return_money"]
    assert not any(g["is_good"] for g in detail["grabs"]), "no best luck on an unfinished packet"
    again = await clients[1].request("packet.grab", rp_id=rp_id)
    assert (again["result"], again["money"]) == ("already", got[0]["money"])
    assert (await clients[3].request("packet.grab", rp_id=rp_id))["result"] == "expired"
    await refund.refund_expired(ctx)
    assert cents((await sender.request("wallet.get"))["balance"]) == 1000 - taken, "refunded once"
    audit()


@pytest.mark.gen_test
async def test_grabs_racing_the_refund_come_out_exact(admin, connect, ctx, audit):
    gid, users, clients = await group_with(admin, connect, 31, "1.00")
    await admin.deposit(users[0], "100.00")
    rp_id = await create_and_pay(clients[0], type=3, for_id=gid, number=30, amount="60.00")
    racers = [c.request("packet.grab", rp_id=rp_id) for c in clients[1:]]
    answers = await asyncio.gather(*racers[:15], refund.refund(ctx, rp_id), *racers[15:])
    grabs = answers[:15] + answers[16:]
    assert answers[15] is True
    assert {g["result"] for g in grabs} <= {"ok", "expired"}
    won = sum(cents(g["money"]) for g in grabs if g["result"] == "ok")
    detail = await clients[0].request("packet.detail", rp_id=rp_id)
    assert cents(detail["packet"].get("return_money", "0.00")) == 6000 - won
    assert cents(detail["packet"]["grabbed_total"]) == won
    for client, grab in zip(clients[1:], grabs):
        expected = 100 + (cents(grab["money"]) if grab["result"] == "ok" else 0)
        assert cents((await client.request("wallet.get"))["balance"]) == expected
    audit()


@pytest.mark.gen_test
async def test_runners_at_once_refund_once_with_one_event_per_connection(admin, connect, ctx,
                                                                          audit):
    gid, users, clients = await group_with(admin, connect, 3, "5.00")
    sender_twin = await connect(users[0])
    rp_id = await create_and_pay(clients[0], type=2, for_id=gid, number=3, amount="1.00")
    await clients[1].request("packet.grab", rp_id=rp_id)
    await until_expired()
    await asyncio.gather(*(refund.refund_expired(ctx) for _ in range(4)))
    for conn in (clients[0], sender_twin):
        await conn.request("ping")
        assert [e["return_money"] for e in conn.named("packet.refunded")] == ["2.00"]
    assert (await clients[0].request("wallet.get"))["balance"] == "4.00"
    audit()


@pytest.mark.gen_test
async def test_a_slot_taken_but_never_booked_is_booked_by_the_sweep(admin, connect, ctx, audit):
    gid, users, clients = await group_with(admin, connect, 3, "1.00")
    await admin.deposit(users[0], "3.00")
    rp_id = await create_and_pay(clients[0], type=2, for_id=gid, number=3, amount="1.00")
    # The grabber's request takes a slot in Redis and dies before writing its share.
    take = await ctx.taker.take(rp_id, users[1])
    assert take.outcome == slots.WON
    assert await orphans.book_orphaned_grabs(ctx, grace=-1) == 1
    assert (await clients[1].event("packet.grabbed"))["money"] == "1.00"
    assert (await clients[1].request("wallet.get"))["balance"] == "2.00"
    again = await clients[1].request("packet.grab", rp_id=rp_id)
    assert (again["result"], again["money"]) == ("already", "1.00")
    assert await orphans.book_orphaned_grabs(ctx, grace=-1) == 0
    audit()


async def finisher_died(ctx, rp_id: int) -> None:
    """Leave a drained packet as a node killed between its last booking and its finish does:
    every share claimed, no finish, no best luck, and no node remembering it finished."""
    async with ctx.db.cursor() as cur:
        await cur.execute("UPDATE red_packet SET finish_time = 0, expend_time = 0 WHERE id = %s",
                          (rp_id,))
        await cur.execute("UPDATE red_packet_log SET is_good = 0 WHERE rp_id = %s", (rp_id,))
    ctx.caches.finished.drop(rp_id)


async def drained_lucky_packet(admin, connect):
    gid, users, clients = await group_with(admin, connect, 4, "10.00")
    rp_id = await create_and_pay(clients[0], type=3, for_id=gid, number=3, amount="3.00")
    won = [await c.request("packet.grab", rp_id=rp_id) for c in clients[1:]]
    finished = await clients[0].event("packet.state", rp_id=rp_id, status="finished")
    return rp_id, clients, won, finished


@pytest.mark.gen_test
async def test_a_drained_packet_whose_finisher_died_is_finished_by_the_next_tap(
        admin, connect, ctx, audit):
    rp_id, clients, won, finished = await drained_lucky_packet(admin, connect)
    await finisher_died(ctx, rp_id)
    again = await clients[1].request("packet.grab", rp_id=rp_id)
    assert (again["result"], again["money"]) == ("already", won[0]["money"])
    state = await clients[0].event("packet.state", rp_id=rp_id, status="finished")
    assert state["best"] == finished["best"]
    assert state["expend_time"] == finished["expend_time"]  # when the last share went
    detail = await clients[0].request("packet.detail", rp_id=rp_id)
    assert detail["packet"]["status"] == "finished"
    assert sum(g["is_good"] for g in detail["grabs"]) == 1
    audit()


@pytest.mark.gen_test
async def test_a_drained_unfinished_packet_forgotten_by_redis_is_too_slow_after_its_expiry(
        admin, connect, ctx, audit):
    rp_id, clients, won, finished = await drained_lucky_packet(admin, connect)
    await finisher_died(ctx, rp_id)
    await slots.forget(ctx.redis, ctx.keys, rp_id)  # a Redis restarted without its keys
    ctx.caches.packets.drop(rp_id)
    await until_expired()
    assert (await clients[0].request("packet.grab", rp_id=rp_id))["result"] == "too_slow", \
        "every share went to others: the packet is spent, not expired"
    audit()


@pytest.mark.gen_test
async def test_a_drained_packet_nobody_taps_again_is_finished_at_its_expiry_not_expired(
        admin, connect, ctx, audit):
    rp_id, clients, won, finished = await drained_lucky_packet(admin, connect)
    await finisher_died(ctx, rp_id)
    await until_expired()
    await refund.refund_expired(ctx)
    state = await clients[0].event("packet.state", rp_id=rp_id)
    assert (state["status"], state["best"]) == ("finished", finished["best"])
    assert not clients[0].named("packet.refunded"), "nothing was left to refund"
    detail = await clients[0].request("packet.detail", rp_id=rp_id)
    assert (detail["packet"]["status"], detail["packet"]["expend_time"]) == \
        ("finished", finished["expend_time"])
    assert (await clients[3].request("packet.grab", rp_id=rp_id))["result"] == "already"
    audit()
