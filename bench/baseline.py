"""The ceilings of the same run: grabs sent straight to MariaDB, with no server in between.

`seed`: the original design at its best. Redis pops a share number for each winning grab, so
every grab that reaches MariaDB is a winner, and names its share row: one transaction per
share (claim that row, credit the wallet, write the ledger row, commit), no losing attempts,
none queueing on another's row. Which grabs win is drawn up front, as Redis would have decided.
`for_update`: the original first design, which locks the packet row (`SELECT … FOR UPDATE`)
on every grab and claims the first free share, so grabs on one packet queue behind each other
and the losers pay a transaction too.

Each runs over a pool of `connections`, every connection busy: `sweep` finds the pool at
which a design does best, and that is its ceiling.
"""
import asyncio
import random
import time

import pymysql

from storage.db import Database, to_decimal

SWEEP = (16, 32, 64, 128)  # pools the baselines are tried at
DESIGNS = ("seed", "for_update")


async def run(mysql_url: str, packets: list[int], users: list[int], shares: int,
              connections: int, design: str) -> dict:
    """Grab every share of `packets` with `design`; return won grabs and the time taken."""
    db = await Database.connect(mysql_url, maxsize=connections)
    # Every connection of the pool opened before the clock starts, as the server's are by its
    # warm-up storm.
    await asyncio.gather(*(db.ping() for _ in range(connections)))
    grabs = _seed_grabs(packets, users, shares) if design == "seed" else _every_grab(packets, users)
    claim = _claim_named_share if design == "seed" else _claim_first_free_locked
    won = 0

    async def worker():
        nonlocal won
        while grabs:
            user_id, rp_id, seq = grabs.pop()
            if await _retrying(lambda: claim(db, user_id, rp_id, seq)):
                won += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    seconds = time.perf_counter() - started
    await db.close()
    return {"won": won, "seconds": seconds, "won_per_s": won / seconds}


def _seed_grabs(packets: list[int], users: list[int], shares: int) -> list[tuple]:
    """The winners Redis would pick: for each packet, `shares` of the users, each with a share
    number of its own; all of them in a random order."""
    grabs = [(user_id, rp_id, seq) for rp_id in packets
             for seq, user_id in enumerate(random.sample(users, shares), start=1)]
    random.shuffle(grabs)
    return grabs


def _every_grab(packets: list[int], users: list[int]) -> list[tuple]:
    """Every user trying every packet, in a random order: winners and losers alike."""
    grabs = [(user_id, rp_id, None) for rp_id in packets for user_id in users]
    random.shuffle(grabs)
    return grabs


async def _retrying(attempt) -> bool:
    for _ in range(10):  # a deadlock between concurrent claims is retried, as the seed would
        try:
            return await attempt()
        except pymysql.err.OperationalError as exc:
            if exc.args[0] not in (1205, 1213):
                raise
    raise RuntimeError("grab kept deadlocking")


async def _claim_named_share(db: Database, user_id: int, rp_id: int, seq: int) -> bool:
    async with db.transaction() as tx:
        cur, now = tx.cur, int(time.time())
        await cur.execute("UPDATE red_packet_log SET user_id = %s, update_time = %s"
                          " WHERE rp_id = %s AND seq = %s AND user_id IS NULL",
                          (user_id, now, rp_id, seq))
        if cur.rowcount != 1:
            return False
        await cur.execute("SELECT id, money FROM red_packet_log WHERE rp_id = %s AND seq = %s",
                          (rp_id, seq))
        await _credit(cur, user_id, await cur.fetchone(), now)
        await tx.commit()
        return True


async def _claim_first_free_locked(db: Database, user_id: int, rp_id: int, _seq) -> bool:
    async with db.transaction() as tx:
        cur, now = tx.cur, int(time.time())
        await cur.execute("SELECT id FROM red_packet WHERE id = %s FOR UPDATE", (rp_id,))
        await cur.execute("UPDATE red_packet_log SET user_id = %s, update_time = %s"
                          " WHERE rp_id = %s AND user_id IS NULL LIMIT 1",
                          (user_id, now, rp_id))
        if cur.rowcount != 1:
            return False
        await cur.execute("SELECT id, money FROM red_packet_log WHERE rp_id = %s"
                          " AND user_id = %s", (rp_id, user_id))
        await _credit(cur, user_id, await cur.fetchone(), now)
        await tx.commit()
        return True


async def _credit(cur, user_id: int, share: dict, now: int) -> None:
    await cur.execute("UPDATE wallets SET balance = balance + %s WHERE user_id = %s",
                      (share["money"], user_id))
    await cur.execute("INSERT INTO wallet_ledger (user_id, kind, ref, amount, balance,"
                      " add_time) VALUES (%s, 'grab', %s, %s, %s, %s)",
                      (user_id, str(share["id"]), share["money"], to_decimal(0), now))
