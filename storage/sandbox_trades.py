"""The --dev sandbox gateway's trades: one per order."""
from storage.db import is_duplicate


async def insert(cur, out_trade_no: str, trade_no: str, status: str, now: int) -> bool:
    """Record an order's trade; False, recording nothing, when the order has one already."""
    try:
        await cur.execute("INSERT INTO sandbox_trades (out_trade_no, trade_no, status, add_time)"
                          " VALUES (%s, %s, %s, %s)", (out_trade_no, trade_no, status, now))
    except Exception as exc:
        if not is_duplicate(exc):
            raise
        return False
    return True


async def of_order(cur, out_trade_no: str) -> dict | None:
    await cur.execute("SELECT trade_no, status FROM sandbox_trades WHERE out_trade_no = %s",
                      (out_trade_no,))
    return await cur.fetchone()
