"""Refunds back where the money came from (WeChat's 原路退回), and the balance otherwise.

Money paid through a provider that rtserver calls goes back through that provider's refund API
under `--refund-to original` (the default): the refund is written in the transaction that takes
the money out of its packet, then sent by the jobs' next sweep — never inside a transaction —
and sent again with the same refund number, with backoff, until the provider takes it. The provider's notification,
or a later query, says how it ended. One it gives up on (a closed card) is credited to the
payer's balance instead, so money never stays stuck between the two.
"""
import hashlib
import logging
import random
import time

from rtserver.context import Context
from rtserver.errors import NotFound
from rtserver.hub import user_room
from rtserver.money import format_fen
from rtserver.providers.calls import ProviderDown, ProviderRefused, side_by_side
from rtserver.providers.trades import Order, Refund, RefundAnswer
from rtserver.uow import UnitOfWork
from rtserver.wallet import wallet_event
from storage import payments, provider_refunds, wallets

log = logging.getLogger("rtserver.refunds")

FIRST_RETRY, MOST_RETRY = 10, 3600  # seconds before a refund is tried again, doubling
LOOK_AFTER = 60  # seconds after the provider accepted a refund before asking how it ended
SEND_AT_ONCE = 50  # refunds one sweep sends


def goes_back_to_provider(ctx: Context, provider_name: str) -> bool:
    provider = ctx.providers.get(provider_name)
    return ctx.settings.refund_to == "original" and provider is not None \
        and provider.places_orders


def refund_number(rp_id: int, kind: str, ref: str) -> str:
    """The refund's number, the same on every try: letters and digits, 13 or 25 of them."""
    if kind == "refund":  # the expiry refund: one per packet
        return f"RF{rp_id:010d}E"
    return f"RF{rp_id:010d}L{hashlib.sha256(ref.encode()).hexdigest()[:12]}"


async def give_back(uow: UnitOfWork, packet: dict, order: dict | None, trade_no: str,
                    amount: int, kind: str, ref: str) -> str:
    """Return `amount` of a packet's payment to its sender, in `uow`: through the provider when
    it was paid through one that takes refunds, else to the balance. Return where: `original`
    or `balance`. `kind` and `ref` name the cause as the ledger does (`refund` and the packet
    id, or `void_refund` and provider:trade_no); each cause is refunded once."""
    now, sender = int(time.time()), packet["user_id"]
    if order is not None and goes_back_to_provider(uow.ctx, order["provider"]):
        await provider_refunds.insert(uow.cur, refund_number(packet["id"], kind, ref), kind, ref,
                                      order["provider"], order["out_trade_no"], trade_no,
                                      packet["id"], sender, amount, now)
        return "original"
    balance = await wallets.credit(uow.cur, sender, amount, kind, ref, now)
    uow.emit([user_room(sender)], wallet_event(balance))
    return "balance"


async def send_due(ctx: Context) -> int:
    """Send the refunds whose try is due, and ask about those the providers accepted; return
    how many ended."""
    async with ctx.db.cursor() as cur:
        due = await provider_refunds.due(cur, int(time.time()), SEND_AT_ONCE)
    return await side_by_side(ctx, due, _try)


async def _try(ctx: Context, row: dict) -> int:
    provider = ctx.providers.get(row["provider"])
    if provider is None or not provider.places_orders:  # its keys are not on this node
        await _later(ctx, row, row["state"], "this node has no keys for the provider")
        return 0
    refund = await _refund_of(ctx, row)
    try:
        if row["state"] == "requested":
            answer = await provider.refund(refund)
        else:
            answer = await provider.query_refund(refund)
    except (ProviderDown, ProviderRefused) as exc:
        await _later(ctx, row, "requested" if row["state"] == "requested" else "accepted",
                     exc.message)
        return 0
    return await settle_answer(ctx, row, answer)


async def settle_answer(ctx: Context, row: dict, answer: RefundAnswer) -> int:
    """Apply what the provider said of a refund; 1 if that ended it."""
    now = int(time.time())
    text = provider_refunds.answer_text(answer.state, answer.detail, now)
    if answer.state == "pending":
        async with ctx.db.cursor() as cur:
            if row["state"] == "requested":
                await provider_refunds.move(cur, row["out_refund_no"], "accepted", text, now,
                                            answer.refund_id, now + LOOK_AFTER)
            else:
                await provider_refunds.try_later(cur, row["out_refund_no"], text,
                                                 now + _backoff(row["tries"], LOOK_AFTER), now)
        return 0
    if answer.state == "succeeded":
        async with ctx.db.cursor() as cur:
            return int(await provider_refunds.move(cur, row["out_refund_no"], "succeeded", text,
                                                   now, answer.refund_id))
    return int(await _failed(ctx, row, text, answer.refund_id))


async def _failed(ctx: Context, row: dict, text: str, refund_id: str) -> bool:
    """The provider gave up on a refund: credit the payer's balance instead, once."""
    async with UnitOfWork(ctx) as uow:
        if not await provider_refunds.move(uow.cur, row["out_refund_no"], "failed", text,
                                           int(time.time()), refund_id):
            return False
        balance = await wallets.credit(uow.cur, row["user_id"], row["amount"], row["kind"],
                                       row["ref"], int(time.time()))
        room = [user_room(row["user_id"])]
        uow.emit(room, wallet_event(balance))
        refunded = {"rp_id": row["rp_id"], "return_money": format_fen(row["amount"]),
                    "to": "balance"}
        uow.emit(room, {"ev": "packet.refunded", **refunded})
        uow.send_out("packet.refunded", refunded)
        await uow.commit()
    log.warning("refund %s failed at %s: credited to the balance", row["out_refund_no"],
                row["provider"])
    return True


async def notified(ctx: Context, provider_name: str, note) -> None:
    """A provider's refund notification (verified): apply how the refund ended."""
    async with ctx.db.cursor() as cur:
        row = await provider_refunds.get(cur, note.out_refund_no)
    if row is None or row["provider"] != provider_name:
        raise NotFound(f"unknown refund {note.out_refund_no}")
    await settle_answer(ctx, row, RefundAnswer(note.state, note.refund_id, "notification"))


async def _later(ctx: Context, row: dict, state: str, why: str) -> None:
    now = int(time.time())
    async with ctx.db.cursor() as cur:
        await provider_refunds.try_later(cur, row["out_refund_no"],
                                         provider_refunds.answer_text(state, why, now),
                                         now + _backoff(row["tries"], FIRST_RETRY), now)


def _backoff(tries: int, first: int) -> int:
    """Seconds before the next try: doubling from `first`, at most MOST_RETRY, with jitter."""
    most = min(first * 2 ** min(tries, 16), MOST_RETRY)
    return random.randint(most // 2, most)


async def _refund_of(ctx: Context, row: dict) -> Refund:
    async with ctx.db.cursor() as cur:
        order = await payments.order(cur, row["out_trade_no"])
    return Refund(out_refund_no=row["out_refund_no"],
                  order=Order.of_row(order, ctx.settings.payment_timeout,
                                     trade_no=row["trade_no"]),
                  amount=row["amount"], created=row["add_time"])
