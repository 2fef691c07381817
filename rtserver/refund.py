"""The expiry refund (the original design's section 五): what nobody grabbed goes back.

`--packet-ttl` after payment, every share nobody grabbed is returned to the sender in one
transaction with its ledger row. A share is claimed by a grab or marked refunded, each by a
guarded update of its own row, so however grabs and the refund interleave, it is one or the other.
"""
import time

from rtserver import access, notices, provider_refunds
from rtserver.context import Context
from rtserver.finishing import do_finish
from rtserver.hub import user_room
from rtserver.money import format_fen
from rtserver.slots import Packet
from rtserver.uow import UnitOfWork, retrying
from storage import packets, payments, slots


async def refund_expired(ctx: Context) -> int:
    """Refund every packet whose time is up; return how many this runner refunded."""
    async with ctx.db.cursor() as cur:
        due = await packets.due_for_refund(cur, int(time.time()), limit=500)
    return sum([await retrying(lambda rp_id=rp_id: refund(ctx, rp_id)) for rp_id in due])


async def refund(ctx: Context, rp_id: int) -> bool:
    """Return a paid packet's ungrabbed shares to its sender, once."""
    async with UnitOfWork(ctx) as uow:
        if not await packets.claim_refund(uow.cur, rp_id):
            return False
        packet = await packets.get(uow.cur, rp_id)
        returned = await packets.refund_free_shares(uow.cur, rp_id)
        if returned:
            await packets.set_return_money(uow.cur, rp_id, returned)
            order = await payments.order_of_packet(uow.cur, rp_id)
            to = await provider_refunds.give_back(uow, packet, order, packet["trade_no"],
                                                  returned, "refund", str(rp_id))
            refunded = {"rp_id": rp_id, "return_money": format_fen(returned), "to": to}
            uow.emit([user_room(packet["user_id"])], {"ev": "packet.refunded", **refunded})
            uow.send_out("packet.refunded", refunded)
            await notices.keep(uow, notices.refunded(Packet.of_row(packet), returned,
                                                     int(time.time())))
        if not packet["finish_time"]:
            grabbed = len(await packets.grabs(uow.cur, rp_id))
            if grabbed == packet["number"]:  # drained, but its finisher died: it is finished
                await do_finish(uow, rp_id)
            else:
                uow.emit(access.packet_rooms(packet), {"ev": "packet.state", "rp_id": rp_id,
                                                       "status": "expired",
                                                       "grabbed_count": grabbed})
        uow.after_commit(lambda: slots.forget(ctx.redis, ctx.keys, rp_id))
        await uow.commit()
    return True
