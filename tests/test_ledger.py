"""零钱明细 (`wallet.ledger`): every movement of the user's own wallet, newest first, in the words
a person reads, paged on the ledger's id."""
import asyncio
import time

import pytest

from rtserver import payments, refund
from tests.test_frozen import withdraw
from tests.test_packets import create_and_pay
from tests.test_payments import notify, sandbox_note, third_party_packet

TTL = 2  # seconds a packet stays grabbable here: the expiry refund comes soon


@pytest.mark.parametrize("settings", [{"packet_ttl": TTL}], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_every_kind_of_movement_with_its_title_direction_and_packet(
        admin, connect, base_url, providers, ctx, audit):
    zhang, me = await admin.user("张三"), await admin.user("李四")
    gid = await admin.group([zhang, me])
    await admin.deposit(zhang, "10.00")
    await admin.deposit(me, "50.00", ref="bank-7")
    z, m = await connect(zhang), await connect(me)
    started = int(time.time())

    from_zhang = await create_and_pay(z, type=1, for_id=me, amount="1.23")
    assert (await m.request("packet.grab", rp_id=from_zhang))["result"] == "ok"
    mine = await create_and_pay(m, type=2, for_id=gid, number=2, amount="1.00")
    assert (await z.request("packet.grab", rp_id=mine))["result"] == "ok"
    voided = await third_party_packet(m, gid, number=1, amount="3.00")
    await m.request("packet.sync_paid", rp_id=voided["rp_id"], result={})
    assert await payments.void(ctx, voided["rp_id"])
    assert await notify(base_url, "sandbox", sandbox_note(providers, voided)) == (204, "")
    await asyncio.sleep(TTL + 1.1)
    assert await refund.refund_expired(ctx) >= 1
    assert await withdraw(admin, me, "5.00", f"cash-out-{me}") == (200, {"balance": "48.23"})

    page = await m.request("wallet.ledger")
    rows = [(i["kind"], i["direction"], i["amount"], i["balance"], i["rp_id"], i["title"])
            for i in page["items"]]
    assert rows == [
        ("withdraw", "out", "5.00", "48.23", None, "提现"),
        ("refund", "in", "1.00", "53.23", mine, "红包退款"),
        ("refund", "in", "3.00", "52.23", voided["rp_id"], "红包退款"),  # the late payment
        ("pay", "out", "2.00", "49.23", mine, "发出红包"),
        ("grab", "in", "1.23", "51.23", from_zhang, "张三的红包"),
        ("deposit", "in", "50.00", "50.00", None, "充值"),
    ]
    assert page["next"] is None
    ids = [i["id"] for i in page["items"]]
    assert ids == sorted(ids, reverse=True)
    assert all(started - 1 <= i["time"] <= time.time() for i in page["items"][:-1])
    assert page["items"][0]["balance"] == (await m.request("wallet.get"))["balance"]

    theirs = await z.request("wallet.ledger")
    assert [(i["kind"], i["title"]) for i in theirs["items"]] == [
        ("grab", "李四的红包"), ("pay", "发出红包"), ("deposit", "充值")]
    assert not set(ids) & {i["id"] for i in theirs["items"]}, "only the user's own rows"
    audit()


@pytest.mark.gen_test
async def test_pages_follow_the_cursor_to_the_end(admin, connect):
    uid = await admin.user()
    for n in range(7):
        await admin.deposit(uid, f"{n + 1}.00")
    client = await connect(uid)
    seen, before, pages = [], None, 0
    while True:
        page = await client.request("wallet.ledger", limit=3,
                                    **({"before": before} if before else {}))
        seen += [i["amount"] for i in page["items"]]
        pages += 1
        before = page["next"]
        if before is None:
            break
        assert len(page["items"]) == 3
    assert seen == [f"{n}.00" for n in range(7, 0, -1)] and pages == 3
    default = await client.request("wallet.ledger")
    assert len(default["items"]) == 7 and default["next"] is None
    six = await client.request("wallet.ledger", limit=6)
    assert (len(six["items"]), six["next"]) == (6, six["items"][-1]["id"])
    empty = await (await connect(await admin.user())).request("wallet.ledger")
    assert (empty["items"], empty["next"]) == ([], None)


@pytest.mark.gen_test
async def test_malformed_arguments_are_bad_request(admin, connect):
    client = await connect(await admin.user())
    for args in [{"limit": 0}, {"limit": 51}, {"limit": "5"}, {"limit": True}, {"before": 0},
                 {"before": -1}, {"before": "12"}, {"before": [1]}, {"before": 2**63}]:
        answer = await client.request("wallet.ledger", **args)
        assert (answer["ok"], answer["code"]) == (False, "bad_request"), args
    assert (await client.request("wallet.ledger", limit=50))["ok"]
