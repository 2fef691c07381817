"""Third-party payment orders and the notifications received for them."""
import json

from storage.db import to_decimal, to_fen

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

