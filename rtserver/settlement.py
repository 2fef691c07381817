"""Settlement: crediting shares grabbed while a third-party payment was pending (到账).

Each credit is its own short transaction, guarded by `is_into_account = 0` and the ledger's
unique key, so a packet settled twice, or by two runners at once, credits every share once.
No row is locked ahead (no FOR UPDATE): a grab that commits after a pass is taken by the next.
"""
import time

from rtserver import views
from rtserver.context import Context
from rtserver.hub import user_room
from rtserver.money import format_fen
from rtserver.uow import UnitOfWork
from rtserver.wallet import wallet_event
from storage import packets, people, wallets
from storage.schema import PayStatus

UNSETTLED_GRACE = 60  # seconds a grabbed share may wait for its settlement pass before a sweep


async def settle(ctx: Context, rp_id: int) -> int:
    """Credit every grabbed, uncredited share of a paid packet; return how many were credited."""
    async with ctx.db.cursor() as cur:
        if await packets.pay_status(cur, rp_id) != PayStatus.PAID:
            return 0
        shares = await packets.uncredited(cur, rp_id)
    return sum([await credit_share(ctx, share) for share in shares])


async def credit_share(ctx: Context, share: dict) -> bool:
    async with UnitOfWork(ctx) as uow:
        if not await packets.mark_credited(uow.cur, share["id"]):
            return False
        balance = await wallets.credit(uow.cur, share["user_id"], share["money"], "grab",
                                       str(share["id"]), int(time.time()))
        room = [user_room(share["user_id"])]
        settled = {"rp_id": share["rp_id"], "money": format_fen(share["money"])}
        uow.emit(room, {"ev": "packet.settled", **settled})
        uow.emit(room, wallet_event(balance))
        if ctx.outbox.enabled:
            names = await people.names(uow.cur, [share["user_id"]])
            uow.send_out("packet.settled",
                         {**settled, "grabber": views.person(share["user_id"], names)})
        await uow.commit()
    return True


async def unsettled(ctx: Context) -> list[int]:
    """Paid packets with shares that should have been credited by now (a lost queue message)."""
    async with ctx.db.cursor() as cur:
        return await packets.with_uncredited_grabs(cur, int(time.time()) - UNSETTLED_GRACE, 500)
