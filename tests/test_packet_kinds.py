"""专属红包 (exclusive packets), 口令红包 (password packets), group.members, the limits as flags,
and the create and detail fixes of v1.1 — over real sockets, every fen checked."""
import asyncio

import pytest

from rtserver import refund
from tests.test_jobs import until_expired
from tests.test_packets import cents, create_and_pay, group_with
from tests.test_payments import notify, sandbox_note

TTL = 2  # seconds, for the tests of the expiry refund (tests.test_jobs.until_expired waits it)


def code(reply: dict) -> str | None:
    return None if reply["ok"] else reply["code"]


async def sent_count(client) -> int:
    return (await client.request("packet.list", box="sent"))["count"]


@pytest.mark.gen_test
async def test_an_exclusive_packet_is_created_shown_and_opened_by_its_member_alone(
        admin, connect, audit):
    gid, (alice, bob, carol), (a, b, c) = await group_with(admin, connect, 3, "10.00")
    outsider = await admin.user()
    await admin.deposit(outsider, "1.00")
    bad = [  # each refused with the PROTOCOL's code, and nothing created
        (dict(type=4, for_id=gid, amount="1.00"), "bad_request"),                # no to_user
        (dict(type=3, for_id=gid, number=2, amount="1.00", to_user=bob), "bad_request"),
        (dict(type=4, for_id=gid, amount="1.00", to_user=alice), "forbidden"),   # the sender
        (dict(type=4, for_id=gid, amount="1.00", to_user=outsider), "forbidden"),
        (dict(type=4, for_id=gid, amount="1.00", to_user=bob, number=2), "invalid_number"),
        (dict(type=4, for_id=gid, amount="200.01", to_user=bob), "invalid_amount"),
        (dict(type=4, for_id=gid, amount="0.00", to_user=bob), "invalid_amount"),
        (dict(type=4, for_id=gid, amount="1.00", to_user="2"), "bad_request"),
        (dict(type=4, for_id=gid, amount="1.00", to_user=bob, password="open"), "bad_request"),
    ]
    for args, expected in bad:
        assert code(await a.request("packet.create", pay_type="balance", **args)) == expected, args
    assert await sent_count(a) == 0

    rp_id = await create_and_pay(a, type=4, for_id=gid, amount="3.50", to_user=bob,
                                 intro="给你的")
    for client in (a, b, c):
        packet = (await client.event("message"))["message"]["packet"]
        assert (packet["type"], packet["number"], packet["total"]) == (4, 1, "3.50")
        assert packet["to_user"] == {"id": bob, "name": f"user{bob}"}
    for client in (a, c):  # its sender and another member: not theirs to open
        assert code(await client.request("packet.grab", rp_id=rp_id)) == "forbidden"
    got = await b.request("packet.grab", rp_id=rp_id)
    assert (got["result"], got["money"], got["into_account"]) == ("ok", "3.50", True)
    assert (await b.request("packet.grab", rp_id=rp_id))["result"] == "already"
    assert code(await c.request("packet.grab", rp_id=rp_id)) == "forbidden", "still not hers"

    detail = await c.request("packet.detail", rp_id=rp_id)  # a member may look at it
    assert detail["packet"]["status"] == "finished"
    assert detail["packet"]["to_user"] == {"id": bob, "name": f"user{bob}"}
    assert [g["user"]["id"] for g in detail["grabs"]] == [bob] and detail["mine"] is None
    sent = (await a.request("packet.list", box="sent"))["items"]
    assert [(p["rp_id"], p["to_user"]["id"]) for p in sent] == [(rp_id, bob)]
    received = (await b.request("packet.list", box="received"))["items"]
    assert [(p["rp_id"], p["money"], p["to_user"]["id"]) for p in received] == [(rp_id, "3.50", bob)]
    assert [cents((await x.request("wallet.get"))["balance"]) for x in (a, b, c)] == \
        [1000 - 350, 1000 + 350, 1000]
    audit()


@pytest.mark.gen_test
async def test_storm_twenty_members_grab_an_exclusive_packet_only_its_member_wins(
        admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 21, "5.00")
    sender, members = clients[0], clients[1:]
    chosen = users[7]
    rp_id = await create_and_pay(sender, type=4, for_id=gid, amount="2.00", to_user=chosen)
    answers = await asyncio.gather(*(m.request("packet.grab", rp_id=rp_id) for m in members))
    by_user = dict(zip(users[1:], answers))
    assert by_user[chosen]["result"] == "ok" and by_user[chosen]["money"] == "2.00"
    assert all(code(r) == "forbidden" for uid, r in by_user.items() if uid != chosen)
    balances = {uid: cents((await c.request("wallet.get"))["balance"])
                for uid, c in zip(users, clients)}
    assert balances == {uid: 500 + (200 if uid == chosen else -200 if uid == users[0] else 0)
                        for uid in users}
    detail = await sender.request("packet.detail", rp_id=rp_id)
    assert [(g["user"]["id"], g["money"]) for g in detail["grabs"]] == [(chosen, "2.00")]
    audit()


@pytest.mark.gen_test
async def test_an_exclusive_packet_paid_through_a_provider_opens_to_its_member(
        admin, connect, base_url, providers, audit):
    gid, (alice, bob, carol), (a, b, c) = await group_with(admin, connect, 3, "0.01")
    created = await a.request("packet.create", type=4, for_id=gid, amount="6.66", to_user=carol,
                              pay_type="sandbox")
    assert created["ok"] and created["order"]["amount"] == "6.66", created
    assert await notify(base_url, "sandbox", sandbox_note(providers, created)) == (204, "")
    await c.event("message")
    assert code(await b.request("packet.grab", rp_id=created["rp_id"])) == "forbidden"
    got = await c.request("packet.grab", rp_id=created["rp_id"])
    assert (got["result"], got["money"], got["into_account"]) == ("ok", "6.66", True)
    assert (await c.request("wallet.get"))["balance"] == "6.67"
    audit()


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"packet_ttl": TTL}], indirect=True)
async def test_an_unopened_exclusive_packet_goes_back_and_only_a_refund_shows_return_money(
        admin, connect, ctx, audit):
    gid, (alice, bob, carol), (a, b, c) = await group_with(admin, connect, 3, "10.00")
    waiting = await create_and_pay(a, type=4, for_id=gid, amount="4.00", to_user=bob)
    taken = await create_and_pay(a, type=2, for_id=gid, number=1, amount="1.00")
    assert (await c.request("packet.grab", rp_id=taken))["result"] == "ok"
    await until_expired()
    assert code(await c.request("packet.grab", rp_id=waiting)) == "forbidden"
    assert (await b.request("packet.grab", rp_id=waiting))["result"] == "expired"
    await refund.refund_expired(ctx)
    assert (await a.event("packet.refunded", rp_id=waiting))["return_money"] == "4.00"
    refunded = (await a.request("packet.detail", rp_id=waiting))["packet"]
    assert (refunded["status"], refunded["return_money"]) == ("expired", "4.00")
    finished = (await a.request("packet.detail", rp_id=taken))["packet"]
    assert finished["status"] == "finished" and "return_money" not in finished
    assert (await a.request("wallet.get"))["balance"] == "9.00"
    audit()


@pytest.mark.gen_test
async def test_group_members_are_told_to_members_only(admin, connect):
    gid, users, (a, b, c) = await group_with(admin, connect, 3, "0.01")
    outsider = await connect(await admin.user("外人"))
    members = await b.request("group.members", group_id=gid)
    assert members["members"] == [{"id": uid, "name": f"user{uid}"} for uid in sorted(users)]
    assert code(await outsider.request("group.members", group_id=gid)) == "forbidden"
    assert code(await a.request("group.members", group_id=gid + 10_000)) == "forbidden"
    for wrong in ("1", 0, -1, None, [gid]):
        assert code(await a.request("group.members", group_id=wrong)) == "bad_request", wrong


@pytest.mark.gen_test
async def test_a_password_packet_opens_to_its_phrase_and_says_it_in_the_room(
        admin, connect, audit):
    gid, (alice, bob, carol), (a, b, c) = await group_with(admin, connect, 3, "10.00")
    for args in (dict(type=1, for_id=bob, amount="1.00"), dict(type=4, for_id=gid, to_user=bob,
                                                               amount="1.00")):
        assert code(await a.request("packet.create", pay_type="balance", password="open",
                                    **args)) == "bad_request"
    for password in ("", "   ", "x" * 21, 7, ["open"]):
        assert code(await a.request("packet.create", type=3, for_id=gid, number=2, amount="1.00",
                                    pay_type="balance", password=password)) == "bad_request"
    assert await sent_count(a) == 0

    rp_id = await create_and_pay(a, type=3, for_id=gid, number=2, amount="2.00",
                                 password="芝麻开门")
    for client in (b, c):
        packet = (await client.event("message"))["message"]["packet"]
        assert packet["password"] == "芝麻开门"
    for said in (None, "芝麻", "芝麻 开门", "芝麻开门!"):
        reply = await b.request("packet.grab", rp_id=rp_id, password=said)
        assert code(reply) == "wrong_password", said
    assert code(await b.request("packet.grab", rp_id=rp_id, password="x" * 201)) == "bad_request"
    assert (await c.request("packet.detail", rp_id=rp_id))["packet"]["grabbed_count"] == 0

    got = await b.request("packet.grab", rp_id=rp_id, password="  芝麻开门 ")
    assert got["result"] == "ok"
    said = (await c.event("message"))["message"]
    assert (said["kind"], said["text"], said["from"]["id"], said["to_id"]) == \
        ("text", "芝麻开门", bob, gid)
    assert (await b.request("packet.grab", rp_id=rp_id, password="芝麻开门"))["result"] == \
        "already"
    history = (await a.request("chat.history", to_type="group", to_id=gid))["messages"]
    said_in_room = [(m["kind"], m["text"]) for m in history if m["kind"] != "notice"]
    assert said_in_room == [("packet", "恭喜发财，大吉大利"), ("text", "芝麻开门")], \
        "not for already"
    assert code(await a.request("packet.grab", rp_id=rp_id, password="no")) == "wrong_password"
    mine = await a.request("packet.grab", rp_id=rp_id, password="芝麻开门")
    assert cents(mine["money"]) + cents(got["money"]) == 200
    assert (await c.request("packet.grab", rp_id=rp_id, password="芝麻开门"))["result"] == \
        "too_slow"
    audit()


@pytest.mark.gen_test
async def test_storm_right_and_wrong_phrases_at_once_wrong_ones_take_no_share(
        admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 21, "1.00")
    sender, members = clients[0], clients[1:]
    await admin.deposit(users[0], "10.00")
    rp_id = await create_and_pay(sender, type=2, for_id=gid, number=10, amount="0.50",
                                 password="恭喜发财")
    # Ten wrong phrases are sent first: had they taken slots, a right one would find none.
    phrases = ["恭喜發財"] * 10 + [" 恭喜发财 "] * 10
    answers = await asyncio.gather(*(m.request("packet.grab", rp_id=rp_id, password=p)
                                     for m, p in zip(members, phrases)))
    assert [code(r) for r in answers[:10]] == ["wrong_password"] * 10
    assert [(r["result"], r["money"]) for r in answers[10:]] == [("ok", "0.50")] * 10
    history = (await sender.request("chat.history", to_type="group", to_id=gid))["messages"]
    said = [m for m in history if m["kind"] == "text"]
    assert sorted(m["from"]["id"] for m in said) == sorted(users[11:])
    assert {m["text"] for m in said} == {"恭喜发财"}
    balances = [cents((await c.request("wallet.get"))["balance"]) for c in clients]
    assert balances == [100 + 1000 - 500] + [100] * 10 + [150] * 10
    audit()


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"max_shares": 3, "min_share": "0.10",
                                       "max_share": "5.00", "max_personal": "2.00",
                                       "max_payment": "12.00"}], indirect=True)
async def test_the_limits_are_flags_that_hello_tells_and_create_keeps(admin, connect, audit):
    gid, (alice, bob, carol, dan), (a, b, c, d) = await group_with(admin, connect, 4, "50.00")
    assert a.hello["limits"] == {"max_shares": 3, "min_share": "0.10", "max_share": "5.00",
                                 "max_personal": "2.00", "max_payment": "12.00", "intro_max": 25}
    refused = [
        (dict(type=2, for_id=gid, number=4, amount="1.00"), "invalid_number"),
        (dict(type=2, for_id=gid, number=2, amount="5.01"), "invalid_amount"),
        (dict(type=2, for_id=gid, number=2, amount="0.09"), "invalid_amount"),
        (dict(type=3, for_id=gid, number=3, amount="0.29"), "invalid_amount"),
        (dict(type=3, for_id=gid, number=3, amount="12.01"), "invalid_amount"),
        (dict(type=1, for_id=bob, amount="2.01"), "invalid_amount"),
        (dict(type=4, for_id=gid, to_user=bob, amount="2.01"), "invalid_amount"),
    ]
    for args, expected in refused:
        assert code(await a.request("packet.create", pay_type="balance", **args)) == expected, args
    rp_id = await create_and_pay(a, type=3, for_id=gid, number=3, amount="12.00")
    got = await asyncio.gather(*(x.request("packet.grab", rp_id=rp_id) for x in (b, c, d)))
    assert all(10 <= cents(g["money"]) <= 500 for g in got)
    assert sum(cents(g["money"]) for g in got) == 1200
    audit()


@pytest.mark.gen_test
async def test_a_client_key_used_again_for_another_packet_is_bad_request(admin, connect, audit):
    gid, (alice, bob, carol), (a, b, c) = await group_with(admin, connect, 3, "10.00")
    first = dict(type=3, for_id=gid, number=2, amount="2.00", pay_type="balance",
                 client_key="k-1", intro="新年好", password="口令")
    created = await a.request("packet.create", **first)
    again = await a.request("packet.create", **first)
    assert again["ok"] and again["rp_id"] == created["rp_id"]
    assert (await a.request("packet.create", **{**first, "intro": " 新年好 "}))["rp_id"] == \
        created["rp_id"], "the same request, as stored"
    for change in (dict(amount="2.01"), dict(number=3), dict(type=2, amount="1.00"),
                   dict(intro="别的"), dict(password="别的"), dict(password=None),
                   dict(pay_type="sandbox"), dict(type=1, for_id=bob, number=1)):
        assert code(await a.request("packet.create", **{**first, **change})) == "bad_request", \
            change
    exclusive = dict(type=4, for_id=gid, amount="1.00", to_user=bob, pay_type="balance",
                     client_key="k-2")
    assert (await a.request("packet.create", **exclusive))["ok"]
    assert code(await a.request("packet.create", **{**exclusive, "to_user": carol})) == \
        "bad_request"
    assert (await a.request("wallet.get"))["balance"] == "10.00"
    audit()
