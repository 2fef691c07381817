"""Group commit of grabs: the claims of concurrent grabs are booked together.

While one batch is being written, the claims that arrive queue up; the next batch takes them
all and books them in one transaction with multi-row statements: claim the shares, credit the
wallets, write the ledger rows. Each grab is answered only once its batch has committed. If
any claim of a batch cannot be booked (its share went elsewhere after a Redis rebuild, or a user
already holds a share), the batch is rolled back and its claims are booked one by one, so one
odd claim never costs the others their answer.
"""
import time
from dataclasses import dataclass

from rtserver import notices, views
from rtserver.batching import Batcher, Closed
from rtserver.context import Context
from rtserver.errors import InvalidAmount, OutcomeUnknown
from rtserver.hub import user_room
from rtserver.money import format_fen
from rtserver.slots import Packet
from rtserver.uow import UnitOfWork, retrying
from rtserver.wallet import wallet_event
from storage import chat, grabs, packets, people, slots
from storage.db import is_duplicate, is_out_of_range
from storage.errors import is_deadlock, is_dependency_down
from storage.wallets import Balance

MAX_BATCH = 200  # claims in one transaction: multi-row statements stay well under packet limits
WRITERS = 2  # batches written at once: one is gathered while the other commits


class Conflict(Exception):
    """A claim of the batch matched no free share."""


@dataclass(frozen=True)
class Claim:
    """A grab's claim on the share its slot names (`seq`)."""
    packet: Packet
    user_id: int
    seq: int
    last: bool  # its slot was the packet's last free one

    @property
    def rp_id(self) -> int:
        return self.packet.id


class Booker:
    """One per node: books the claims of grabs in batches, WRITERS at once.

    Two batches may credit one wallet side by side: its `wallet` events then say which balance
    is newer by their `ledger_id`, and the wallets are locked in user-id order, so the batches
    wait for each other rather than deadlock."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.batches = Batcher(self._book_batch, size=MAX_BATCH, lanes=WRITERS)

    async def book(self, packet: Packet, user_id: int, slot: int, last: bool) -> dict | None:
        """Book the share of a taken slot; None when that share went to someone else."""
        try:
            answer, checked = await self.batches.submit(Claim(packet, user_id, slot, last))
        except Closed:  # no writer would book it: the retry, on this node or another, will
            raise OutcomeUnknown("the server is stopping") from None
        if last and answer is not None:
            # The grab that took the last slot is answered once its packet is finished, so
            # that what its user reads next says 已被领完.
            await self.ctx.finisher.until_finished(packet.id, checked)
        return answer

    async def close(self) -> None:
        """Book what is waiting, then stop."""
        await self.batches.close()

    async def _book_batch(self, batch: list[Claim]) -> list:
        """Each claim's answer, with the check of the batch's packets for a finish."""
        answers = await self._answers(batch)
        checked = self.ctx.finisher.check({c.rp_id for c in batch})
        return [a if isinstance(a, Exception) else (a, checked) for a in answers]

    async def _answers(self, batch: list[Claim]) -> list:
        try:
            return await retrying(lambda: book_together(self.ctx, batch))
        except Exception as exc:
            # MariaDB unreachable fails every claim alike. Anything else may be one claim's
            # doing (a share taken elsewhere, a wallet that cannot hold more) or a batch that
            # keeps deadlocking with another: book its claims one by one.
            if is_dependency_down(exc) and not is_deadlock(exc):
                raise
        answers = []
        for claim in batch:
            try:
                answers.append(await book_alone(self.ctx, claim))
            except Exception as exc:
                answers.append(exc)
        return answers


async def book_alone(ctx: Context, claim: Claim) -> dict | None:
    """Book one claim, and say what happened when its share could not be had."""
    try:
        return (await retrying(lambda: book_together(ctx, [claim])))[0]
    except Conflict:  # a racing request of this user won it, or someone else did
        return await share_outcome(ctx, claim.rp_id, claim.user_id, claim.seq)
    except Exception as exc:
        if is_out_of_range(exc):  # the grabber's wallet holds all it can: nothing was booked,
            # and the share is left for the expiry refund
            raise InvalidAmount("your wallet cannot hold this share") from None
        if not is_duplicate(exc):
            raise
        return await keep_held_share(ctx, claim.rp_id, claim.user_id, claim.seq)


async def book_together(ctx: Context, claims: list[Claim]) -> list[dict]:
    """Claim, credit and record every claim in one transaction, or raise Conflict; keep the
    notices of the grabs (rtserver/notices.py) in it.

    The unit of work of the hottest path, pipelined: its statements travel in one round trip
    (storage/grabs.py), and its events go out once it has committed."""
    async with ctx.db.cursor() as cur:
        books = await shares_of(ctx, cur, {c.rp_id for c in claims})
        names = await names_of(ctx, cur, {c.user_id for c in claims}
                               | {c.packet.sender for c in claims})
    share_ids = [books[c.rp_id].at(c.seq)[0] for c in claims]
    now = int(time.time())
    kept = [n for c in claims for n in notices.grabbed(c.packet, c.user_id, names, now)]
    async with UnitOfWork(ctx, pipelined=True) as uow:
        read = grabs.book(uow.pipeline, [(share_id, c.user_id) for c, share_id
                                         in zip(claims, share_ids)], now)
        first_notice = chat.queue_notices(uow.pipeline, kept)  # one more statement, same trip
        if ctx.outbox.enabled:
            for c in claims:
                uow.send_out("packet.grabbed", {
                    "rp_id": c.rp_id, "grabber": views.person(c.user_id, names),
                    "sender": views.person(c.packet.sender, names),
                    "money": format_fen(books[c.rp_id].at(c.seq)[1])})
        try:
            await uow.commit()
        except Exception as exc:
            if grabs.is_share_taken(exc):
                raise Conflict() from None
            raise
        shares = {share["id"]: share for share in grabs.booked(read)}
        for user_id, balance in _wallets_after(shares.values()).items():
            uow.emit([user_room(user_id)], wallet_event(balance))
        for c, share_id in zip(claims, share_ids):
            for rooms, event in grabbed_events(c, shares[share_id]["money"], names):
                uow.emit(rooms, event)
        notices.tell(uow, chat.notices_kept(first_notice, kept), names)
    return [{"result": "ok", "money": format_fen(shares[share_id]["money"]),
             "into_account": bool(shares[share_id]["is_into_account"])} for share_id in share_ids]


def _wallets_after(shares) -> dict[int, Balance]:
    """Each credited user's wallet after the batch, made by their last share's ledger row."""
    after = {}
    for share in sorted(shares, key=lambda s: s["id"]):
        if share["is_into_account"]:
            after[share["user_id"]] = Balance(share["balance"], share["ledger_id"])
    return after


async def shares_of(ctx: Context, cur, rp_ids: set[int]) -> dict[int, packets.ShareBook]:
    """Packets' shares by slot: fixed at creation, so kept once read."""
    return await ctx.caches.shares.get_many(rp_ids,
                                            lambda missing: packets.share_books(cur, missing))


async def names_of(ctx: Context, cur, user_ids) -> dict[int, str]:
    return await ctx.caches.names.get_many(user_ids, lambda missing: people.names(cur, missing))


def grabbed_events(claim: Claim, money: int, names: dict) -> list:
    """Tell the grabber what they got, and the sender who took it (WeChat's X领取了你的红包)."""
    sender = claim.packet.sender
    event = {"ev": "packet.grabbed", "rp_id": claim.rp_id,
             "grabber": views.person(claim.user_id, names),
             "sender": views.person(sender, names), "last": claim.last}
    events = [([user_room(claim.user_id)], {**event, "money": format_fen(money)})]
    if sender != claim.user_id:
        events.append(([user_room(sender)], event))
    return events


def already(share: dict) -> dict:
    return {"result": "already", "money": format_fen(share["money"]),
            "into_account": bool(share["is_into_account"])}


async def keep_held_share(ctx: Context, rp_id: int, user_id: int, slot: int) -> dict:
    """The user already holds another share (their slot was lost with Redis): keep that one and
    put the slot just taken back for someone else."""
    async with ctx.db.cursor() as cur:
        share = await packets.share_of(cur, rp_id, user_id)
    await slots.give_back(ctx.redis, ctx.keys, rp_id, user_id, slot, share["seq"])
    return already(share)


async def share_outcome(ctx: Context, rp_id: int, user_id: int, seq: int) -> dict | None:
    """What became of the share a slot names, read afresh (outside any transaction's snapshot):
    this user's (`already`), refunded (`expired`), or None — still free, or someone else's."""
    async with ctx.db.cursor() as cur:
        share = await packets.share_at(cur, rp_id, seq)
    if share["user_id"] == user_id:
        return already(share)
    if share["is_refunded"]:
        return {"result": "expired"}
    return None
