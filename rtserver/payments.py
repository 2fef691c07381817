"""Third-party payment (the original design's section 四): orders, the app's synchronous
callback, the providers' notifications, and voiding packets whose payment never arrived.

The synchronous callback only lets grabbing start (pay_status 2, shares not credited); money
moves only on a verified notification. Every change of pay status is a conditional update, so
any ordering of callback, notifications, repeats and time-outs moves money once.
"""
import secrets
import time

from rtserver import access, daily, provider_refunds
from rtserver.chat import put_in_room
from rtserver.context import Context
from rtserver.errors import AlreadyPaid, BadRequest, Forbidden, InvalidAmount, NotFound
from rtserver.hub import user_room
from rtserver.money import format_fen
from rtserver.providers.trades import Notification, Order, RefundNotification
from rtserver.uow import UnitOfWork
from storage import packets, payments, slots
from storage.db import is_duplicate
from storage.queue import SettlementQueue
from storage.schema import PayStatus, PayType


def provider_of(ctx: Context, name: str):
    provider = ctx.providers.get(name)
    if provider is None:
        raise BadRequest(f"{name} is not configured on this server")
    return provider


async def open_order(uow: UnitOfWork, packet: dict, provider_name: str) -> dict:
    """Record the payment order of a new packet; it is placed with the provider once this
    transaction has committed (`place_order`), never inside it."""
    order = {"out_trade_no": f"RP{packet['id']}T{secrets.token_hex(6)}", "rp_id": packet["id"],
             "provider": provider_name, "amount": packet["total"], "add_time": int(time.time()),
             "placed": None}
    await payments.insert_order(uow.cur, order["out_trade_no"], packet["id"], provider_name,
                                packet["total"], order["add_time"])
    return order


async def place_order(ctx: Context, order: dict, subject: str, place: bool = True) -> dict:
    """Place the order with its provider, unless that was done (or `place` is False: its packet
    is no longer unpaid), and return what the app's SDK takes. A provider that cannot be reached
    raises `unavailable`, one that refuses `bad_request`: the packet stays unpaid, no money
    moves, and a repeat of the create places it again."""
    provider = provider_of(ctx, order["provider"])
    at_provider = Order.of_row(order, ctx.settings.payment_timeout, subject)
    placed = order["placed"] or ""
    if place and provider.places_orders and not placed:
        placed = await provider.place(at_provider)
        if placed:
            async with ctx.db.cursor() as cur:
                await payments.set_placed(cur, order["out_trade_no"], placed)
    return {"provider": order["provider"], "out_trade_no": order["out_trade_no"],
            "amount": format_fen(order["amount"]), **provider.app_params(at_provider, placed)}


async def sync_paid(ctx: Context, user_id: int, rp_id: int, result: dict) -> dict:
    """The app says the payment app succeeded: let grabbing start, credit nothing yet."""
    now = int(time.time())
    async with UnitOfWork(ctx) as uow:
        packet = await packets.get(uow.cur, rp_id)
        if packet is None:
            raise NotFound("no such packet")
        if packet["user_id"] != user_id:
            raise Forbidden("only the sender reports a payment")
        if packet["pay_type"] == PayType.BALANCE:
            raise BadRequest("this packet is paid from the balance: use packet.pay")
        await payments.record_sync_result(uow.cur, rp_id, result)
        if packet["pay_status"] == PayStatus.PAID:  # the notification came first
            await uow.commit()
            return {"pay_status": PayStatus.PAID}
        opened = await packets.mark_paid(uow.cur, rp_id, PayStatus.AWAITING_SETTLEMENT, now,
                                         now + ctx.settings.packet_ttl)
        if opened:
            # The payment app took the money: the daily limit can no longer refuse it.
            await daily.count_paid(uow.cur, ctx, packet, now, within_limit=False)
            await put_in_room(uow, await packets.get(uow.cur, rp_id), now)
        await uow.commit()
    if opened:
        return {"pay_status": PayStatus.AWAITING_SETTLEMENT}
    async with ctx.db.cursor() as cur:  # a notification may have paid it a moment ago
        if await packets.pay_status(cur, rp_id) == PayStatus.PAID:
            return {"pay_status": PayStatus.PAID}
    raise AlreadyPaid()


async def notified(ctx: Context, provider_name: str, headers, body: bytes) -> None:
    """Verify a provider's notification and apply it, once; a repeat changes nothing.

    Raises (and changes nothing) for a bad signature, an unknown order or a wrong amount.
    """
    provider = ctx.providers.get(provider_name)
    if provider is None:
        raise NotFound(f"{provider_name} is not configured on this server")
    note = provider.verify(headers, body)
    if isinstance(note, RefundNotification):
        await provider_refunds.notified(ctx, provider_name, note)
    else:
        await trade_known(ctx, provider_name, note, body.decode("utf-8", "replace"))


async def trade_known(ctx: Context, provider_name: str, note: Notification, said: str) -> None:
    """Apply what a provider said of an order — by notification, or answering a query or a
    close — once, whichever comes first and however often either repeats: paid pays it,
    closed voids its packet at once. `said` is kept with the record."""
    try:
        async with UnitOfWork(ctx) as uow:
            order = await payments.order(uow.cur, note.out_trade_no)
            if order is None or order["provider"] != provider_name:
                raise NotFound(f"unknown order {note.out_trade_no}")
            if note.state == "paid" and note.amount != order["amount"]:
                raise InvalidAmount(f"paid {format_fen(note.amount)}, the order is for "
                                    f"{format_fen(order['amount'])}")
            if note.trade_no:  # a closed order may have no trade at the provider at all
                await payments.record_notification(
                    uow.cur, provider_name, note.trade_no, note.out_trade_no, note.amount,
                    NOTED[note.state], said, int(time.time()))
            if note.state == "paid":
                await apply_payment(uow, order, note)
            await uow.commit()
    except Exception as exc:
        if not is_duplicate(exc):
            raise
    if note.state == "closed":  # again on a repeat: the void is once-only itself
        await void(ctx, order["rp_id"])


# How a notification is recorded (payment_notifications.status): only `accepted` is money.
NOTED = {"paid": "accepted", "unpaid": "unpaid", "closed": "closed"}


async def apply_payment(uow: UnitOfWork, order: dict, note: Notification) -> None:
    """Money arrived for a packet: pay it, or, if it cannot take it any more, give it back."""
    ctx, rp_id, now = uow.ctx, order["rp_id"], int(time.time())
    if await packets.mark_paid(uow.cur, rp_id, PayStatus.PAID, now, now + ctx.settings.packet_ttl):
        await packets.set_trade_no(uow.cur, rp_id, note.trade_no)
        packet = await packets.get(uow.cur, rp_id)
        await daily.count_paid(uow.cur, ctx, packet, now, within_limit=False)
        await put_in_room(uow, packet, now)
    elif await packets.move_pay_status(uow.cur, rp_id, PayStatus.AWAITING_SETTLEMENT,
                                       PayStatus.PAID):
        await packets.set_trade_no(uow.cur, rp_id, note.trade_no)
        uow.after_commit(lambda: SettlementQueue(ctx.redis, ctx.keys).put(rp_id))
    else:
        # Voided after its time-out, or paid already by another trade: the money is the
        # sender's, and goes back the way it came.
        packet = await packets.get(uow.cur, rp_id)
        await provider_refunds.give_back(uow, packet, order, note.trade_no, note.amount,
                                         "void_refund", f"{order['provider']}:{note.trade_no}")


async def void_overdue(ctx: Context) -> int:
    """Void every packet whose payment has not arrived within --payment-timeout, unless its
    provider takes calls: those are closed at the provider first (rtserver/order_checks.py)."""
    async with ctx.db.cursor() as cur:
        overdue = await packets.awaiting_settlement_since(
            cur, int(time.time()) - ctx.settings.payment_timeout, limit=500)
        orders = {o["rp_id"]: o for o in await payments.orders_of_packets(cur, overdue)}
    return sum([await void(ctx, rp_id) for rp_id in overdue
                if not closes_first(ctx, orders.get(rp_id))])


def closes_first(ctx: Context, order: dict | None) -> bool:
    provider = order and ctx.providers.get(order["provider"])
    return bool(provider and provider.places_orders)


async def void(ctx: Context, rp_id: int) -> bool:
    """Void one packet still waiting for its money; True for the runner that did it."""
    async with UnitOfWork(ctx) as uow:
        if not await packets.move_pay_status(uow.cur, rp_id, PayStatus.AWAITING_SETTLEMENT,
                                             PayStatus.VOIDED) and \
                not await packets.move_pay_status(uow.cur, rp_id, PayStatus.UNPAID,
                                                  PayStatus.VOIDED):
            return False
        packet = await packets.get(uow.cur, rp_id)
        await daily.uncount(uow.cur, packet, PayStatus.VOIDED)
        grabbers = [s["user_id"] for s in await packets.grabs(uow.cur, rp_id)]
        uow.emit([user_room(uid) for uid in {packet["user_id"], *grabbers}],
                 {"ev": "packet.voided", "rp_id": rp_id})
        uow.send_out("packet.voided", {"rp_id": rp_id, "grabbed_count": len(grabbers)})
        uow.emit(access.packet_rooms(packet), {"ev": "packet.state", "rp_id": rp_id,
                                               "status": "voided",
                                               "grabbed_count": len(grabbers)})
        uow.after_commit(lambda: slots.forget(ctx.redis, ctx.keys, rp_id))
        await uow.commit()
    return True
