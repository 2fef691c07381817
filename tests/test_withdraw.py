"""Withdrawals (提现): `POST /admin/wallets/{uid}/withdraw`, a conditional debit with its ledger
row, once per `ref`; racing payments and grabs, it never overdraws."""
import asyncio

import pytest

from tests.test_admin import LOOKALIKES
from tests.test_frozen import withdraw
from tests.test_packets import cents, create_and_pay, group_with


@pytest.mark.gen_test
async def test_a_repeated_ref_moves_nothing_and_answers_the_same(admin, connect, audit):
    uid, other = await admin.users(2)
    await admin.deposit(uid, "10.00")
    await admin.deposit(other, "10.00")
    client = await connect(uid)
    first, second = f"bank-{uid}-1", f"bank-{uid}-2"  # refs are the service's, not a user's
    assert await withdraw(admin, uid, "6.00", first) == (200, {"balance": "4.00"})
    assert (await client.event("wallet"))["balance"] == "4.00"
    # Again: the wallet could not pay 6.00 now, but this one was done already.
    assert await withdraw(admin, uid, "6.00", first) == (200, {"balance": "4.00"})
    for who, amount in ((uid, "1.00"), (other, "6.00")):
        status, body = await withdraw(admin, who, amount, first)
        assert (status, body["code"]) == (400, "bad_request"), "the ref names another one"
    status, body = await withdraw(admin, uid, "4.01", second)
    assert (status, body["code"]) == (409, "insufficient_balance") and body["message"]
    assert await withdraw(admin, uid, "4.00", second) == (200, {"balance": "0.00"})
    assert (await client.request("wallet.get"))["balance"] == "0.00"
    assert (await admin.call("POST", f"/admin/wallets/{uid}/deposit",
                             {"amount": "1.00", "ref": first}))[0] == 200, \
        "a deposit's refs are its own"
    audit()


@pytest.mark.gen_test
async def test_refs_differing_in_case_space_or_accent_are_four_withdrawals(admin, audit):
    uid = await admin.user()
    await admin.deposit(uid, "4.00")
    balances = [(await withdraw(admin, uid, "1.00", ref))[1]["balance"] for ref in (f"{uid}-{r}" for r in LOOKALIKES)]
    assert balances == ["3.00", "2.00", "1.00", "0.00"]
    audit()


@pytest.mark.gen_test
async def test_bad_bodies_are_400_and_unknown_users_404(admin, audit):
    uid = await admin.user()
    await admin.deposit(uid, "1.00")
    for body in [None, {}, {"amount": "1.00"}, {"ref": "r"}, {"amount": 1.0, "ref": "r"},
                 {"amount": "0.00", "ref": "r"}, {"amount": "-1.00", "ref": "r"},
                 {"amount": "1", "ref": "r"}, {"amount": "1.000", "ref": "r"},
                 {"amount": "10000000000.00", "ref": "r"}, {"amount": "1.00", "ref": ""},
                 {"amount": "1.00", "ref": "r" * 65}, {"amount": "1.00", "ref": ["r"]}]:
        status, answer = await admin.call("POST", f"/admin/wallets/{uid}/withdraw", body)
        assert status == 400 and answer["code"] in ("bad_request", "invalid_amount"), body
    status, answer = await withdraw(admin, admin.unused_id(), "1.00", "nobody")
    assert (status, answer["code"]) == (404, "not_found")
    status, _ = await admin.call("POST", f"/admin/wallets/{uid}/withdraw",
                                 {"amount": "1.00", "ref": "r"}, token="")
    assert status == 401
    assert await withdraw(admin, uid, "1.00", f"r-{uid}") == (200, {"balance": "0.00"}), "nothing moved"
    audit()


@pytest.mark.gen_test(timeout=90)
async def test_withdrawals_racing_payments_and_grabs_never_overdraw(admin, connect, audit):
    gid, (me, rich), (mine, theirs) = await group_with(admin, connect, 2, "100.00")
    sockets = [mine] + [await connect(me) for _ in range(9)]
    unpaid = [await mine.request("packet.create", type=2, for_id=gid, number=1, amount="5.00",
                                 pay_type="balance") for _ in range(10)]
    to_grab = [await create_and_pay(theirs, type=3, for_id=gid, number=1, amount="0.50")
               for _ in range(5)]

    pays = [sockets[i].request("packet.pay", rp_id=c["rp_id"]) for i, c in enumerate(unpaid)]
    grabs = [sockets[i].request("packet.grab", rp_id=rp_id) for i, rp_id in enumerate(to_grab)]
    withdrawals = [withdraw(admin, me, "7.00", f"storm-{me}-{n}") for n in range(12)]
    answers = await asyncio.gather(*pays, *grabs, *withdrawals)
    paid, grabbed, withdrawn = answers[:10], answers[10:15], answers[15:]

    assert {p.get("code", "paid") for p in paid} <= {"paid", "insufficient_balance"}
    assert [g["result"] for g in grabbed] == ["ok"] * 5
    assert {status for status, _ in withdrawn} <= {200, 409}
    out = 500 * sum(p["ok"] for p in paid) + 700 * sum(s == 200 for s, _ in withdrawn)
    came_in = sum(cents(g["money"]) for g in grabbed)
    assert out <= 10000 + came_in, "overdrawn"
    balance = cents((await mine.request("wallet.get"))["balance"])
    assert balance == 10000 + came_in - out
    assert balance < 700 + came_in, "refused though the wallet could have paid"
    ledger = (await mine.request("wallet.ledger", limit=50))["items"]
    assert sum(cents(i["amount"]) * (1 if i["direction"] == "in" else -1) for i in ledger) \
        == balance
    assert sorted(cents(i["amount"]) for i in ledger if i["kind"] == "withdraw") == \
        [700] * sum(s == 200 for s, _ in withdrawn)
    audit()
