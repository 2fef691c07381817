"""What a connecting user is told first, and the rooms their connection joins."""
import time

from rtserver.context import Context
from rtserver.errors import Unauthorized
from rtserver.hub import group_room, user_room
from rtserver.limits import limits_of
from rtserver.wallet import wallet_view
from storage import people, pins, wallets


async def open_session(ctx: Context, user_id: int) -> tuple[dict, list[str]]:
    """Return the `hello` event and the rooms of a user; refuse users nobody provisioned."""
    async with ctx.db.cursor() as cur:
        user = await people.get_user(cur, user_id)
        if user is None:
            raise Unauthorized("unknown user")
        groups = await people.groups_of(cur, user_id)
        balance = await wallets.balance(cur, user_id)
        has_pin = await pins.exists(cur, user_id)
    hello = {
        "ev": "hello",
        "user": {"id": user["id"], "name": user["name"]},
        **wallet_view(balance),
        "has_pin": has_pin,
        "groups": [{"id": g["id"], "name": g["name"], "members": g["members"]} for g in groups],
        "server_time": int(time.time()),
        "limits": limits_of(ctx.settings).view(),
    }
    return hello, [user_room(user_id)] + [group_room(g["id"]) for g in groups]
