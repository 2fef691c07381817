"""Frozen accounts (冻结): a frozen user still connects and reads, but may not create, pay, grab
or withdraw, on any node, from the moment the freeze is answered.

MariaDB holds the truth (users.frozen). The use-cases that move money read it in their own
transaction under a shared lock (`check_not_frozen`): a freeze waits for those under way, and
those after it find it. The grab path asks no database: every node keeps the frozen users in
memory (`FrozenAccounts`; they are few), hears of each change over the bus with its version,
so that changes heard out of order leave the latest, and reads them all when it starts, when
its subscription comes back (changes may have been missed meanwhile) and every REREAD_EVERY
seconds (a change whose publication was lost).
"""
import asyncio
import logging
import time

from rtserver.context import Context
from rtserver.errors import Frozen, NotFound
from rtserver.outages import Outages
from rtserver.uow import UnitOfWork
from storage import people
from storage.db import Database

log = logging.getLogger("rtserver.frozen")

REREAD_EVERY = 30.0  # seconds a node may miss a change whose publication was lost


class FrozenAccounts:
    """This node's copy of who is frozen."""

    def __init__(self, db: Database, outages: Outages):
        self.db, self.outages = db, outages
        self.ids: set[int] = set()
        self._versions: dict[int, int] = {}  # user id → the latest change heard
        self._wake = asyncio.Event()
        self._task = None

    def holds(self, user_id: int) -> bool:
        return user_id in self.ids

    def heard(self, user_id: int, frozen: bool, version: int) -> None:
        """Take a change of a user's freezing, unless a later one was heard already."""
        if version <= self._versions.get(user_id, 0):
            return
        self._versions[user_id] = version
        if frozen:
            self.ids.add(user_id)
        else:
            self.ids.discard(user_id)

    async def start(self) -> None:
        await self._reread()
        self._task = asyncio.ensure_future(self._reread_forever())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def reread_soon(self) -> None:
        """Read every change again now: some may not have been heard."""
        self._wake.set()

    async def _reread(self) -> None:
        async with self.db.cursor() as cur:
            changes = await people.freeze_changes(cur)
        for change in changes:
            self.heard(*change)

    async def _reread_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), REREAD_EVERY)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._reread()
            except Exception as exc:
                self.outages.failed(exc, "reading frozen accounts", log)


async def set_frozen(ctx: Context, user_id: int, frozen: bool, reason: str) -> dict:
    """Freeze or thaw a user; answered once it is committed and held by every live node."""
    async with UnitOfWork(ctx) as uow:
        version = await people.set_frozen(uow.cur, user_id, frozen, reason, int(time.time()))
        if version is None:
            raise NotFound(f"no user {user_id}")
        await uow.commit()
    await ctx.bus.frozen_changed(user_id, frozen, version)
    return {"id": user_id, "frozen": frozen, "reason": reason}


async def check_not_frozen(cur, user_id: int) -> None:
    """Refuse a frozen user (and one nobody provisioned), the user's row share-locked until the
    transaction ends."""
    frozen = await people.is_frozen(cur, user_id)
    if frozen is None:
        raise NotFound(f"no user {user_id}")
    if frozen:
        raise Frozen()
