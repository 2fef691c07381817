"""The unit of work's promise, in both its modes: every statement or none, and events only once
committed."""
import pytest

from rtserver.hub import user_room
from rtserver.uow import UnitOfWork
from storage.db import ints, is_duplicate, string


async def wallet_row(ctx, user_id: int):
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT balance FROM wallets WHERE user_id = %s", (user_id,))
        return await cur.fetchone()


@pytest.mark.gen_test
@pytest.mark.parametrize("pipelined", [False, True])
async def test_a_failing_statement_undoes_the_others_and_its_events_never_go_out(
        admin, connect, ctx, pipelined):
    uid = await admin.user()
    listener = await connect(uid)
    stranger = 10**9 + uid  # no wallet yet: the first statement would make one
    with pytest.raises(Exception) as refused:
        async with UnitOfWork(ctx, pipelined) as uow:
            make = ("INSERT INTO wallets (user_id, balance, update_time) VALUES (%s, 5, 0)",
                    [stranger])
            again = ("INSERT INTO wallets (user_id, balance, update_time) VALUES (%s, 0, 0)",
                     [uid])  # the user's own wallet exists: a duplicate key
            uow.emit([user_room(uid)], {"ev": "wallet", "balance": "5.00", "ledger_id": 0})
            for sql, args in (make, again):
                if pipelined:
                    uow.pipeline.add(sql, args)
                else:
                    await uow.cur.execute(sql, args)
            await uow.commit()
    assert is_duplicate(refused.value)
    assert await wallet_row(ctx, stranger) is None, "the first statement was rolled back"
    await listener.request("ping")  # an event published before this reply has arrived by now
    assert not listener.named("wallet")


@pytest.mark.gen_test
async def test_a_pipelined_unit_of_work_reads_its_results_after_commit_and_then_tells(
        admin, connect, ctx):
    uid = await admin.user()
    listener = await connect(uid)
    async with UnitOfWork(ctx, pipelined=True) as uow:
        uow.pipeline.add("UPDATE users SET name = %s WHERE id = %s", ["改了名", uid])
        read = uow.pipeline.add("SELECT name FROM users WHERE id = %s", [uid])
        await uow.commit()
        assert [r["name"] for r in read.rows] == ["改了名"]
        uow.emit([user_room(uid)], {"ev": "packet.voided", "rp_id": uid})
    assert (await listener.event("packet.voided"))["rp_id"] == uid


@pytest.mark.gen_test
async def test_ids_written_into_a_statement_are_numbers_or_nothing(admin, ctx):
    uids = [await admin.user(), await admin.user()]
    async with ctx.db.cursor() as cur:
        await cur.execute(f"SELECT id FROM users WHERE id IN ({ints(uids)}) ORDER BY id")
        assert [r["id"] for r in await cur.fetchall()] == sorted(uids)
    for wrong in ("0) OR (1 = 1", 1.5):
        with pytest.raises(TypeError):
            ints([uids[0], wrong])


@pytest.mark.gen_test
async def test_strings_written_into_a_statement_come_back_as_they_were(ctx):
    said = ["", "李四领取了你的红包", "'; DROP TABLE users; --", "back\\slash \" and %s", "🧧\x00"]
    async with ctx.db.cursor() as cur:
        await cur.execute(" UNION ALL ".join(f"SELECT {i} AS i, {string(s)} AS s"
                                             for i, s in enumerate(said)))
        assert [r["s"] for r in sorted(await cur.fetchall(), key=lambda r: r["i"])] == said
    for wrong in (b"bytes", 1):
        with pytest.raises(TypeError):
            string(wrong)
