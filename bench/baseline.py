"""The ceilings of the same run: grabs sent straight to MariaDB, with no server in between.

`seed`: the original design's grab transaction — claim a free share row, credit the wallet,
write the ledger row, commit. `for_update`: its first design, which also locks the packet row
(`SELECT … FOR UPDATE`) on every grab, so grabs on one packet queue behind each other.
"""
import asyncio
import random
import time

import pymysql

from storage.db import Database, to_decimal


async def run(mysql_url: str, packets: list[int], users: list[int], concurrency_pool: int,
              lock_packet: bool) -> dict:
    """Every user grabs every packet in its own random order; return won grabs and the time."""
    db = await Database.connect(mysql_url, maxsize=concurrency_pool)
    # Every connection of the pool opened before the clock starts, as the server's are by its
    # warm-up storm.
    await asyncio.gather(*(db.ping() for _ in range(concurrency_pool)))
    won = 0

    async def grab(user_id: int, rp_id: int) -> bool:
        for _ in range(10):  # a deadlock between concurrent claims is retried, as the seed would
            try:
                return await claim(user_id, rp_id)
            except pymysql.err.OperationalError as exc:
                if exc.args[0] not in (1205, 1213):
                    raise
        raise RuntimeError("grab kept deadlocking")

    async def claim(user_id: int, rp_id: int) -> bool:
        async with db.transaction() as tx:
            cur, now = tx.cur, int(time.time())
            if lock_packet:
                await cur.execute("SELECT id FROM red_packet WHERE id = %s FOR UPDATE", (rp_id,))
            await cur.execute("UPDATE red_packet_log SET user_id = %s, update_time = %s"
                              " WHERE rp_id = %s AND user_id IS NULL LIMIT 1",
                              (user_id, now, rp_id))
            if cur.rowcount != 1:
                return False
            await cur.execute("SELECT id, money FROM red_packet_log WHERE rp_id = %s"
                              " AND user_id = %s", (rp_id, user_id))
            share = await cur.fetchone()
            await cur.execute("UPDATE wallets SET balance = balance + %s WHERE user_id = %s",
                              (share["money"], user_id))
            await cur.execute("INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance,"
                              " add_time) VALUES (%s, 'grab', %s, %s, %s, %s)",
                              (user_id, str(share["id"]), share["money"], to_decimal(0), now))
            await tx.commit()
            return True

    async def member(user_id: int):
        nonlocal won
        order = list(packets)
        random.shuffle(order)
        for rp_id in order:
            if await grab(user_id, rp_id):  # awaited first: `won += await …` would lose counts
                won += 1

    started = time.perf_counter()
    await asyncio.gather(*(member(u) for u in users))
    seconds = time.perf_counter() - started
    await db.close()
    return {"won": won, "seconds": seconds, "won_per_s": won / seconds}
