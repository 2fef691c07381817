"""Daily limits (每日限额): what one user may send in packets on one Beijing day, whatever the
payment type (--daily-send-limit, --daily-send-count).

docs/protocol.md counts the packets paid that day but refuses at `packet.create`, before anything is
paid. Both hold because a packet is counted from its create on: `packet.create` adds it to the
user's row for the day (daily_sends) in its own transaction, whose lock makes one user's creates
count one after another however many sockets send them, and refuses it there when the day's
totals with it pass the limit. A packet stays counted while it is paid or may still be paid,
and is uncounted when it will not be: voided, or unpaid --payment-timeout after its create.
One paid after that is counted again on the day it is paid: from the balance only within the
limit (else `packet.pay` fails with `limit_exceeded`), from a provider always, since the money
was paid there already.
"""
import datetime
import time

from rtserver.context import Context
from rtserver.errors import LimitExceeded
from rtserver.limits import beijing_day
from rtserver.uow import UnitOfWork
from storage import daily_sends, packets
from storage.schema import PayStatus

LAPSED_AT_ONCE = 500  # unpaid packets one sweep uncounts


async def count_new(cur, ctx: Context, user_id: int, fen: int, now: int) -> datetime.date:
    """Count a new packet of `fen` on the user's day, within the limit; return the day."""
    day = beijing_day(now)
    await _count(cur, ctx, user_id, day, fen, within_limit=True)
    return day


async def count_paid(cur, ctx: Context, packet: dict, now: int, within_limit: bool) -> None:
    """A packet is being paid: it is counted on its day already, unless it lapsed unpaid; then
    it is counted on today's, and `within_limit` says whether the limit may refuse it."""
    day = beijing_day(now)
    if await packets.count_on(cur, packet["id"], day):
        await _count(cur, ctx, packet["user_id"], day, packet["total"], within_limit)


async def uncount(cur, packet: dict, pay_status: PayStatus) -> bool:
    """A packet in `pay_status` will not be paid: give its place on its day back, once; True
    for the call that did."""
    day = packet["send_day"]
    if day is None or not await packets.uncount(cur, packet["id"], day, pay_status):
        return False
    await daily_sends.take_back(cur, packet["user_id"], day, packet["total"])
    return True


async def uncount_lapsed(ctx: Context) -> int:
    """Uncount the packets still unpaid --payment-timeout after their create (a payment the
    sender gave up on); return how many. A pay at the same moment either comes first (the
    packet is paid, and stays counted) or finds it uncounted, and counts it again."""
    async with ctx.db.cursor() as cur:
        lapsed = await packets.unpaid_counted(
            cur, int(time.time()) - ctx.settings.payment_timeout, LAPSED_AT_ONCE)
    done = 0
    for packet in lapsed:
        async with UnitOfWork(ctx) as uow:
            done += await uncount(uow.cur, packet, PayStatus.UNPAID)
            await uow.commit()
    return done


async def _count(cur, ctx: Context, user_id: int, day: datetime.date, fen: int,
                 within_limit: bool) -> None:
    limit = ctx.settings.daily_limit
    sent, sent_fen = await daily_sends.add(cur, user_id, day, fen)
    if within_limit and not limit.allows(sent, sent_fen):
        raise LimitExceeded(limit.refusal(sent, sent_fen))  # the transaction rolls back
