"""The socket's op table: op name → (argument schema, use-case). Data, not code paths."""
import time

from handlers.args import (REQUIRED, amount, anything, choice, count, identifier, mapping,
                           parse_args, pin, text)
from rtserver import auth, chat, grab, ledger, packets, payments, people, pins, wallet
from rtserver.errors import UnknownOp
from rtserver.lifecycle import PAY_TYPES

REFRESH = "auth.refresh"  # the one op about the socket itself: the connection re-arms its clock
TO = {"to_type": (choice("group", "user"), REQUIRED), "to_id": (identifier, REQUIRED)}
RP = {"rp_id": (identifier, REQUIRED)}


async def ping(ctx, user_id):
    return {"t": int(time.time())}


async def wallet_get(ctx, user_id):
    return wallet.wallet_view(await wallet.balance(ctx, user_id))


async def packet_list(ctx, user_id, box, year, before, limit):
    show = packets.sent_box if box == "sent" else packets.received_box
    return await show(ctx, user_id, year, before, limit)


async def refresh_token(ctx, user_id, token):
    return {"exp": auth.renewal(ctx.settings.token_secret, user_id, token)}


def cursor(value):
    """A `next` cursor as given out, also accepted as a bare integer id."""
    return text(40, 1)(str(value) if type(value) is int else value)


OPS = {
    "ping": ({}, ping),
    REFRESH: ({"token": (text(4096, 1), REQUIRED)}, refresh_token),
    "wallet.get": ({}, wallet_get),
    "wallet.set_pin": ({"pin": (pin, REQUIRED), "old_pin": (pin, None)}, pins.set_pin),
    "wallet.ledger": ({"before": (identifier, None), "limit": (count(1, 50), 20)}, ledger.page),
    "chat.send": ({**TO, "text": (text(chat.MAX_TEXT, 1), REQUIRED)}, chat.send),
    "chat.history": ({**TO, "before": (identifier, None), "limit": (count(1, 100), 50)},
                     chat.history),
    "packet.create": ({"type": (count(1, 4), REQUIRED), "for_id": (identifier, REQUIRED),
                       "number": (anything, None), "amount": (amount, REQUIRED),
                       "intro": (anything, None), "pay_type": (choice(*PAY_TYPES), REQUIRED),
                       "client_key": (text(64, 1), None), "to_user": (identifier, None),
                       "password": (anything, None)}, packets.create),
    "packet.pay": ({**RP, "pin": (pin, None)}, packets.pay),
    "packet.sync_paid": ({**RP, "result": (mapping, {})}, payments.sync_paid),
    "packet.grab": ({**RP, "password": (text(grab.MAX_SAID), None)}, grab.grab),
    "packet.detail": (RP, packets.detail),
    "group.members": ({"group_id": (identifier, REQUIRED)}, people.members),
    "packet.list": ({"box": (choice("sent", "received"), REQUIRED),
                     "year": (count(2000, 2100), None), "before": (cursor, None),
                     "limit": (count(1, 50), 20)}, packet_list),
}


# Ops that change nothing beyond their own socket: when it closes before they are answered, they
# are dropped.
READS = frozenset({"ping", REFRESH, "wallet.get", "wallet.ledger", "chat.history",
                   "packet.detail", "packet.list", "group.members"})


def only_reads(op) -> bool:
    return isinstance(op, str) and op in READS


async def call(ctx, user_id: int, op: str, frame: dict) -> dict:
    """Run one op for a user and return its result fields."""
    if not isinstance(op, str) or op not in OPS:
        raise UnknownOp(f"unknown op {op!r}"[:100])
    schema, use_case = OPS[op]
    return await use_case(ctx, user_id, **parse_args(schema, frame))
