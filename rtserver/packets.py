"""Red packets: create (塞钱进红包), pay from the balance, the detail view, 我的红包."""
import datetime
import time
from typing import NamedTuple

from rtserver import access, chat, daily, lifecycle, payments, pins, views
from rtserver.allocation import split_equal, split_lucky
from rtserver.context import Context
from rtserver.errors import (AlreadyPaid, BadRequest, Forbidden, InsufficientBalance, NotFound)
from rtserver.frozen import check_not_frozen
from rtserver.hub import user_room
from rtserver.limits import BEIJING, ONE_SHARE, intro_of, limits_of, password_of, plan_packet
from rtserver.money import format_fen
from rtserver.uow import UnitOfWork
from rtserver.wallet import wallet_event
from storage import packets, people, provider_refunds, wallets
from storage import payments as storage_payments
from storage.db import is_duplicate
from storage.schema import PacketType, PayStatus, PayType

async def create(ctx: Context, user_id: int, type: int, for_id: int, number: int, amount: int,
                 intro: str | None, pay_type: str, client_key: str | None,
                 to_user: int | None = None, password: str | None = None) -> dict:
    """Validate, allocate and store an unpaid packet with its shares, counted on the sender's
    day within the daily limit; once per client_key (a repeat with the same arguments answers
    as the first did)."""
    if pay_type != "balance":
        payments.provider_of(ctx, pay_type)
    if type in ONE_SHARE and number is None:
        number = 1
    limits = limits_of(ctx.settings)
    password = password_of(type, password)
    if (to_user is not None) != (type == PacketType.EXCLUSIVE):
        raise BadRequest("to_user names who an exclusive packet (type 4) is for, and only that")

    def asked() -> Asked:  # worked out only for a client_key seen before
        return Asked(type, for_id, number, amount, intro_of(intro, limits),
                     lifecycle.PAY_TYPES[pay_type], to_user, password)

    if client_key is not None:
        async with ctx.db.cursor() as cur:
            earlier = await packets.by_client_key(cur, user_id, client_key)
        if earlier:
            return await created_again(ctx, earlier, asked())
    try:
        async with UnitOfWork(ctx) as uow:
            await check_not_frozen(uow.cur, user_id)
            group_size = await check_recipient(uow.cur, user_id, type, for_id, to_user)
            plan = plan_packet(type, number, amount, intro, group_size, limits)
            now = int(time.time())
            send_day = await daily.count_new(uow.cur, ctx, user_id, plan.total, now)
            rp_id = await packets.insert(uow.cur, user_id, for_id, plan.type, plan.intro,
                                         plan.number, plan.total, plan.single,
                                         lifecycle.PAY_TYPES[pay_type], client_key, send_day,
                                         now, to_user, password)
            amounts = (split_lucky(plan.total, plan.number, limits.min_share, limits.max_share)
                       if plan.type == PacketType.GROUP_LUCKY
                       else split_equal(plan.single, plan.number))
            await packets.insert_shares(uow.cur, rp_id, amounts, now)
            packet = await packets.get(uow.cur, rp_id)
            order = (await payments.open_order(uow, packet, pay_type)
                     if pay_type != "balance" else None)
            await uow.commit()
    except Exception as exc:
        if client_key is None or not is_duplicate(exc):
            raise
    else:
        answer = created(packet)
        if order is not None:
            answer["order"] = await payments.place_order(ctx, order, packet["intro"])
        return answer
    async with ctx.db.cursor() as cur:  # the same key created it a moment ago
        earlier = await packets.by_client_key(cur, user_id, client_key)
    return await created_again(ctx, earlier, asked())


class Asked(NamedTuple):
    """What a packet.create asked for, as a stored packet records it: a client_key names one
    request, so a key used again with other arguments is refused, not answered with the first."""
    type: int
    for_id: int
    number: int | None
    amount: int  # each share of a group normal packet, the total of any other
    intro: str
    pay_type: PayType
    to_user: int | None
    password: str | None

    @classmethod
    def of_packet(cls, packet: dict) -> "Asked":
        amount = packet["single"] if packet["type"] == PacketType.GROUP_NORMAL else packet["total"]
        return cls(packet["type"], packet["for_id"], packet["number"], amount, packet["intro"],
                   packet["pay_type"], packet["to_user"], packet["password"])


def created(packet: dict) -> dict:
    return {"rp_id": packet["id"], "total": format_fen(packet["total"]),
            "number": packet["number"], "pay_status": packet["pay_status"]}


async def created_again(ctx: Context, packet: dict, asked: Asked) -> dict:
    """The answer to a repeated create: the same packet, and its order again."""
    if Asked.of_packet(packet) != asked:
        raise BadRequest("client_key was used for another packet")
    answer = created(packet)
    if packet["pay_type"] != PayType.BALANCE:
        async with ctx.db.cursor() as cur:
            order = await storage_payments.order_of_packet(cur, packet["id"])
        answer["order"] = await payments.place_order(
            ctx, order, packet["intro"], place=packet["pay_status"] == PayStatus.UNPAID)
    return answer


async def check_recipient(cur, sender: int, type: int, for_id: int,
                          to_user: int | None) -> int | None:
    """Check who the packet is for; return the group's size (None for a personal packet)."""
    if type == PacketType.PERSONAL:
        if for_id == sender:
            raise Forbidden("a personal packet goes to someone else")
        if not await people.get_user(cur, for_id):
            raise NotFound(f"no user {for_id}")
        return None
    await access.check_member(cur, for_id, sender)
    if type == PacketType.EXCLUSIVE:
        if to_user == sender:
            raise Forbidden("an exclusive packet is for another member")
        if not await people.is_member(cur, for_id, to_user):
            raise Forbidden("an exclusive packet is for a member of its group")
    return await people.member_count(cur, for_id)


async def pay(ctx: Context, user_id: int, rp_id: int, pin: str | None) -> dict:
    """Pay a packet from the sender's balance, with their PIN, then put it into its room."""
    async with ctx.db.cursor() as cur:  # a PIN is asked only for a payment that can be made
        check_payable(await packets.get(cur, rp_id), user_id, "balance")
    await pins.check_payment(ctx, user_id, pin)  # before, and outside, the paying transaction
    now = int(time.time())
    async with UnitOfWork(ctx) as uow:
        await check_not_frozen(uow.cur, user_id)
        packet = await packets.get(uow.cur, rp_id)
        check_payable(packet, user_id, "balance")
        # Marking it paid first locks the packet, so a second pay waits and finds it paid.
        if not await packets.mark_paid(uow.cur, rp_id, PayStatus.PAID, now,
                                       now + ctx.settings.packet_ttl):
            raise AlreadyPaid()
        await daily.count_paid(uow.cur, ctx, packet, now, within_limit=True)
        balance = await wallets.debit(uow.cur, user_id, packet["total"], "pay", str(rp_id), now)
        if balance is None:
            raise InsufficientBalance(f"balance is less than {format_fen(packet['total'])}")
        summary = await chat.put_in_room(uow, await packets.get(uow.cur, rp_id), now)
        uow.emit([user_room(user_id)], wallet_event(balance))
        await uow.commit()
    return {"balance": format_fen(balance.fen), "packet": summary}


def check_payable(packet: dict | None, user_id: int, pay_type: str) -> None:
    if packet is None:
        raise NotFound("no such packet")
    if packet["user_id"] != user_id:
        raise Forbidden("only the sender pays a packet")
    if packet["pay_status"] != PayStatus.UNPAID:
        raise AlreadyPaid()
    if packet["pay_type"] != lifecycle.PAY_TYPES[pay_type]:
        raise BadRequest(f"this packet is not paid by {pay_type}")


async def detail(ctx: Context, user_id: int, rp_id: int) -> dict:
    """The packet as its viewer sees it: totals, their own share, every grab."""
    now = int(time.time())
    async with ctx.db.cursor() as cur:
        packet = await access.check_can_see(cur, await packets.get(cur, rp_id), user_id)
        grabs = await packets.grabs(cur, rp_id)
        names = await people.names(cur, views.people_in([packet]) + [g["user_id"] for g in grabs])
        to_provider = packet["return_money"] and await provider_refunds.of_cause(
            cur, "refund", str(rp_id))
    best_shown = views.shows_best(packet, now)
    view = views.summary(packet, names, now)
    view["grabbed_count"] = len(grabs)
    view["grabbed_total"] = format_fen(sum(g["money"] for g in grabs))
    if view["status"] == "finished":
        view["expend_time"] = packet["expend_time"]
    if packet["is_cli_handle"] and packet["return_money"]:  # only when money went back
        view["return_money"] = format_fen(packet["return_money"])
        view["return_to"] = "original" if to_provider and to_provider["state"] != "failed" \
            else "balance"
    mine = next((g for g in grabs if g["user_id"] == user_id), None)
    return {
        "packet": view,
        "mine": views.share_mine(mine, best_shown),
        "grabs": [{"user": views.person(g["user_id"], names), "money": format_fen(g["money"]),
                   "time": g["update_time"], "is_good": best_shown and bool(g["is_good"])}
                  for g in grabs],
    }


def year_span(year: int) -> tuple[int, int]:
    start = datetime.datetime(year, 1, 1, tzinfo=BEIJING)
    return int(start.timestamp()), int(start.replace(year=year + 1).timestamp())


async def sent_box(ctx: Context, user_id: int, year: int | None, before: str | None,
                   limit: int) -> dict:
    """我发出的红包: paid packets, newest first, with the year's count and total."""
    now = int(time.time())
    start, end = year_span(year or datetime.datetime.now(BEIJING).year)
    cursor = _cursor(before, parts=1)
    async with ctx.db.cursor() as cur:
        rows = await packets.sent(cur, user_id, start, end, cursor[0] if cursor else None, limit)
        count, total = await packets.sent_totals(cur, user_id, start, end)
        names = await people.names(cur, views.people_in(rows))
    return {
        "items": [views.summary(p, names, now) for p in rows],
        "count": count,
        "total": format_fen(total),
        "next": str(rows[-1]["id"]) if len(rows) == limit else None,
    }


async def received_box(ctx: Context, user_id: int, year: int | None, before: str | None,
                       limit: int) -> dict:
    """我收到的红包: grabbed shares, newest first, with the year's count, total and best luck."""
    now = int(time.time())
    start, end = year_span(year or datetime.datetime.now(BEIJING).year)
    async with ctx.db.cursor() as cur:
        rows = await packets.received(cur, user_id, start, end, _cursor(before, parts=2), limit)
        count, total, best_luck = await packets.received_totals(cur, user_id, start, end)
        found = await packets.get_many(cur, [r["rp_id"] for r in rows])
        names = await people.names(cur, views.people_in(list(found.values())))
    items = []
    for share in rows:
        packet = found[share["rp_id"]]
        item = views.summary(packet, names, now)
        item.update(money=format_fen(share["money"]), time=share["update_time"],
                    is_good=views.shows_best(packet, now) and bool(share["is_good"]))
        items.append(item)
    last = rows[-1] if len(rows) == limit else None
    return {
        "items": items,
        "count": count,
        "total": format_fen(total),
        "best_luck": best_luck,
        "next": f"{last['update_time']}.{last['id']}" if last else None,
    }


def _cursor(before, parts: int) -> tuple[int, ...] | None:
    """Read a `next` cursor back: "ID" for the sent box, "TIME.ID" for the received one."""
    if before is None:
        return None
    try:
        values = tuple(int(p) for p in str(before).split("."))
    except ValueError:
        values = ()
    if len(values) != parts or any(v < 0 for v in values):
        raise BadRequest("before is not a cursor this list gave out")
    return values
