"""Third-party payment orders and the notifications received for them."""
import json

from storage.db import marks, to_decimal, to_fen
from storage.schema import PayStatus

ORDER_COLUMNS = "out_trade_no, rp_id, provider, amount, add_time, placed, queries"


async def insert_order(cur, out_trade_no: str, rp_id: int, provider: str, amount: int,
                       now: int) -> None:
    await cur.execute(
        "INSERT INTO payment_orders (out_trade_no, rp_id, provider, amount, add_time)"
        " VALUES (%s, %s, %s, %s, %s)", (out_trade_no, rp_id, provider, to_decimal(amount), now))


def _order(row: dict | None) -> dict | None:
    return row and {**row, "amount": to_fen(row["amount"])}


async def order(cur, out_trade_no: str) -> dict | None:
    await cur.execute(f"SELECT {ORDER_COLUMNS} FROM payment_orders"
                      " WHERE out_trade_no = %s", (out_trade_no,))
    return _order(await cur.fetchone())


async def order_of_packet(cur, rp_id: int) -> dict | None:
    await cur.execute(f"SELECT {ORDER_COLUMNS} FROM payment_orders"
                      " WHERE rp_id = %s", (rp_id,))
    return _order(await cur.fetchone())


async def record_sync_result(cur, rp_id: int, result: dict) -> None:
    await cur.execute("UPDATE payment_orders SET sync_result = %s WHERE rp_id = %s",
                      (json.dumps(result, ensure_ascii=False, default=str)[:60000], rp_id))


async def record_notification(cur, provider: str, trade_no: str, out_trade_no: str, amount: int,
                              status: str, body: str, now: int) -> None:
    """Record a notification; a repeat of the same provider trade raises IntegrityError."""
    await cur.execute(
        "INSERT INTO payment_notifications (provider, trade_no, out_trade_no, amount, status,"
        " body, add_time) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (provider, trade_no, out_trade_no, to_decimal(amount), status, body[:60000], now))



async def set_placed(cur, out_trade_no: str, placed: str) -> None:
    """Keep what the provider gave the app for this order (the first answer stays)."""
    await cur.execute("UPDATE payment_orders SET placed = %s WHERE out_trade_no = %s"
                      " AND placed IS NULL", (placed, out_trade_no))


async def due_for_query(cur, providers: list[str], created_before: int, now: int,
                        limit: int) -> list[dict]:
    """Orders of these providers, placed by `created_before`, whose packet still waits for its
    money and whose next query is due."""
    return await _waiting(cur, providers, created_before, limit,
                          " AND o.next_query <= %s ORDER BY o.next_query", (now,))


async def overdue(cur, providers: list[str], created_before: int, limit: int) -> list[dict]:
    """Orders of these providers placed by `created_before` whose packet never got its money
    (unpaid, or awaiting its notification)."""
    return await _waiting(cur, providers, created_before, limit, " ORDER BY o.add_time", ())


async def _waiting(cur, providers: list[str], created_before: int, limit: int, more: str,
                   more_args: tuple) -> list[dict]:
    """The orders of these providers placed by `created_before` whose packet is unpaid or
    awaiting its notification, narrowed and ordered by `more`."""
    if not providers:
        return []
    await cur.execute(
        f"SELECT {', '.join('o.' + c for c in ORDER_COLUMNS.split(', '))}"
        " FROM payment_orders o JOIN red_packet p ON p.id = o.rp_id"
        f" WHERE o.provider IN ({marks(providers)})"
        f" AND p.pay_status IN ({PayStatus.UNPAID}, {PayStatus.AWAITING_SETTLEMENT})"
        f" AND o.add_time <= %s{more} LIMIT %s", (*providers, created_before, *more_args, limit))
    return [_order(row) for row in await cur.fetchall()]


async def queried(cur, out_trade_no: str, next_query: int) -> None:
    """The provider said "not paid yet": ask again at `next_query`."""
    await cur.execute("UPDATE payment_orders SET queries = queries + 1, next_query = %s"
                      " WHERE out_trade_no = %s", (next_query, out_trade_no))


async def orders_of_packets(cur, rp_ids) -> list[dict]:
    if not rp_ids:
        return []
    await cur.execute(f"SELECT {ORDER_COLUMNS} FROM payment_orders"
                      f" WHERE rp_id IN ({marks(rp_ids)})", list(rp_ids))
    return [_order(row) for row in await cur.fetchall()]


async def packets_of_trades(cur, trades: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(provider, trade_no) of accepted payments → the id of the packet they were for."""
    if not trades:
        return {}
    await cur.execute(
        "SELECT n.provider, n.trade_no, o.rp_id FROM payment_notifications n"
        " JOIN payment_orders o ON o.out_trade_no = n.out_trade_no WHERE n.status = 'accepted'"
        f" AND ({' OR '.join(['(n.provider = %s AND n.trade_no = %s)'] * len(trades))})",
        [part for trade in trades for part in trade])
    return {(row["provider"], row["trade_no"]): row["rp_id"] for row in await cur.fetchall()}
