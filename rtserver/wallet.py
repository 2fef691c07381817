"""Deposits and balances."""
import time

from rtserver.context import Context
from rtserver.errors import BadRequest, InvalidAmount, NotFound
from rtserver.hub import user_room
from rtserver.money import format_fen
from rtserver.uow import UnitOfWork
from storage import people, wallets
from storage.db import is_duplicate, is_out_of_range
from storage.wallets import Balance

async def deposit(ctx: Context, user_id: int, fen: int, ref: str) -> Balance:
    """Add money to a wallet, once per `ref`; return the balance.

    A repeated `ref` for the same user and amount changes nothing; for anything else it is refused.
    """
    if fen <= 0:
        raise InvalidAmount("a deposit must be more than 0.00")
    try:
        async with UnitOfWork(ctx) as uow:
            if not await people.get_user(uow.cur, user_id):
                raise NotFound(f"no user {user_id}")
            new_balance = await wallets.credit(uow.cur, user_id, fen, "deposit", ref,
                                               int(time.time()))
            uow.emit([user_room(user_id)], wallet_event(new_balance))
            await uow.commit()
            return new_balance
    except Exception as exc:
        if is_out_of_range(exc):
            raise InvalidAmount("the wallet cannot hold that much") from None
        if not is_duplicate(exc):
            raise
    async with ctx.db.cursor() as cur:
        earlier = await wallets.movement(cur, "deposit", ref)
        if earlier != {"user_id": user_id, "amount": fen}:
            raise BadRequest(f"ref {ref!r} was already used for another deposit")
        return await wallets.balance(cur, user_id)


async def balance(ctx: Context, user_id: int) -> Balance:
    async with ctx.db.cursor() as cur:
        return await wallets.balance(cur, user_id)


async def moved_since(ctx: Context, user_id: int, ledger_id: int) -> dict | None:
    """The `wallet` event of a balance newer than the one made by ledger row `ledger_id`, or
    None when it has not moved since."""
    now = await balance(ctx, user_id)
    return wallet_event(now) if now.ledger_id > ledger_id else None


def wallet_view(balance: Balance) -> dict:
    """What a client is told of a balance: it keeps the one with the largest `ledger_id`."""
    return {"balance": format_fen(balance.fen), "ledger_id": balance.ledger_id}


def wallet_event(balance: Balance) -> dict:
    return {"ev": "wallet", **wallet_view(balance)}
