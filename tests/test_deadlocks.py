"""A deadlock is MariaDB rolling back one of two transactions, not MariaDB going away: the
finish it hits is tried again at once, and the log reports no outage. The deadlocks here are
real ones, made by two transactions taking the same rows in opposite orders."""
import asyncio
import logging

import pymysql
import pytest

from rtserver.finishing import finish
from storage.errors import is_deadlock
from tests.test_packets import create_and_pay, group_with


async def deadlock_victim(ctx, first: int, second: int) -> Exception:
    """Lock two wallets in opposite orders from two transactions; MariaDB rolls one back."""
    async with ctx.db.transaction() as a, ctx.db.transaction() as b:
        lock = "SELECT balance FROM wallets WHERE user_id = %s FOR UPDATE"
        await a.cur.execute(lock, (first,))
        await b.cur.execute(lock, (second,))
        done = await asyncio.gather(a.cur.execute(lock, (second,)), b.cur.execute(lock, (first,)),
                                    return_exceptions=True)
    [victim] = [result for result in done if isinstance(result, Exception)]
    return victim


@pytest.mark.gen_test
async def test_a_deadlock_is_said_as_such_and_begins_no_outage(admin, ctx, caplog):
    first, second = await admin.users(2)
    for uid in (first, second):
        await admin.deposit(uid, "1.00")
    victim = await deadlock_victim(ctx, first, second)
    assert is_deadlock(victim)
    finisher_log = logging.getLogger("rtserver.finishing")
    with caplog.at_level(logging.INFO):
        ctx.outages.failed(victim, "finishing packets", finisher_log)
        # Had the deadlock begun an outage, this failure would only be counted in it.
        ctx.outages.failed(pymysql.err.OperationalError(2003, "Can't connect"), "a sweep",
                           finisher_log)
    said = [(r.name, r.getMessage()) for r in caplog.records]
    assert said[0] == ("rtserver.finishing",
                       f"finishing packets failed: MariaDB gave up on a lock ({victim})")
    assert said[1][0] == "rtserver.outages"
    assert said[1][1].startswith("MariaDB is unreachable (a sweep failed"), said


async def until_waiting_for_a_lock(ctx, statement: str) -> None:
    """Until a statement starting `statement` has been running for 0.1 s: a statement on a
    packet's few rows takes a millisecond, so by then it is waiting for a lock."""
    for _ in range(300):
        async with ctx.db.cursor() as cur:
            await cur.execute("SELECT COUNT(*) AS n FROM information_schema.processlist"
                              " WHERE info LIKE %s AND time_ms > 100", (statement + "%",))
            if (await cur.fetchone())["n"]:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing waited on a lock running {statement!r}")


@pytest.mark.gen_test(timeout=30)
async def test_a_finish_made_a_deadlocks_victim_is_tried_again_at_once(admin, connect, ctx,
                                                                       audit):
    gid, _, (sender, b, c) = await group_with(admin, connect, 3, "100.00")
    rp_id = await create_and_pay(sender, type=3, for_id=gid, number=2, amount="10.00")
    for client in (b, c):
        assert (await client.request("packet.grab", rp_id=rp_id))["result"] == "ok"
    await sender.event("packet.state", rp_id=rp_id, status="finished")
    sender.events.clear()
    async with ctx.db.cursor() as cur:  # as if the finishing node had died: taken, unfinished
        await cur.execute("UPDATE red_packet SET finish_time = 0, expend_time = 0 WHERE id = %s",
                          (rp_id,))
        await cur.execute("UPDATE red_packet_log SET is_good = 0 WHERE rp_id = %s", (rp_id,))
    async with ctx.db.transaction() as other:
        # Heavier than the finish (rows written, later rolled back), so that MariaDB picks the
        # finish as the victim of the deadlock below.
        for n in range(30):
            await other.cur.execute(
                "INSERT INTO chat_messages (room, to_type, to_id, from_id, kind, text, add_time)"
                " VALUES ('g:0', 'group', 0, 0, 'text', %s, 0)", (f"weight {n}",))
        await other.cur.execute("SELECT id FROM red_packet_log WHERE rp_id = %s"
                                " LOCK IN SHARE MODE", (rp_id,))
        finishing = asyncio.ensure_future(finish(ctx, rp_id))
        # It records the finish (locking the packet's row), then waits to mark 手气最佳.
        await until_waiting_for_a_lock(ctx, "UPDATE red_packet_log SET is_good")
        # The packet's row, which the finish holds: a deadlock, and the finish is its victim.
        await other.cur.execute("SELECT id FROM red_packet WHERE id = %s FOR UPDATE", (rp_id,))
    await asyncio.wait_for(finishing, 10)  # it raised the deadlock, before it was tried again
    finished = await sender.event("packet.state", rp_id=rp_id, status="finished")
    assert finished["grabbed_count"] == 2 and finished["best"]["money"]
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT finish_time FROM red_packet WHERE id = %s", (rp_id,))
        assert (await cur.fetchone())["finish_time"] > 0
        await cur.execute("SELECT COUNT(*) AS n FROM red_packet_log WHERE rp_id = %s"
                          " AND is_good = 1", (rp_id,))
        assert (await cur.fetchone())["n"] == 1
