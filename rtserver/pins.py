"""The payment password (支付密码): setting it, changing it, and asking for it before a balance
payment.

A try is judged in two steps. The PIN is checked against the stored hash on the hasher's threads,
outside any transaction (a slow hash must hold no row lock); then one short transaction records
the try with a guarded update against that very hash (storage/pins.py). So however many sockets
and nodes try at once, exactly MAX_WRONG wrong tries in a row lock the PIN, and a right PIN that
races a wrong one is judged by the order MariaDB puts the two in: a right one recorded after the
lock is refused, one recorded before it is let through.
"""
import time

from rtserver.context import Context
from rtserver.errors import BadPin, NotFound, PinLocked, PinRequired, Unavailable
from rtserver.pin_hash import hash_pin, pin_matches
from rtserver.uow import UnitOfWork
from storage import people, pins

MAX_WRONG = 5  # docs/protocol.md: five wrong in a row lock the PIN for --pin-lock seconds
# A PIN changed or removed while a try of it was being checked is tried again against what is
# there now; one that keeps changing under the tries is the user's own doing.
ATTEMPTS = 3


async def set_pin(ctx: Context, user_id: int, pin: str, old_pin: str | None) -> dict:
    """Set a user's first PIN, or change it when `old_pin` is the one they have."""
    for _ in range(ATTEMPTS):
        if await check_pin(ctx, user_id, old_pin, "old_pin", new_pin=pin):
            return {}
        new_hash = await ctx.pin_hasher.run(user_id, hash_pin, pin)
        async with ctx.db.cursor() as cur:
            if await pins.insert(cur, user_id, new_hash, int(time.time())):
                return {}
        # Another request set the first PIN a moment ago: from now on it takes the old one.
    raise Unavailable("the payment password changed meanwhile; try again")


async def check_payment(ctx: Context, user_id: int, pin: str | None) -> None:
    """Let a balance payment go ahead only with the payer's PIN, and with --require-pin only for
    users who have one. Raises PinRequired, BadPin or PinLocked."""
    if not await check_pin(ctx, user_id, pin, "pin") and ctx.settings.require_pin:
        raise PinRequired("set a payment password (wallet.set_pin) first", has_pin=False)


async def check_pin(ctx: Context, user_id: int, pin: str | None, argument: str,
                    new_pin: str | None = None) -> bool:
    """Check `pin` (the request's `argument`) against the user's PIN; a right one resets the
    count of wrong tries and, with `new_pin`, is replaced by it. Return False when the user has
    no PIN, having checked nothing; raise PinRequired, BadPin or PinLocked."""
    for _ in range(ATTEMPTS):
        async with ctx.db.cursor() as cur:
            record = await pins.get(cur, user_id)
        if record is None:
            return False
        if pin is None:
            raise PinRequired(f"{argument} is required: this wallet has a payment password",
                              has_pin=True)
        if record.locked_until > time.time():  # refused before any hashing, the right PIN too
            raise PinLocked(record.locked_until)
        right = await ctx.pin_hasher.run(user_id, pin_matches, pin, record.pin_hash)
        new_hash = None
        if right and new_pin is not None:
            new_hash = await ctx.pin_hasher.run(user_id, hash_pin, new_pin)
        now = int(time.time())  # after the hashing, which may have waited for its turn
        async with UnitOfWork(ctx) as uow:
            after = await pins.record_try(uow.cur, user_id, record.pin_hash, right, now,
                                          now + ctx.settings.pin_lock, MAX_WRONG, new_hash)
            await uow.commit()
        if after is None or after.pin_hash not in (record.pin_hash, new_hash):
            continue  # removed or changed while it was checked: what was checked is gone
        if after.locked_until > now:  # by this try, or by another that was recorded first
            raise PinLocked(after.locked_until)
        if not right:
            raise BadPin(tries_left=MAX_WRONG - after.wrong)
        return True
    raise Unavailable("the payment password changed meanwhile; try again")


async def remove_pin(ctx: Context, user_id: int) -> dict:
    """Remove a user's PIN and its lock (the chat app's back end, after its own identity check)."""
    async with ctx.db.cursor() as cur:
        if not await people.get_user(cur, user_id):
            raise NotFound(f"no user {user_id}")
        await pins.delete(cur, user_id)
    return {"has_pin": False}
