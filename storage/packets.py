"""Red packets and their shares (red_packet, red_packet_log)."""
import datetime
from array import array
from typing import NamedTuple

from storage.db import marks, to_decimal, to_fen
from storage.schema import GRABBABLE, PacketType, PayStatus, PayType

PACKET_COLUMNS = ("id, user_id, for_id, to_user, pay_status, pay_type, trade_no, type, intro,"
                  " password, number,"
                  " total_money, single_money, return_money, is_cli_handle, expend_time, add_time,"
                  " pay_time, expire_time, finish_time, send_day")
# A share of a voided packet was never money: the received box leaves it out.
NOT_VOIDED = f"rp_id NOT IN (SELECT id FROM red_packet WHERE pay_status = {PayStatus.VOIDED})"
SHARE_COLUMNS = ("id, rp_id, seq, user_id, money, is_good, is_into_account, is_refunded,"
                 " update_time")


def _packet(row: dict | None) -> dict | None:
    if row is None:
        return None
    packet = dict(row)
    packet["total"] = to_fen(packet.pop("total_money"))
    packet["single"] = to_fen(packet.pop("single_money"))
    packet["return_money"] = to_fen(packet["return_money"])
    packet["type"] = PacketType(packet["type"])
    packet["pay_status"] = PayStatus(packet["pay_status"])
    packet["pay_type"] = PayType(packet["pay_type"])
    return packet


def _share(row: dict | None) -> dict | None:
    if row is None:
        return None
    share = dict(row)
    share["money"] = to_fen(share["money"])
    return share


async def insert(cur, sender: int, for_id: int, type_: PacketType, intro: str, number: int,
                 total: int, single: int, pay_type: PayType, client_key: str | None,
                 send_day: datetime.date, now: int, to_user: int | None = None,
                 password: str | None = None) -> int:
    """Insert an unpaid packet, counted on `send_day`; a repeated (sender, client_key) raises
    IntegrityError."""
    await cur.execute(
        "INSERT INTO red_packet (user_id, for_id, to_user, type, intro, password, number,"
        " total_money, single_money, pay_type, client_key, send_day, add_time)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (sender, for_id, to_user, int(type_), intro, password, number, to_decimal(total),
         to_decimal(single), int(pay_type), client_key, send_day, now))
    return cur.lastrowid


async def insert_shares(cur, rp_id: int, amounts: list[int], now: int) -> None:
    """Insert one share per amount; the k-th amount becomes the share of slot k."""
    await cur.executemany(
        "INSERT INTO red_packet_log (rp_id, seq, money, add_time) VALUES (%s, %s, %s, %s)",
        [(rp_id, seq, to_decimal(money), now) for seq, money in enumerate(amounts, start=1)])


async def by_client_key(cur, sender: int, client_key: str) -> dict | None:
    await cur.execute(f"SELECT {PACKET_COLUMNS} FROM red_packet WHERE user_id = %s"
                      " AND client_key = %s", (sender, client_key))
    return _packet(await cur.fetchone())


async def get(cur, rp_id: int) -> dict | None:
    await cur.execute(f"SELECT {PACKET_COLUMNS} FROM red_packet WHERE id = %s", (rp_id,))
    return _packet(await cur.fetchone())


async def get_many(cur, rp_ids) -> dict[int, dict]:
    ids = sorted(set(rp_ids))
    if not ids:
        return {}
    await cur.execute(f"SELECT {PACKET_COLUMNS} FROM red_packet WHERE id IN"
                      f" ({marks(ids)})", ids)
    return {row["id"]: _packet(row) for row in await cur.fetchall()}


async def mark_paid(cur, rp_id: int, pay_status: PayStatus, now: int, expire_time: int) -> bool:
    """Move an unpaid packet to `pay_status`, once; False if it was not unpaid any more."""
    await cur.execute(
        "UPDATE red_packet SET pay_status = %s, pay_time = %s, expire_time = %s"
        f" WHERE id = %s AND pay_status = {PayStatus.UNPAID}",
        (int(pay_status), now, expire_time, rp_id))
    return cur.rowcount == 1


async def count_on(cur, rp_id: int, day: datetime.date) -> bool:
    """Count a packet on `day` if it is counted on no day; True if it was not."""
    await cur.execute("UPDATE red_packet SET send_day = %s WHERE id = %s AND send_day IS NULL",
                      (day, rp_id))
    return cur.rowcount == 1


async def uncount(cur, rp_id: int, day: datetime.date, pay_status: PayStatus) -> bool:
    """Stop counting a packet on `day`, if it still is and its pay status is `pay_status`;
    True for the call that did."""
    await cur.execute("UPDATE red_packet SET send_day = NULL WHERE id = %s AND send_day = %s"
                      " AND pay_status = %s", (rp_id, day, int(pay_status)))
    return cur.rowcount == 1


async def unpaid_counted(cur, created_before: int, limit: int) -> list[dict]:
    """Unpaid packets created before `created_before` and still counted on their day."""
    await cur.execute(f"SELECT {PACKET_COLUMNS} FROM red_packet"
                      f" WHERE pay_status = {PayStatus.UNPAID} AND send_day IS NOT NULL"
                      " AND add_time < %s LIMIT %s", (created_before, limit))
    return [_packet(row) for row in await cur.fetchall()]


async def pay_status(cur, rp_id: int) -> PayStatus:
    await cur.execute("SELECT pay_status FROM red_packet WHERE id = %s", (rp_id,))
    return PayStatus((await cur.fetchone())["pay_status"])


async def share_at(cur, rp_id: int, seq: int) -> dict | None:
    await cur.execute(f"SELECT {SHARE_COLUMNS} FROM red_packet_log WHERE rp_id = %s AND seq = %s",
                      (rp_id, seq))
    return _share(await cur.fetchone())


async def share_of(cur, rp_id: int, user_id: int) -> dict | None:
    await cur.execute(f"SELECT {SHARE_COLUMNS} FROM red_packet_log WHERE rp_id = %s"
                      " AND user_id = %s", (rp_id, user_id))
    return _share(await cur.fetchone())


async def shares(cur, rp_id: int) -> list[dict]:
    await cur.execute(f"SELECT {SHARE_COLUMNS} FROM red_packet_log WHERE rp_id = %s ORDER BY seq",
                      (rp_id,))
    return [_share(row) for row in await cur.fetchall()]


async def final_holders(cur, rp_id: int) -> dict[int, int]:
    """user id → fen of each share of a packet that is paid and finished and whose every share
    is credited, when nothing about its shares can change any more; empty for any other packet
    (the shares grabbed before a provider's payment came are credited later, by settlement)."""
    await cur.execute("SELECT s.user_id, s.money FROM red_packet_log s JOIN red_packet p"
                      f" ON p.id = s.rp_id WHERE s.rp_id = %s AND p.pay_status = {PayStatus.PAID}"
                      " AND p.finish_time > 0 AND NOT EXISTS (SELECT 1 FROM red_packet_log u"
                      " WHERE u.rp_id = p.id AND u.is_into_account = 0)", (rp_id,))
    return {row["user_id"]: to_fen(row["money"]) for row in await cur.fetchall()}


async def mark_credited(cur, share_id: int) -> bool:
    await cur.execute("UPDATE red_packet_log SET is_into_account = 1"
                      " WHERE id = %s AND is_into_account = 0", (share_id,))
    return cur.rowcount == 1


async def finish(cur, rp_id: int) -> bool:
    """Record when the last share was taken; True only for the call that recorded it.

    The time is that of the last grab, not of this call: a packet whose finisher died is
    finished later (by a tap, or at its expiry) with the time its shares were really gone.
    A packet voided since its shares were seen taken is not finished: the void cancelled them."""
    await cur.execute(
        "UPDATE red_packet p JOIN (SELECT MAX(update_time) AS last FROM red_packet_log"
        " WHERE rp_id = %s) s SET p.finish_time = s.last, p.expend_time = s.last - p.pay_time"
        f" WHERE p.id = %s AND p.finish_time = 0 AND p.pay_status IN {GRABBABLE}", (rp_id, rp_id))
    return cur.rowcount == 1


async def taken_but_unfinished(cur, rp_ids) -> list[int]:
    """Grabbable packets among `rp_ids` whose every share is claimed but that are not finished."""
    ids = sorted(set(rp_ids))
    await cur.execute(
        "SELECT p.id FROM red_packet p WHERE p.id IN"
        f" ({marks(ids)}) AND p.finish_time = 0 AND p.pay_status IN {GRABBABLE}"
        " AND NOT EXISTS (SELECT 1 FROM red_packet_log s"
        " WHERE s.rp_id = p.id AND s.user_id IS NULL)", ids)
    return [row["id"] for row in await cur.fetchall()]


async def finished_among(cur, rp_ids) -> list[int]:
    """The packets among `rp_ids` that are finished."""
    ids = sorted(rp_ids)
    await cur.execute(f"SELECT id FROM red_packet WHERE id IN ({marks(ids)})"
                      " AND finish_time > 0", ids)
    return [row["id"] for row in await cur.fetchall()]


async def mark_best(cur, rp_id: int) -> dict:
    """Mark a finished packet's 手气最佳 and return it: the largest share; on a tie the earliest
    grab, which took the lowest slot."""
    await cur.execute("UPDATE red_packet_log SET is_good = 1 WHERE rp_id = %s"
                      " ORDER BY money DESC, seq LIMIT 1", (rp_id,))
    await cur.execute(f"SELECT {SHARE_COLUMNS} FROM red_packet_log WHERE rp_id = %s"
                      " AND is_good = 1", (rp_id,))
    return _share(await cur.fetchone())


async def grabs(cur, rp_id: int) -> list[dict]:
    """The grabbed shares of a packet, newest first."""
    await cur.execute(f"SELECT {SHARE_COLUMNS} FROM red_packet_log WHERE rp_id = %s"
                      " AND user_id IS NOT NULL ORDER BY update_time DESC, seq DESC", (rp_id,))
    return [_share(row) for row in await cur.fetchall()]


async def sent(cur, sender: int, start: int, end: int, before: int | None, limit: int) -> list[dict]:
    """Paid packets a user sent in [start, end), newest first, ids below `before`."""
    await cur.execute(
        f"SELECT {PACKET_COLUMNS} FROM red_packet"
        f" WHERE user_id = %s AND pay_status <> {PayStatus.UNPAID}"
        " AND pay_time >= %s AND pay_time < %s AND id < %s ORDER BY id DESC LIMIT %s",
        (sender, start, end, before or 2**63, limit))
    return [_packet(row) for row in await cur.fetchall()]


async def sent_totals(cur, sender: int, start: int, end: int) -> tuple[int, int]:
    await cur.execute(
        "SELECT COUNT(*) AS n, SUM(total_money) AS s FROM red_packet WHERE user_id = %s"
        f" AND pay_status <> {PayStatus.UNPAID} AND pay_time >= %s AND pay_time < %s",
        (sender, start, end))
    row = await cur.fetchone()
    return row["n"], to_fen(row["s"] or 0)


async def received(cur, user_id: int, start: int, end: int, before: tuple[int, int] | None,
                   limit: int) -> list[dict]:
    """Shares a user grabbed in [start, end), newest first, before the (time, id) cursor."""
    after_time, after_id = before or (2**32, 2**63)
    await cur.execute(
        f"SELECT {SHARE_COLUMNS} FROM red_packet_log WHERE user_id = %s"
        " AND update_time >= %s AND update_time < %s"
        " AND (update_time < %s OR (update_time = %s AND id < %s))"
        f" AND {NOT_VOIDED} ORDER BY update_time DESC, id DESC LIMIT %s",
        (user_id, start, end, after_time, after_time, after_id, limit))
    return [_share(row) for row in await cur.fetchall()]


async def received_totals(cur, user_id: int, start: int, end: int) -> tuple[int, int, int]:
    """(shares, money in fen, times best luck) a user grabbed in [start, end)."""
    await cur.execute(
        "SELECT COUNT(*) AS n, SUM(money) AS s, SUM(is_good) AS g FROM red_packet_log"
        f" WHERE user_id = %s AND update_time >= %s AND update_time < %s AND {NOT_VOIDED}",
        (user_id, start, end))
    row = await cur.fetchone()
    return row["n"], to_fen(row["s"] or 0), int(row["g"] or 0)


async def move_pay_status(cur, rp_id: int, from_status: PayStatus, to_status: PayStatus) -> bool:
    """Change the pay status only if it is still `from_status`; True for the call that did."""
    await cur.execute("UPDATE red_packet SET pay_status = %s WHERE id = %s AND pay_status = %s",
                      (int(to_status), rp_id, int(from_status)))
    return cur.rowcount == 1


async def set_trade_no(cur, rp_id: int, trade_no: str) -> None:
    await cur.execute("UPDATE red_packet SET trade_no = %s WHERE id = %s", (trade_no, rp_id))


async def uncredited(cur, rp_id: int) -> list[dict]:
    """Grabbed shares not yet credited to their grabbers."""
    await cur.execute(f"SELECT {SHARE_COLUMNS} FROM red_packet_log WHERE rp_id = %s"
                      " AND user_id IS NOT NULL AND is_into_account = 0 ORDER BY seq", (rp_id,))
    return [_share(row) for row in await cur.fetchall()]


async def awaiting_settlement_since(cur, before: int, limit: int) -> list[int]:
    """Packets still awaiting settlement that were sync-paid before `before`."""
    await cur.execute("SELECT id FROM red_packet"
                      f" WHERE pay_status = {PayStatus.AWAITING_SETTLEMENT} AND pay_time < %s"
                      " ORDER BY pay_time LIMIT %s", (before, limit))
    return [row["id"] for row in await cur.fetchall()]


async def with_uncredited_grabs(cur, grabbed_before: int, limit: int) -> list[int]:
    """Paid packets holding shares grabbed before `grabbed_before` and still not credited."""
    await cur.execute(
        "SELECT DISTINCT s.rp_id FROM red_packet_log s JOIN red_packet p ON p.id = s.rp_id"
        " WHERE s.is_into_account = 0 AND s.update_time > 0 AND s.update_time < %s"
        f" AND s.user_id IS NOT NULL AND p.pay_status = {PayStatus.PAID} LIMIT %s",
        (grabbed_before, limit))
    return [row["rp_id"] for row in await cur.fetchall()]


async def due_for_refund(cur, now: int, limit: int) -> list[int]:
    """Paid packets past their expiry whose refund has not been done."""
    await cur.execute(f"SELECT id FROM red_packet WHERE pay_status = {PayStatus.PAID}"
                      " AND is_cli_handle = 0 AND expire_time <= %s ORDER BY expire_time LIMIT %s",
                      (now, limit))
    return [row["id"] for row in await cur.fetchall()]


async def claim_refund(cur, rp_id: int) -> bool:
    """Take on the expiry refund of a packet; True for the one runner that does it."""
    await cur.execute("UPDATE red_packet SET is_cli_handle = 1"
                      f" WHERE id = %s AND pay_status = {PayStatus.PAID} AND is_cli_handle = 0",
                      (rp_id,))
    return cur.rowcount == 1


async def refund_free_shares(cur, rp_id: int) -> int:
    """Mark every share nobody grabbed as refunded; return their money in fen."""
    await cur.execute("UPDATE red_packet_log SET is_refunded = 1 WHERE rp_id = %s"
                      " AND user_id IS NULL AND is_refunded = 0", (rp_id,))
    await cur.execute("SELECT SUM(money) AS s FROM red_packet_log WHERE rp_id = %s"
                      " AND is_refunded = 1", (rp_id,))
    return to_fen((await cur.fetchone())["s"] or 0)


async def set_return_money(cur, rp_id: int, fen: int) -> None:
    await cur.execute("UPDATE red_packet SET return_money = %s WHERE id = %s",
                      (to_decimal(fen), rp_id))


async def with_unclaimed_shares(cur, paid_before: int, now: int, limit: int) -> list[int]:
    """Grabbable packets paid before `paid_before` that still have unclaimed shares."""
    await cur.execute(
        "SELECT DISTINCT p.id FROM red_packet p JOIN red_packet_log s ON s.rp_id = p.id"
        f" WHERE p.pay_status IN {GRABBABLE} AND p.is_cli_handle = 0 AND p.expire_time > %s"
        " AND p.pay_time < %s AND s.user_id IS NULL AND s.is_refunded = 0"
        " ORDER BY p.id DESC LIMIT %s", (now, paid_before, limit))
    return [row["id"] for row in await cur.fetchall()]


async def packets_of_shares(cur, share_ids) -> dict[int, int]:
    """share id → the id of its packet."""
    ids = sorted(set(share_ids))
    if not ids:
        return {}
    await cur.execute(f"SELECT id, rp_id FROM red_packet_log WHERE id IN"
                      f" ({marks(ids)})", ids)
    return {row["id"]: row["rp_id"] for row in await cur.fetchall()}


class ShareBook(NamedTuple):
    """A packet's shares by slot, fixed at creation: the share of slot `seq` (1, 2, …) is
    `ids[seq - 1]` and holds `money[seq - 1]` fen. Arrays, as a node keeps one for each of tens
    of thousands of packets."""
    ids: array
    money: array

    def at(self, seq: int) -> tuple[int, int]:
        return self.ids[seq - 1], self.money[seq - 1]

    @classmethod
    def of(cls, shares: list[dict]) -> "ShareBook":
        """From a packet's shares in fen, in slot order."""
        return cls(array("q", [s["id"] for s in shares]), array("q", [s["money"] for s in shares]))


async def share_books(cur, rp_ids) -> dict[int, ShareBook]:
    """rp_id → its ShareBook, for each of the packets."""
    ids = sorted(rp_ids)
    await cur.execute(f"SELECT rp_id, id, money FROM red_packet_log WHERE rp_id IN ({marks(ids)})"
                      " ORDER BY rp_id, seq", ids)
    shares: dict[int, list[dict]] = {rp_id: [] for rp_id in ids}
    for row in await cur.fetchall():
        shares[row["rp_id"]].append({"id": row["id"], "money": to_fen(row["money"])})
    return {rp_id: ShareBook.of(of_packet) for rp_id, of_packet in shares.items()}
