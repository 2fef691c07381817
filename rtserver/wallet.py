"""Deposits, withdrawals and balances."""
import time

from rtserver.context import Context
from rtserver.errors import BadRequest, InsufficientBalance, InvalidAmount, NotFound, RtError
from rtserver.frozen import check_not_frozen
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
    return await _repeated(ctx, user_id, fen, "deposit", ref)


async def withdraw(ctx: Context, user_id: int, fen: int, ref: str) -> Balance:
    """Take money out of a wallet (提现), once per `ref`, if the balance covers it; return the
    balance. The debit is conditional, so withdrawals racing payments never overdraw.

    A repeated `ref` for the same user and amount moves nothing and answers the balance, even
    when the wallet could not pay it again or the user is frozen since; for anything else it is
    refused.
    """
    if fen <= 0:
        raise InvalidAmount("a withdrawal must be more than 0.00")
    try:
        async with UnitOfWork(ctx) as uow:
            await check_not_frozen(uow.cur, user_id)
            new_balance = await wallets.debit(uow.cur, user_id, fen, "withdraw", ref,
                                              int(time.time()))
            if new_balance is None:
                raise InsufficientBalance(f"balance is less than {format_fen(fen)}")
            uow.emit([user_room(user_id)], wallet_event(new_balance))
            await uow.commit()
            return new_balance
    except Exception as exc:
        if not (is_duplicate(exc) or isinstance(exc, RtError)):
            raise
        # Refused, but this ref was booked before: that withdrawal was done, and stays done.
        async with ctx.db.cursor() as cur:
            if await wallets.movement(cur, "withdraw", ref) is None:
                raise
    return await _repeated(ctx, user_id, -fen, "withdraw", ref)


async def _repeated(ctx: Context, user_id: int, fen: int, kind: str, ref: str) -> Balance:
    """The answer to a movement whose (kind, ref) is booked already: the balance, if it was
    the same user and signed amount, else a refusal."""
    async with ctx.db.cursor() as cur:
        earlier = await wallets.movement(cur, kind, ref)
        if earlier != {"user_id": user_id, "amount": fen}:
            raise BadRequest(f"ref {ref!r} was already used for another {kind}")
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
