"""Group commit of grabs: the claims of concurrent grabs are booked together.

While one batch is being written, the claims that arrive queue up; the next batch takes them
all and books them in one transaction with multi-row statements: claim the shares, credit the
wallets, write the ledger rows. Each grab is answered only once its batch has committed. If
any claim of a batch cannot be booked (its share went elsewhere after a Redis rebuild, or a user
already holds a share), the batch is rolled back and its claims are booked one by one, so one
odd claim never costs the others their answer.
"""
import asyncio
import logging
import time
from dataclasses import dataclass

from rtserver import views
from rtserver.context import Context
from rtserver.errors import OutcomeUnknown
from rtserver.finishing import finisher_of
from rtserver.hub import user_room
from rtserver.money import format_fen
from rtserver.uow import publish, retrying
from rtserver.wallet import wallet_event
from storage import grabs, packets, people, slots
from storage.db import is_duplicate
from storage.errors import is_deadlock, is_dependency_down
from storage.wallets import Balance

log = logging.getLogger("rtserver.booking")

MAX_BATCH = 200  # claims in one transaction: multi-row statements stay well under packet limits
WRITERS = 2  # batches written at once: one is gathered while the other commits


class Conflict(Exception):
    """A claim of the batch matched no free share."""


@dataclass
class Claim:
    meta: dict
    rp_id: int
    user_id: int
    seq: int
    last: bool
    answer: asyncio.Future


class Booker:
    """One per node: takes claims from grabs, books them in batches.

    A user's claims are never in two batches being written at once: the batches that credit a
    wallet commit, and send their `wallet` events, one after another, so the last event a user
    hears holds their balance (two batches committing side by side could tell it out of order).
    """

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.waiting: list[Claim] = []
        self.booking: set[int] = set()  # users with claims in a batch being written
        self.changed = asyncio.Event()  # a claim arrived, or a batch let its users go
        self.closing = False
        self.writers: list[asyncio.Task] = []
        self.finisher = finisher_of(ctx)
        self.loop = asyncio.get_running_loop()  # kept: asking costs a system call (getpid)

    async def book(self, meta: dict, rp_id: int, user_id: int, slot: int, last: bool):
        """Book the share of a taken slot; None when that share went to someone else."""
        if self.closing:  # no writer would book it: the retry, on this node or another, will
            raise OutcomeUnknown("the server is stopping")
        if not self.writers:
            self.writers = [self.loop.create_task(self._write()) for _ in range(WRITERS)]
        claim = Claim(meta, rp_id, user_id, slot, last, self.loop.create_future())
        self.waiting.append(claim)
        self.changed.set()
        return await claim.answer

    async def close(self) -> None:
        """Book what is waiting, then stop. A writer is never cancelled in the middle of a
        batch: a query cut off half read would leave its connection unusable."""
        self.closing = True
        self.changed.set()
        await asyncio.gather(*self.writers, return_exceptions=True)

    async def _write(self) -> None:
        while True:
            if not any(c.user_id not in self.booking for c in self.waiting):
                if self.closing and not self.waiting:
                    return
                self.changed.clear()
                await self.changed.wait()
                continue
            await asyncio.sleep(0)  # let grabs that are ready add their claims
            batch = self._take_batch()
            if not batch:  # the other writer took them meanwhile
                continue
            users = {c.user_id for c in batch}
            self.booking |= users
            try:
                answers = await self._book_batch(batch)
            except Exception as exc:  # each grab hears of the failure, the writer goes on
                answers = [exc] * len(batch)
            finally:
                self.booking -= users
                self.changed.set()
            checked = self.finisher.check(c.rp_id for c in batch)
            for claim, answer in zip(batch, answers):
                if claim.last and not isinstance(answer, Exception):
                    # The grab that took the last slot is answered once its packet is finished,
                    # so that what its user reads next says 已被领完.
                    checked.add_done_callback(lambda _, c=claim, a=answer: _settle(c, a))
                else:
                    _settle(claim, answer)

    def _take_batch(self) -> list[Claim]:
        """The waiting claims of users not being booked, in arrival order, up to MAX_BATCH."""
        batch, rest = [], []
        for claim in self.waiting:
            free = claim.user_id not in self.booking and len(batch) < MAX_BATCH
            (batch if free else rest).append(claim)
        self.waiting = rest
        return batch

    async def _book_batch(self, batch: list[Claim]) -> list:
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


def _settle(claim: Claim, answer) -> None:
    if claim.answer.done():
        return
    if isinstance(answer, Exception):
        claim.answer.set_exception(answer)
    else:
        claim.answer.set_result(answer)


def booker_of(ctx: Context) -> Booker:
    if ctx.booker is None:
        ctx.booker = Booker(ctx)
    return ctx.booker


async def book_alone(ctx: Context, claim: Claim) -> dict | None:
    """Book one claim, and say what happened when its share could not be had."""
    try:
        return (await retrying(lambda: book_together(ctx, [claim])))[0]
    except Conflict:
        return await settled_elsewhere(ctx, claim.rp_id, claim.user_id, claim.seq)
    except Exception as exc:
        if not is_duplicate(exc):
            raise
        return await keep_held_share(ctx, claim.rp_id, claim.user_id, claim.seq)


async def book_together(ctx: Context, claims: list[Claim]) -> list[dict]:
    """Claim, credit and record every claim in one transaction, or raise Conflict.

    The unit of work of the hottest path, in one round trip (`storage/grabs.py`): its events
    go out once it has committed, as every unit of work's do."""
    async with ctx.db.cursor() as cur:
        books = await share_ids_of(ctx, cur, {c.rp_id for c in claims})
        names = await names_of(ctx, cur, {c.user_id for c in claims}
                               | {c.meta["sender"] for c in claims})
        share_ids = [books[c.rp_id][c.seq] for c in claims]
        try:
            booked = await grabs.book(cur, [(share_id, c.user_id) for c, share_id
                                            in zip(claims, share_ids)], int(time.time()))
        except grabs.SharesTaken:
            raise Conflict() from None
    shares = {share["id"]: share for share in booked}
    credited = {}  # user → their wallet after the batch, made by their last share's ledger row
    for s in sorted(booked, key=lambda s: s["id"]):
        if s["is_into_account"]:
            credited[s["user_id"]] = Balance(s["balance"], s["ledger_id"])
    events = [([user_room(user_id)], wallet_event(balance)) for user_id, balance in credited.items()]
    for c, share_id in zip(claims, share_ids):
        events += grabbed_events(c, shares[share_id]["money"], names)
    await publish(ctx, events)
    return [{"result": "ok", "money": format_fen(shares[share_id]["money"]),
             "into_account": bool(shares[share_id]["is_into_account"])} for share_id in share_ids]


async def share_ids_of(ctx: Context, cur, rp_ids: set[int]) -> dict[int, dict[int, int]]:
    """Packets' share ids by slot (rp_id → {seq: share id}): fixed at creation, so kept once
    read."""
    return await ctx.caches.shares.get_many(rp_ids, lambda missing: packets.share_ids(cur, missing))


async def names_of(ctx: Context, cur, user_ids) -> dict[int, str]:
    return await ctx.caches.names.get_many(user_ids, lambda missing: people.names(cur, missing))


def grabbed_events(claim: Claim, money: int, names: dict) -> list:
    """Tell the grabber what they got, and the sender who took it (WeChat's X领取了你的红包)."""
    sender = claim.meta["sender"]
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


async def settled_elsewhere(ctx: Context, rp_id: int, user_id: int, seq: int) -> dict | None:
    """The claim matched no row: a racing request of this user won it, or someone else did."""
    async with ctx.db.cursor() as cur:  # a fresh read, outside the transaction's snapshot
        share = await packets.share_at(cur, rp_id, seq)
    if share["user_id"] == user_id:
        return already(share)
    if share["is_refunded"]:
        return {"result": "expired"}
    return None
