"""Frozen accounts: `PUT /admin/users/{id}/frozen`. A frozen user still connects and reads, but
`packet.create`, `packet.pay`, `packet.grab` and withdrawals fail with `frozen` and move nothing,
on every node from the moment the freeze is answered."""
import asyncio

import pytest

from rtserver.bus import BEAT_EVERY
from rtserver.frozen import FrozenAccounts, set_frozen
from server.context import close_context, open_context
from tests.client import Admin
from tests.test_nodes import deposit, packet_message, two_nodes
from tests.test_packets import cents, create_and_pay, group_with


async def freeze(admin: Admin, uid: int, frozen: bool = True, reason: str = "风控：疑似被盗"):
    status, body = await admin.call("PUT", f"/admin/users/{uid}/frozen",
                                    {"frozen": frozen, "reason": reason})
    assert (status, body) == (200, {"id": uid, "frozen": frozen, "reason": reason})


async def withdraw(admin: Admin, uid: int, amount: str, ref: str) -> tuple[int, dict]:
    return await admin.call("POST", f"/admin/wallets/{uid}/withdraw",
                            {"amount": amount, "ref": ref})


def test_changes_heard_out_of_order_leave_the_latest():
    accounts = FrozenAccounts(db=None, outages=None)
    accounts.heard(7, True, 2)
    accounts.heard(7, False, 1)  # an older thaw, heard late
    assert accounts.holds(7)
    accounts.heard(7, False, 3)
    accounts.heard(7, True, 3)  # the same change again
    assert not accounts.holds(7) and not accounts.holds(8)


@pytest.mark.gen_test
async def test_a_frozen_user_reads_but_creates_pays_grabs_and_withdraws_nothing(
        admin, connect, ctx, audit):
    gid, (alice, bob, carol), (a, b, c) = await group_with(admin, connect, 3, "10.00")
    unpaid = await b.request("packet.create", type=2, for_id=gid, number=1, amount="1.00",
                             pay_type="balance")
    await freeze(admin, bob)
    rp_id = await create_and_pay(a, type=3, for_id=gid, number=1, amount="2.00")

    refusals = [
        await b.request("packet.create", type=2, for_id=gid, number=1, amount="1.00",
                        pay_type="balance"),
        await b.request("packet.pay", rp_id=unpaid["rp_id"]),
        await b.request("packet.grab", rp_id=rp_id),
        await b.request("packet.create", type=3, for_id=gid, number=2, amount="2.00",
                        pay_type="sandbox"),
    ]
    assert [(r["ok"], r["code"]) for r in refusals] == [(False, "frozen")] * 4
    status, body = await withdraw(admin, bob, "1.00", f"frozen-{bob}")
    assert (status, body["code"]) == (403, "frozen")
    # The one share was not taken by the refused grab: carol gets it.
    assert (await c.request("packet.grab", rp_id=rp_id))["result"] == "ok"

    again = await connect(bob)  # still connects, and reads
    assert again.hello["balance"] == "10.00"
    for op, args in [("wallet.get", {}), ("wallet.ledger", {}), ("packet.detail", {"rp_id": rp_id}),
                     ("packet.list", {"box": "sent"}),
                     ("chat.history", {"to_type": "group", "to_id": gid})]:
        assert (await again.request(op, **args))["ok"], op
    assert (await again.request("wallet.get"))["balance"] == "10.00"
    assert (await again.request("wallet.ledger"))["items"][0]["kind"] == "deposit"

    await freeze(admin, bob, False, "已核实本人")
    assert (await b.request("packet.pay", rp_id=unpaid["rp_id"]))["balance"] == "9.00"
    status, body = await withdraw(admin, bob, "1.00", f"thawed-{bob}")
    assert (status, body) == (200, {"balance": "8.00"})
    audit()


@pytest.mark.gen_test(timeout=60)
async def test_pays_racing_a_freeze_either_paid_before_it_or_refused(admin, connect, audit):
    gid, (sender, other), (s, _) = await group_with(admin, connect, 2, "100.00")
    sockets = [s] + [await connect(sender) for _ in range(9)]
    created = [await s.request("packet.create", type=2, for_id=gid, number=1, amount="1.00",
                               pay_type="balance") for _ in range(21)]
    last = created.pop()
    pays = [asyncio.ensure_future(sockets[i % 10].request("packet.pay", rp_id=c["rp_id"]))
            for i, c in enumerate(created)]
    await freeze(admin, sender)
    after = await s.request("packet.pay", rp_id=last["rp_id"])
    answers = await asyncio.gather(*pays)
    assert {a.get("code", "paid") for a in answers} <= {"paid", "frozen"}
    assert after["code"] == "frozen", "after the freeze's answer, nothing"
    paid = sum(1 for a in answers if a["ok"])
    assert cents((await s.request("wallet.get"))["balance"]) == 10000 - 100 * paid
    sent = await s.request("packet.list", box="sent")
    assert sent["count"] == paid
    audit()


@pytest.mark.gen_test
async def test_a_change_whose_news_was_lost_is_read_again(admin, connect, ctx):
    gid, (alice, bob), (a, b) = await group_with(admin, connect, 2, "1.00")
    async with ctx.db.cursor() as cur:  # frozen with no word to the nodes
        await cur.execute("UPDATE users SET frozen = 1, frozen_version = frozen_version + 1"
                          " WHERE id = %s", (bob,))
    rp_id = await create_and_pay(a, type=3, for_id=gid, number=1, amount="1.00")
    ctx.frozen.reread_soon()  # as after the bus resubscribes
    for _ in range(100):
        if ctx.frozen.holds(bob):
            break
        await asyncio.sleep(0.02)
    assert (await b.request("packet.grab", rp_id=rp_id))["code"] == "frozen"


@pytest.mark.gen_test(timeout=30)
async def test_a_freeze_is_answered_once_every_other_node_holds_it(admin, ctx, settings):
    other = await open_context(settings)  # a second node in this process, on the same roll
    try:
        await asyncio.sleep(BEAT_EVERY * 1.5)  # until this node's next beat finds it there
        uid = await admin.user()
        for _ in range(20):  # called here, not over HTTP: no time for the news between
            await set_frozen(ctx, uid, True, "")
            assert other.frozen.holds(uid)
            await set_frozen(ctx, uid, False, "")
            assert not other.frozen.holds(uid)
    finally:
        await close_context(other)


@pytest.mark.gen_test
async def test_bad_bodies_are_400_and_unknown_users_404(admin):
    uid = await admin.user()
    for body in [None, {}, {"frozen": "true"}, {"frozen": 1}, {"frozen": None},
                 {"frozen": True, "reason": 7}, {"frozen": True, "reason": "为" * 201},
                 [True]]:
        status, answer = await admin.call("PUT", f"/admin/users/{uid}/frozen", body)
        assert status == 400 and answer["code"] == "bad_request" and answer["message"], body
    status, answer = await admin.call("PUT", f"/admin/users/0{uid}/frozen", {"frozen": True})
    assert (status, answer["code"]) == (400, "bad_request")
    status, answer = await admin.call("PUT", f"/admin/users/{admin.unused_id()}/frozen",
                                      {"frozen": True})
    assert (status, answer["code"]) == (404, "not_found")
    status, _ = await admin.call("PUT", f"/admin/users/{uid}/frozen", {"frozen": True},
                                 token="wrong")
    assert status == 401
    status, body = await admin.call("PUT", f"/admin/users/{uid}/frozen", {"frozen": False})
    assert (status, body) == (200, {"id": uid, "frozen": False, "reason": ""})


@pytest.mark.gen_test(timeout=60)
async def test_a_freeze_through_one_node_holds_on_the_other_at_once(settings, children, dial,
                                                                  audit):
    a, b, admin = await two_nodes(children, settings)
    alice, bob, carol = await admin.users(3)
    gid = await admin.group([alice, bob, carol])
    al, ca = await dial(a.base_url, alice), await dial(a.base_url, carol)
    bo = await dial(b.base_url, bob)
    await deposit(admin, alice, "10.00", al)
    await deposit(admin, bob, "10.00", bo)
    for round in range(3):
        rp_id = await create_and_pay(al, type=3, for_id=gid, number=1, amount="1.00")
        await packet_message(bo, rp_id)
        await freeze(admin, bob)  # through A; bob's grab goes to B the moment it is answered
        assert (await bo.request("packet.grab", rp_id=rp_id))["code"] == "frozen", round
        assert (await bo.request("packet.create", type=3, for_id=gid, number=1, amount="1.00",
                                 pay_type="balance"))["code"] == "frozen"
        assert (await bo.request("wallet.get"))["balance"] == f"{10 + round}.00"
        assert (await ca.request("packet.grab", rp_id=rp_id))["result"] == "ok", "no slot taken"
        await freeze(admin, bob, False)
        later = await create_and_pay(al, type=3, for_id=gid, number=1, amount="1.00")
        assert (await bo.request("packet.grab", rp_id=later))["result"] == "ok", round
    assert (await bo.request("wallet.get"))["balance"] == "13.00"
    audit()
