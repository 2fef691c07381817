"""Group commit of grabs: one user's shares of several packets booked in one transaction keep
every ledger row's balance, every wallet event and every reply exact."""
import asyncio

import pytest

from handlers import socket
from rtserver import orphans
from rtserver.hub import user_room
from rtserver.booking import Booker, Claim, book_together
from rtserver.slots import load_slots
from storage import slots
from tests.test_packets import cents, create_and_pay, group_with


async def grab_ledger(ctx, user_id: int) -> list[tuple[int, int]]:
    """(amount, balance after) of a user's grab rows, in the order they were booked."""
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT amount, balance FROM wallet_ledger WHERE user_id = %s"
                          " AND kind = 'grab' ORDER BY id", (user_id,))
        return [(cents(str(r["amount"])), cents(str(r["balance"]))) for r in await cur.fetchall()]


@pytest.mark.gen_test
async def test_shares_of_one_user_in_one_batch_have_running_balances(admin, connect, ctx, audit):
    gid, (sender, taker), (s, t) = await group_with(admin, connect, 2, "10.00")
    rp_ids = [await create_and_pay(s, type=3, for_id=gid, number=2, amount=amount)
              for amount in ("1.00", "2.00", "3.00")]
    claims = []
    for rp_id in rp_ids:
        packet = await load_slots(ctx, rp_id)
        take = await ctx.taker.take(rp_id, taker)
        assert take.outcome == slots.WON
        claims.append(Claim(packet, taker, take.slot, False))

    answers = await book_together(ctx, claims)

    won = [cents(a["money"]) for a in answers]
    assert all(a["result"] == "ok" and a["into_account"] for a in answers)
    ledger = await grab_ledger(ctx, taker)
    assert sorted(amount for amount, _ in ledger) == sorted(won)
    running = 1000
    for amount, balance in ledger:
        running += amount
        assert balance == running
    assert cents((await t.request("wallet.get"))["balance"]) == 1000 + sum(won)
    audit()


@pytest.mark.gen_test
async def test_one_user_grabbing_many_packets_at_once_gets_every_fen(admin, connect, ctx, audit):
    gid, (sender, taker), (s, t) = await group_with(admin, connect, 2, "50.00")
    rp_ids = [await create_and_pay(s, type=3, for_id=gid, number=2, amount="4.00")
              for _ in range(6)]
    phones = [t] + [await connect(taker) for _ in range(5)]

    answers = await asyncio.gather(*(phone.request("packet.grab", rp_id=rp_id)
                                     for phone, rp_id in zip(phones, rp_ids)))

    won = sum(cents(a["money"]) for a in answers)
    assert all(a["result"] == "ok" for a in answers)
    balance = 5000 + won
    assert cents((await t.request("wallet.get"))["balance"]) == balance
    await t.request("ping")  # every event of the grabs has arrived before this reply
    assert cents(max(t.named("wallet"), key=lambda e: e["ledger_id"])["balance"]) == balance
    assert [b for _, b in await grab_ledger(ctx, taker)][-1] == balance
    audit()


@pytest.mark.gen_test
async def test_a_grab_reaching_a_stopping_node_is_not_answered_and_the_retry_books_it(
        admin, connect, ctx, audit):
    # It holds a slot that nobody here will book: `unavailable` would be a lie once the retry
    # books it, so the socket is closed (1013, try again later) instead of answering.
    gid, users, (s, a, b) = await group_with(admin, connect, 3, "10.00")
    rp_id = await create_and_pay(s, type=2, for_id=gid, number=2, amount="1.00")
    assert (await a.request("packet.grab", rp_id=rp_id))["result"] == "ok"
    await ctx.booker.close()  # the node is stopping
    await b.send({"op": "packet.grab", "id": 1, "rp_id": rp_id})
    assert await asyncio.wait_for(b.closed, 10) == 1013
    assert not [f for f in b.events if f.get("re") == 1], "no answer was given"
    ctx.booker = Booker(ctx)  # the node again, started anew
    b = await connect(users[2])
    again = await b.request("packet.grab", rp_id=rp_id)
    assert (again["result"], again["money"]) == ("ok", "1.00")
    assert (await b.request("wallet.get"))["balance"] == "11.00"
    audit()


@pytest.mark.gen_test
async def test_a_wallet_too_full_for_its_share_costs_the_other_grabbers_nothing(
        admin, connect, ctx, audit):
    gid, (sender, whale, *others), clients = await group_with(admin, connect, 6, "10.00")
    assert await admin.deposit(whale, "9999999989.99") == "9999999999.99"  # all it can hold
    rp_id = await create_and_pay(clients[0], type=2, for_id=gid, number=5, amount="1.00")
    replies = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients[1:]))
    assert (replies[0]["ok"], replies[0]["code"]) == (False, "invalid_amount")
    assert [(r.get("result"), r.get("money")) for r in replies[1:]] == [("ok", "1.00")] * 4
    for client in clients[2:]:
        assert (await client.request("wallet.get"))["balance"] == "11.00"
    assert (await clients[1].request("wallet.get"))["balance"] == "9999999999.99"
    # The whale's slot stays taken and its share unbooked (the expiry refund returns it): the
    # sweep of orphaned grabs passes over it and goes on.
    await orphans.book_orphaned_grabs(ctx, grace=-1)
    audit()


@pytest.mark.gen_test
async def test_every_wallet_event_names_the_ledger_row_that_made_its_balance(
        admin, connect, ctx, audit):
    # Grabs booked in batches, deposits and payments move one wallet at once: their events may
    # reach the phone in any order, and the one with the largest ledger_id is the balance now.
    gid, (sender, taker), (s, t) = await group_with(admin, connect, 2, "50.00")
    rp_ids = [await create_and_pay(s, type=3, for_id=gid, number=2, amount="4.00")
              for _ in range(6)]
    phones = [t] + [await connect(taker) for _ in range(5)]

    await asyncio.gather(
        *(phone.request("packet.grab", rp_id=rp_id) for phone, rp_id in zip(phones, rp_ids)),
        *(admin.deposit(taker, "0.10", ref=f"storm-{i}") for i in range(5)),
        *(create_and_pay(phones[i], type=2, for_id=gid, number=1, amount="0.50")
          for i in range(3)))

    final = await t.request("wallet.get")
    await t.request("ping")  # every event of the storm has arrived before this reply
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT id, balance FROM wallet_ledger WHERE user_id = %s", (taker,))
        ledger = {r["id"]: cents(str(r["balance"])) for r in await cur.fetchall()}
    assert final["ledger_id"] == max(ledger)
    assert cents(final["balance"]) == ledger[max(ledger)]
    heard = t.named("wallet")
    for event in heard:
        assert cents(event["balance"]) == ledger[event["ledger_id"]], event
    newest = max(heard, key=lambda e: e["ledger_id"])
    assert (newest["balance"], newest["ledger_id"]) == (final["balance"], final["ledger_id"])
    audit()


@pytest.mark.gen_test
async def test_a_movement_while_the_socket_opens_reaches_it(admin, connect, monkeypatch, audit):
    """A deposit booked after the socket's `hello` was read but before the socket joined its
    rooms: its `wallet` event went to the rooms without it; the socket is caught up."""
    uid = (await admin.users(1))[0]
    await admin.deposit(uid, "1.00")
    real = socket.open_session

    async def deposit_meanwhile(ctx, user_id):
        session = await real(ctx, user_id)
        await admin.deposit(uid, "2.00")  # booked and told to the rooms before the socket joins
        return session

    monkeypatch.setattr(socket, "open_session", deposit_meanwhile)
    client = await connect(uid)
    hello = client.hello
    assert hello["balance"] == "1.00", "read before the deposit"
    caught_up = await client.event("wallet")
    assert caught_up["balance"] == "3.00" and caught_up["ledger_id"] > hello["ledger_id"]
    audit()


@pytest.mark.gen_test
async def test_a_socket_is_never_told_an_older_balance_than_it_has(admin, connect, ctx):
    """Balances from different nodes may arrive out of order: one older than (or the same as)
    what the socket was told already is not sent, so a phone's balance only moves forward."""
    uid = (await admin.users(1))[0]
    client = await connect(uid)
    for ledger_id, balance in ((7, "3.00"), (5, "1.00"), (7, "3.00"), (9, "4.00")):
        ctx.hub.publish([user_room(uid)], {"ev": "wallet", "balance": balance,
                                           "ledger_id": ledger_id})
    await client.request("ping")  # whatever was sent before its reply has arrived
    assert [(e["ledger_id"], e["balance"]) for e in client.named("wallet")] == \
        [(7, "3.00"), (9, "4.00")]
