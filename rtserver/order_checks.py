"""Asking the providers instead of waiting for them: orders with no notification are queried,
and orders past `--payment-timeout` are closed at the provider before their packet is voided.

A notification can be lost; then the payer's money is at the provider and only a query finds
it. A query that finds it paid pays the packet exactly as the notification would have (the same
once-only record, `payments.trade_known`); one that finds it closed voids it at once. At the
time-out the order is closed first, so that no payment can arrive afterwards: if the provider
answers that it was paid, the packet is paid instead. Only providers that take calls
(`places_orders`) are asked; the others keep v1's wait and void.
"""
import logging
import random
import time

from rtserver.context import Context
from rtserver.payments import trade_known, void
from rtserver.providers.calls import ProviderDown, ProviderRefused, side_by_side
from rtserver.providers.trades import Notification, Order, Trade
from storage import payments

log = logging.getLogger("rtserver.orders")

QUERY_AT_ONCE = 100  # orders one sweep asks about
MOST_BETWEEN_QUERIES = 300  # seconds: an order is asked about at least this often


def calling(ctx: Context) -> list[str]:
    """The providers this node calls."""
    return [name for name, provider in ctx.providers.items() if provider.places_orders]


async def query_unnotified(ctx: Context) -> int:
    """Query the orders that had no notification for --order-query-after seconds; return how
    many the answers paid or voided."""
    now = int(time.time())
    async with ctx.db.cursor() as cur:
        due = await payments.due_for_query(cur, calling(ctx),
                                           now - ctx.settings.order_query_after, now,
                                           QUERY_AT_ONCE)
    return await side_by_side(ctx, due, _query)


async def _query(ctx: Context, order: dict) -> bool:
    provider = ctx.providers[order["provider"]]
    try:
        trade = await provider.query(Order.of_row(order, ctx.settings.payment_timeout))
    except (ProviderDown, ProviderRefused) as exc:
        log.info("query of %s at %s: %s", order["out_trade_no"], order["provider"], exc.message)
        trade = Trade("unpaid")
    if trade.state == "unpaid":
        async with ctx.db.cursor() as cur:
            await payments.queried(cur, order["out_trade_no"],
                                   int(time.time()) + _between(ctx, order["queries"]))
        return False
    await trade_known(ctx, order["provider"], _noted(order, trade), "query")
    return True


async def close_overdue(ctx: Context) -> int:
    """Close at the provider the orders whose packet's payment did not come in time, then void
    those packets; a provider that says "paid" pays it instead. Return how many were decided."""
    async with ctx.db.cursor() as cur:
        overdue = await payments.overdue(cur, calling(ctx),
                                         int(time.time()) - ctx.settings.payment_timeout,
                                         QUERY_AT_ONCE)
    return await side_by_side(ctx, overdue, _close)


async def _close(ctx: Context, order: dict) -> bool:
    provider = ctx.providers[order["provider"]]
    try:
        trade = await provider.close(Order.of_row(order, ctx.settings.payment_timeout))
    except (ProviderDown, ProviderRefused) as exc:  # money may still come: not voided yet
        log.warning("close of %s at %s: %s; tried again next sweep", order["out_trade_no"],
                    order["provider"], exc.message)
        return False
    if trade.state == "paid":
        await trade_known(ctx, order["provider"], _noted(order, trade), "close")
    elif trade.state == "closed":
        await void(ctx, order["rp_id"])
    return trade.state != "unpaid"


def _noted(order: dict, trade: Trade) -> Notification:
    return Notification(out_trade_no=order["out_trade_no"], trade_no=trade.trade_no,
                        amount=trade.amount, state=trade.state)


def _between(ctx: Context, queries: int) -> int:
    """Seconds before asking again: --order-query-after, doubling, at most five minutes."""
    most = min(ctx.settings.order_query_after * 2 ** min(queries, 10), MOST_BETWEEN_QUERIES)
    return random.randint(max(1, most // 2), max(1, most))
