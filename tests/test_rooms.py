"""The room's rules (docs/protocol.md v1.1): late joiners and leavers, and the notices kept in the
chat — over real sockets, on one node and on two."""
import asyncio
import time

import pytest

from rtserver import refund
from storage import people
from tests.test_nodes import deposit, packet_message, two_nodes
from tests.test_packets import cents, create_and_pay, group_with

TTL = 2  # seconds a packet stays grabbable in the refund's test
GRAB_SPREAD = 0.003  # seconds between the grabs of the storm


async def next_second() -> None:
    """Wait until the clock reads a later second than now: times are whole seconds, and a
    member who joined in the second a packet was paid may still grab it."""
    now = int(time.time())
    while int(time.time()) <= now:
        await asyncio.sleep(0.05)


async def add_member(admin, gid: int, uid: int) -> None:
    status, body = await admin.call("POST", f"/admin/groups/{gid}/members", {"user_ids": [uid]})
    assert status == 200, body


async def remove_member(admin, gid: int, uid: int) -> None:
    status, body = await admin.call("DELETE", f"/admin/groups/{gid}/members/{uid}")
    assert status == 200, body


async def history(client, to_type: str, to_id: int, **args) -> list[dict]:
    reply = await client.request("chat.history", to_type=to_type, to_id=to_id, **args)
    assert reply["ok"], reply
    return reply["messages"]


def notices(messages: list[dict]) -> list[tuple]:
    return [(m["text"], m["notice"]["code"], m["notice"]["rp_id"]) for m in messages
            if m["kind"] == "notice"]


async def live_notice(client, code: str, rp_id: int) -> dict:
    """The `message` event that carries a notice of `code` about packet `rp_id`; consumed."""
    event = await client.event("message", where=lambda e: e["message"]["kind"] == "notice"
                               and e["message"]["notice"]["code"] == code
                               and e["message"]["notice"]["rp_id"] == rp_id)
    return event["message"]


def packets_in(messages: list[dict]) -> list[int]:
    return [m["packet"]["rp_id"] for m in messages if m["kind"] == "packet"]


# ---- Late joiners and leavers ----

@pytest.mark.gen_test
async def test_a_late_joiner_grabs_only_what_was_paid_since_and_reads_only_what_was_sent_since(
        admin, connect, ctx, audit):
    gid, (alice, bob), (a, b) = await group_with(admin, connect, 2, "10.00")
    said = await b.request("chat.send", to_type="group", to_id=gid, text="before carol")
    before = await create_and_pay(a, type=3, for_id=gid, number=2, amount="2.00")
    carol = await admin.user()
    await next_second()
    await add_member(admin, gid, carol)
    c = await connect(carol)

    assert (await c.request("packet.grab", rp_id=before))["code"] == "forbidden"
    assert (await b.request("packet.grab", rp_id=before))["result"] == "ok"
    after = await create_and_pay(a, type=3, for_id=gid, number=2, amount="2.00")
    got = await c.request("packet.grab", rp_id=after)
    assert got["result"] == "ok"
    seen = await history(c, "group", gid)
    assert packets_in(seen) == [after], "carol sees only what was sent since she joined"
    assert said["message"]["id"] not in [m["id"] for m in seen]
    assert packets_in(await history(b, "group", gid)) == [before, after]
    # Still refused on the way that asks MariaDB, not this node's cache.
    ctx.caches.members.drop(gid)
    ctx.caches.packets.drop(before)
    assert (await c.request("packet.grab", rp_id=before))["code"] == "forbidden"

    # Bob leaves and comes back: from then on he reads what was sent since his return.
    await remove_member(admin, gid, bob)
    assert (await b.request("chat.history", to_type="group", to_id=gid))["code"] == "forbidden"
    await next_second()
    await add_member(admin, gid, bob)
    assert packets_in(await history(b, "group", gid)) == []
    assert (await b.request("packet.grab", rp_id=after))["code"] == "forbidden"
    async with ctx.db.cursor() as cur:
        spans = await people.membership_history(cur, gid, bob)
    assert len(spans) == 2 and spans[0]["left_time"] and spans[1]["left_time"] is None
    assert spans[1]["joined_time"] >= spans[0]["left_time"] >= spans[0]["joined_time"]
    audit()


@pytest.mark.gen_test
async def test_putting_a_group_writes_the_membership_history(admin, ctx):
    alice, bob, carol = await admin.users(3)
    gid = await admin.group([alice, bob])
    status, _ = await admin.call("PUT", f"/admin/groups/{gid}",
                                 {"name": "renamed", "members": [alice, carol]})
    assert status == 200
    async with ctx.db.cursor() as cur:
        assert [s["left_time"] is None for s in await people.membership_history(cur, gid, alice)] \
            == [True], "a member kept by the PUT keeps their span"
        assert [s["left_time"] is None for s in await people.membership_history(cur, gid, bob)] \
            == [False]
        assert [s["left_time"] is None for s in await people.membership_history(cur, gid, carol)] \
            == [True]


@pytest.mark.gen_test
async def test_who_left_still_opens_the_detail_of_a_packet_they_hold_a_share_of(
        admin, connect, audit):
    gid, (alice, bob, carol), (a, b, c) = await group_with(admin, connect, 3, "10.00")
    rp_id = await create_and_pay(a, type=3, for_id=gid, number=3, amount="3.00")
    got = await b.request("packet.grab", rp_id=rp_id)
    await remove_member(admin, gid, bob)
    await remove_member(admin, gid, carol)
    detail = await b.request("packet.detail", rp_id=rp_id)
    assert detail["ok"] and detail["mine"]["money"] == got["money"]
    received = await b.request("packet.list", box="received")
    assert rp_id in [item["rp_id"] for item in received["items"]], "我的红包 lists it"
    assert (await c.request("packet.detail", rp_id=rp_id))["code"] == "forbidden"
    assert (await c.request("packet.grab", rp_id=rp_id))["code"] == "forbidden"
    audit()


@pytest.mark.gen_test
async def test_storm_members_removed_while_grabbing_either_got_their_share_or_forbidden(
        admin, connect, audit):
    """40 sockets grab a 40-share packet while 14 of their users are removed at once: each
    removed member is told `ok` with the share they hold, or `forbidden` and holds none."""
    gid, users, clients = await group_with(admin, connect, 41, "1.00")
    await admin.deposit(users[0], "40.00")
    rp_id = await create_and_pay(clients[0], type=3, for_id=gid, number=40, amount="40.00")
    grabbers, removed = list(zip(users[1:], clients[1:])), set(users[1::3])

    async def grab_after(client, delay: float) -> dict:
        await asyncio.sleep(delay)
        return await client.request("packet.grab", rp_id=rp_id)

    # The grabs spread over the time the removals take, so that some come before and some after.
    replies = await asyncio.gather(
        *(grab_after(c, i * GRAB_SPREAD) for i, (_, c) in enumerate(grabbers)),
        *(remove_member(admin, gid, uid) for uid in sorted(removed)))
    answers = dict(zip([uid for uid, _ in grabbers], replies))
    detail = await clients[0].request("packet.detail", rp_id=rp_id)
    held = {g["user"]["id"]: cents(g["money"]) for g in detail["grabs"]}
    for uid, answer in answers.items():
        if uid in removed and answer.get("code") == "forbidden":
            assert uid not in held, (uid, answer)
        else:
            assert answer["result"] == "ok", (uid, answer)
            assert held[uid] == cents(answer["money"])
    assert set(held) == {uid for uid, a in answers.items() if a.get("result") == "ok"}
    assert len(held) >= 40 - len(removed)
    for uid, client in grabbers:
        assert cents((await client.request("wallet.get"))["balance"]) == 100 + held.get(uid, 0)
    assert cents((await clients[0].request("wallet.get"))["balance"]) == 100
    assert sum(held.values()) == cents(detail["packet"]["grabbed_total"])
    audit()


@pytest.mark.gen_test
async def test_a_late_joiner_is_refused_on_both_nodes(settings, children, dial, audit):
    a, b, admin = await two_nodes(children, settings)
    alice, bob, carol = await admin.users(3)
    gid = await admin.group([alice, bob])
    al, bo = await dial(a.base_url, alice), await dial(b.base_url, bob)
    await deposit(admin, alice, "10.00", al)
    old = await create_and_pay(al, type=3, for_id=gid, number=2, amount="2.00")
    await packet_message(bo, old)
    assert (await bo.request("packet.grab", rp_id=old))["result"] == "ok"  # B caches
    await next_second()
    await add_member(admin, gid, carol)  # on A: B hears it over Redis and drops its copy
    on_a, on_b = await dial(a.base_url, carol), await dial(b.base_url, carol)
    for socket in (on_a, on_b):
        assert (await socket.request("packet.grab", rp_id=old))["code"] == "forbidden"
    new = await create_and_pay(al, type=3, for_id=gid, number=2, amount="2.00")
    assert (await on_b.request("packet.grab", rp_id=new))["result"] == "ok"
    assert (await on_a.request("packet.grab", rp_id=new))["result"] == "already"
    audit()


# ---- Notices kept in the chat ----

@pytest.mark.gen_test
async def test_notices_of_a_group_packet_are_kept_each_for_its_user_and_told_live(
        admin, connect, audit):
    gid, (alice, bob, carol, dave), (a, b, c, d) = await group_with(admin, connect, 4, "10.00")
    rp_id = await create_and_pay(a, type=3, for_id=gid, number=2, amount="2.00")
    for client in (b, c):
        assert (await client.request("packet.grab", rp_id=rp_id))["result"] == "ok"
    said = await d.request("chat.send", to_type="group", to_id=gid, text="恭喜")
    for client in (a, b, c, d):
        await client.event("message", message=said["message"])

    ours = {
        a: [(f"user{bob}领取了你的红包", "grabbed", rp_id), (f"user{carol}领取了你的红包", "grabbed", rp_id),
            ("你的红包已被领完", "finished", rp_id)],
        b: [(f"你领取了user{alice}的红包", "grabbed", rp_id)],
        c: [(f"你领取了user{alice}的红包", "grabbed", rp_id)],
        d: [],
    }
    for client, expected in ours.items():
        live = [e["message"] for e in client.named("message")]
        assert notices(live) == expected, "told live, each to its user alone"
        assert sorted(notices(await history(client, "group", gid))) == sorted(expected)
    kept = [m for m in await history(a, "group", gid) if m["kind"] == "notice"]
    grabbed = kept[0]
    assert (grabbed["to_type"], grabbed["to_id"], grabbed["from"]["id"]) == ("group", gid, alice)
    assert grabbed["notice"]["grabber"] == {"id": bob, "name": f"user{bob}"}
    assert grabbed["notice"]["sender"] == {"id": alice, "name": f"user{alice}"}
    assert kept[2]["notice"] == {"code": "finished", "rp_id": rp_id}
    audit()


@pytest.mark.gen_test
async def test_history_pages_through_notices_only_of_its_reader(admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 6, "10.00")
    sender, first = clients[0], clients[1]
    for _ in range(2):
        rp_id = await create_and_pay(sender, type=2, for_id=gid, number=5, amount="0.01")
        for client in clients[1:]:
            assert (await client.request("packet.grab", rp_id=rp_id))["result"] == "ok"
        await first.request("chat.send", to_type="group", to_id=gid, text="谢谢")
    for reader, expected in ((sender, 2 * (1 + 5 + 1 + 1)), (first, 2 * (1 + 1 + 1))):
        whole = await history(reader, "group", gid)
        assert len(whole) == expected
        if reader is first:
            assert {m["notice"]["grabber"]["id"] for m in whole if m["kind"] == "notice"} \
                == {users[1]}
        pages, before = [], None
        while page := await history(reader, "group", gid, limit=3,
                                    **({"before": before} if before else {})):
            pages, before = page + pages, page[0]["id"]
        assert pages == whole, "pages of 3 give each message once, in order"
    audit()


@pytest.mark.gen_test
async def test_notices_in_the_1_1_room_and_of_a_packet_its_sender_grabs(admin, connect, audit):
    alice, bob = await admin.users(2)
    await admin.deposit(alice, "10.00")
    a, b = await connect(alice), await connect(bob)
    rp_id = await create_and_pay(a, type=1, for_id=bob, number=1, amount="1.00")
    assert (await b.request("packet.grab", rp_id=rp_id))["result"] == "ok"
    assert notices(await history(a, "user", bob)) == [
        (f"user{bob}领取了你的红包", "grabbed", rp_id), ("你的红包已被领完", "finished", rp_id)]
    assert notices(await history(b, "user", alice)) == [(f"你领取了user{alice}的红包", "grabbed", rp_id)]
    told = await live_notice(b, "grabbed", rp_id)
    assert (told["to_type"], told["to_id"], told["from"]["id"]) == ("user", bob, alice)

    gid = await admin.group([alice, bob])
    own = await create_and_pay(a, type=3, for_id=gid, number=2, amount="2.00")
    assert (await a.request("packet.grab", rp_id=own))["result"] == "ok"
    assert notices(await history(a, "group", gid)) == [("你领取了自己发的红包", "grabbed", own)]
    assert notices(await history(b, "group", gid)) == []
    audit()


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"packet_ttl": TTL}], indirect=True)
async def test_the_refund_keeps_its_notice_for_the_sender(admin, connect, ctx, audit):
    gid, (alice, bob, _, _), (a, b, _, _) = await group_with(admin, connect, 4, "10.00")
    rp_id = await create_and_pay(a, type=2, for_id=gid, number=4, amount="1.00")
    assert (await b.request("packet.grab", rp_id=rp_id))["result"] == "ok"
    await asyncio.sleep(TTL + 1.1)
    assert await refund.refund_expired(ctx) >= 1
    text = "你的红包已过期，未领取的3.00元已退回"
    told = await live_notice(a, "refunded", rp_id)
    assert told["text"] == text and told["notice"] == {"code": "refunded", "rp_id": rp_id,
                                                       "return_money": "3.00"}
    assert notices(await history(a, "group", gid))[-1] == (text, "refunded", rp_id)
    assert notices(await history(b, "group", gid)) == [(f"你领取了user{alice}的红包", "grabbed", rp_id)]
    assert not [e for e in b.named("message") if e["message"]["kind"] == "notice"
                and e["message"]["notice"]["code"] == "refunded"]
    audit()
