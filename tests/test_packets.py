"""Red packets paid from the balance: create, pay, grab, detail, list — over real sockets."""
import asyncio

import pytest

from rtserver import grab
from rtserver.money import format_fen, parse_amount
from storage import slots
from tests.test_admin import LOOKALIKES


async def group_with(admin, connect, n: int, deposit: str = "1000.00"):
    """n users in one group, each connected and holding `deposit`."""
    users = await admin.users(n)
    gid = await admin.group(users)
    for uid in users:
        await admin.deposit(uid, deposit)
    clients = [await connect(uid) for uid in users]
    return gid, users, clients


async def create_and_pay(client, **args) -> int:
    created = await client.request("packet.create", pay_type="balance", **args)
    assert created["ok"], created
    paid = await client.request("packet.pay", rp_id=created["rp_id"])
    assert paid["ok"], paid
    return created["rp_id"]


def calls_of(monkeypatch, client, method: str) -> list:
    """A list that records each call of `client.method`; every call is passed on to the real
    method, over the real connection, and its own result returned."""
    calls, real = [], getattr(client, method)

    def passed_on(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(client, method, passed_on)
    return calls


def cents(text: str) -> int:
    return parse_amount(text)


@pytest.mark.gen_test
async def test_lucky_packet_flow_end_to_end(admin, connect, audit):
    gid, (alice, bob, carol), (a, b, c) = await group_with(admin, connect, 3, "100.00")
    created = await a.request("packet.create", type=3, for_id=gid, number=2, amount="10.00",
                              pay_type="balance", intro="新年快乐")
    assert created == {"re": created["re"], "ok": True, "rp_id": created["rp_id"],
                       "total": "10.00", "number": 2, "pay_status": 0}
    rp_id = created["rp_id"]
    paid = await a.request("packet.pay", rp_id=rp_id)
    assert paid["balance"] == "90.00"
    assert paid["packet"]["status"] == "active" and paid["packet"]["intro"] == "新年快乐"
    assert paid["packet"]["expires_at"] - paid["packet"]["pay_time"] == 86400
    for client in (a, b, c):
        message = (await client.event("message"))["message"]
        assert message["kind"] == "packet" and message["packet"]["rp_id"] == rp_id
        assert message["from"] == {"id": alice, "name": f"user{alice}"}
    assert (await a.event("wallet"))["balance"] == "90.00"

    got_b = await b.request("packet.grab", rp_id=rp_id)
    assert got_b["result"] == "ok" and got_b["into_account"] is True
    again = await b.request("packet.grab", rp_id=rp_id)
    assert (again["result"], again["money"]) == ("already", got_b["money"])
    got_c = await c.request("packet.grab", rp_id=rp_id)
    assert got_c["result"] == "ok"
    # The grab of the last share is answered once its packet is finished: what c reads next
    # says 已被领完.
    assert (await c.request("packet.detail", rp_id=rp_id))["packet"]["status"] == "finished"
    assert cents(got_b["money"]) + cents(got_c["money"]) == 1000
    assert (await a.request("packet.grab", rp_id=rp_id))["result"] == "too_slow"

    grabbed = await a.event("packet.grabbed", grabber={"id": bob, "name": f"user{bob}"})
    assert "money" not in grabbed and grabbed["rp_id"] == rp_id
    mine = await b.event("packet.grabbed")
    assert mine["money"] == got_b["money"] and mine["last"] is False
    assert (await c.event("packet.grabbed"))["last"] is True
    state = await a.event("packet.state", rp_id=rp_id)
    assert state["status"] == "finished" and state["grabbed_count"] == 2
    best_money = max(got_b["money"], got_c["money"], key=cents)
    assert state["best"]["money"] == best_money
    assert (await b.event("wallet"))["balance"] == format_fen(10000 + cents(got_b["money"]))

    detail = await b.request("packet.detail", rp_id=rp_id)
    assert detail["packet"]["status"] == "finished"
    assert detail["packet"]["grabbed_count"] == 2 and detail["packet"]["grabbed_total"] == "10.00"
    assert detail["mine"]["money"] == got_b["money"] and detail["mine"]["into_account"] is True
    assert sum(g["is_good"] for g in detail["grabs"]) == 1
    assert [g["money"] for g in detail["grabs"] if g["is_good"]] == [best_money]
    audit()



@pytest.mark.gen_test
async def test_storm_40_grabbers_on_30_shares_exactly_30_win_and_every_fen_lands(
        admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 40, "10.00")
    await admin.deposit(users[0], "100.00")
    rp_id = await create_and_pay(clients[0], type=3, for_id=gid, number=30, amount="100.00")
    replies = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients))
    won = {uid: cents(r["money"]) for uid, r in zip(users, replies) if r["result"] == "ok"}
    assert len(won) == 30
    assert [r["result"] for r in replies].count("too_slow") == 10
    assert sum(won.values()) == 10000
    assert all(1 <= fen <= 20000 for fen in won.values())
    for uid, client in zip(users, clients):
        balance = cents((await client.request("wallet.get"))["balance"])
        assert balance == 1000 + won.get(uid, 0)
    detail = await clients[0].request("packet.detail", rp_id=rp_id)
    assert detail["packet"]["status"] == "finished"
    assert {g["user"]["id"]: cents(g["money"]) for g in detail["grabs"]} == won
    assert sum(g["is_good"] for g in detail["grabs"]) == 1
    audit()


@pytest.mark.gen_test
async def test_group_normal_gives_equal_shares(admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 5, "50.00")
    rp_id = await create_and_pay(clients[0], type=2, for_id=gid, number=4, amount="1.23")
    detail = await clients[1].request("packet.detail", rp_id=rp_id)
    assert (detail["packet"]["total"], detail["packet"]["single"]) == ("4.92", "1.23")
    replies = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients))
    assert sorted(r.get("money") for r in replies if r["result"] == "ok") == ["1.23"] * 4
    assert [r["result"] for r in replies].count("too_slow") == 1
    finished = await clients[2].request("packet.detail", rp_id=rp_id)
    assert not any(g["is_good"] for g in finished["grabs"]), "best luck is for lucky packets only"
    audit()


@pytest.mark.gen_test
async def test_personal_packet_only_the_recipient_opens_it(admin, connect, audit):
    alice, bob, eve = await admin.users(3)
    await admin.deposit(alice, "10.00")
    a, b, e = await connect(alice), await connect(bob), await connect(eve)
    wrong = await a.request("packet.create", type=1, for_id=bob, number=2, amount="1.00",
                            pay_type="balance")
    assert wrong["code"] == "invalid_number"
    to_self = await a.request("packet.create", type=1, for_id=alice, amount="1.00",
                              pay_type="balance")
    assert to_self["code"] == "forbidden"
    rp_id = await create_and_pay(a, type=1, for_id=bob, amount="5.20")
    assert (await b.event("message"))["message"]["packet"]["rp_id"] == rp_id
    assert not e.named("message"), "a stranger hears nothing of it"
    assert (await a.request("packet.grab", rp_id=rp_id))["code"] == "forbidden"
    assert (await e.request("packet.grab", rp_id=rp_id))["code"] == "forbidden"
    assert (await e.request("packet.detail", rp_id=rp_id))["code"] == "forbidden"
    got = await b.request("packet.grab", rp_id=rp_id)
    assert (got["result"], got["money"]) == ("ok", "5.20")
    assert (await b.request("wallet.get"))["balance"] == "5.20"
    assert (await a.request("wallet.get"))["balance"] == "4.80"
    sender_view = await a.request("packet.detail", rp_id=rp_id)
    assert sender_view["mine"] is None and sender_view["packet"]["status"] == "finished"
    assert sender_view["grabs"][0]["user"]["id"] == bob
    audit()


@pytest.mark.gen_test
async def test_same_user_on_two_connections_at_once_holds_one_share(admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 3, "20.00")
    twin = await connect(users[1])
    rp_id = await create_and_pay(clients[0], type=3, for_id=gid, number=3, amount="3.00")
    first, second = await asyncio.gather(clients[1].request("packet.grab", rp_id=rp_id),
                                         twin.request("packet.grab", rp_id=rp_id))
    assert sorted([first["result"], second["result"]]) == ["already", "ok"]
    assert first["money"] == second["money"]
    balance = cents((await twin.request("wallet.get"))["balance"])
    assert balance == 2000 + cents(first["money"])
    audit()


@pytest.mark.gen_test
async def test_more_shares_than_group_members_is_invalid_number(admin, connect):
    gid, users, clients = await group_with(admin, connect, 3, "10.00")
    reply = await clients[0].request("packet.create", type=3, for_id=gid, number=4,
                                     amount="4.00", pay_type="balance")
    assert reply["code"] == "invalid_number"


VALIDATION = [
    ({"type": 3, "number": 0, "amount": "1.00"}, "invalid_number"),
    ({"type": 3, "number": 101, "amount": "101.00"}, "invalid_number"),
    ({"type": 3, "number": "2", "amount": "1.00"}, "invalid_number"),
    ({"type": 3, "number": 2.0, "amount": "1.00"}, "invalid_number"),
    ({"type": 3, "number": 2, "amount": "0.01"}, "invalid_amount"),
    ({"type": 3, "number": 2, "amount": "400.01"}, "invalid_amount"),
    ({"type": 3, "number": 2, "amount": 1.0}, "invalid_amount"),
    ({"type": 3, "number": 2, "amount": "1e2"}, "invalid_amount"),
    ({"type": 3, "number": 2, "amount": " 1.00"}, "invalid_amount"),
    ({"type": 3, "number": 2, "amount": "1.001"}, "invalid_amount"),
    ({"type": 3, "number": 2, "amount": "NaN"}, "invalid_amount"),
    ({"type": 3, "number": 2, "amount": "-1.00"}, "invalid_amount"),
    ({"type": 3, "number": 2, "amount": "0"}, "invalid_amount"),
    ({"type": 3, "number": 2, "amount": "1"}, "invalid_amount"),      # exactly two places
    ({"type": 3, "number": 2, "amount": "1.0"}, "invalid_amount"),
    ({"type": 3, "number": 2, "amount": "1.000"}, "invalid_amount"),
    ({"type": 2, "number": 2, "amount": "200.01"}, "invalid_amount"),
    ({"type": 2, "number": 2, "amount": "0.00"}, "invalid_amount"),
    ({"type": 3, "number": 2, "amount": "1.00", "intro": "长" * 26}, "bad_request"),
    ({"type": 3, "number": 2, "amount": "1.00", "intro": 7}, "bad_request"),
    ({"type": 4, "number": 2, "amount": "1.00"}, "bad_request"),
    ({"type": 3, "number": 2, "amount": "1.00", "pay_type": "cash"}, "bad_request"),
    ({"type": 3, "number": 2}, "bad_request"),
]


@pytest.mark.gen_test
async def test_validation_table_every_code_and_no_money_moves(admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1000.00")
    sender = clients[0]
    for args, code in VALIDATION:
        frame = {"for_id": gid, "pay_type": "balance", **args}
        reply = await sender.request("packet.create", **frame)
        assert (reply["ok"], reply["code"]) == (False, code), (args, reply)
        assert reply["message"]
    reply = await sender.request("packet.create", type=3, for_id=admin.unused_id(), number=2,
                                 amount="1.00", pay_type="balance")
    assert (reply["ok"], reply["code"]) == (False, "not_found") and reply["message"]
    outsider_group = await admin.group([users[1]])
    reply = await sender.request("packet.create", type=3, for_id=outsider_group, number=1,
                                 amount="1.00", pay_type="balance")
    assert reply["code"] == "forbidden"
    assert (await sender.request("packet.list", box="sent"))["count"] == 0
    assert (await sender.request("wallet.get"))["balance"] == "1000.00"
    assert (await sender.request("packet.pay", rp_id=999999999))["code"] == "not_found"
    audit()


@pytest.mark.gen_test
async def test_paying_rules(admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 2, "5.00")
    sender, other = clients
    created = await sender.request("packet.create", type=2, for_id=gid, number=2, amount="3.00",
                                   pay_type="balance")
    rp_id = created["rp_id"]
    assert (await other.request("packet.grab", rp_id=rp_id))["code"] == "not_paid"
    assert (await other.request("packet.pay", rp_id=rp_id))["code"] == "forbidden"
    assert (await sender.request("packet.pay", rp_id=rp_id))["code"] == "insufficient_balance"
    await admin.deposit(users[0], "1.00")
    both = await asyncio.gather(*(sender.request("packet.pay", rp_id=rp_id) for _ in range(2)))
    assert sorted(r.get("code", "ok") for r in both) == ["already_paid", "ok"]
    assert (await sender.request("packet.pay", rp_id=rp_id))["code"] == "already_paid"
    assert (await sender.request("wallet.get"))["balance"] == "0.00"
    audit()


@pytest.mark.gen_test
async def test_create_is_idempotent_on_client_key(admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 2, "5.00")
    args = dict(type=3, for_id=gid, number=2, amount="1.00", pay_type="balance",
                client_key="tap-1")
    replies = await asyncio.gather(*(clients[0].request("packet.create", **args)
                                     for _ in range(3)))
    assert len({r["rp_id"] for r in replies}) == 1
    assert (await clients[0].request("packet.list", box="sent"))["count"] == 0  # none paid yet
    audit()


@pytest.mark.gen_test
async def test_client_keys_differing_in_case_space_or_accent_are_four_packets(
        admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 2, "4.00")
    sender = clients[0]

    async def create(client_key: str) -> int:
        created = await sender.request("packet.create", type=3, for_id=gid, number=2,
                                       amount="1.00", pay_type="balance", client_key=client_key)
        assert created["ok"], created
        return created["rp_id"]

    rp_ids = [await create(key) for key in LOOKALIKES]
    assert len(set(rp_ids)) == 4
    assert [await create(key) for key in LOOKALIKES] == rp_ids, "a repeat is the same packet"
    for rp_id in rp_ids:
        assert (await sender.request("packet.pay", rp_id=rp_id))["ok"]
    assert (await sender.request("wallet.get"))["balance"] == "0.00"
    assert (await sender.request("packet.list", box="sent"))["count"] == 4
    audit()


@pytest.mark.gen_test
async def test_best_luck_tie_goes_to_the_earliest_grab(admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 3, "1.00")
    rp_id = await create_and_pay(clients[0], type=3, for_id=gid, number=3, amount="0.03")
    for client in clients:  # one at a time: the order of grabs is known
        assert (await client.request("packet.grab", rp_id=rp_id))["money"] == "0.01"
    state = await clients[2].event("packet.state", rp_id=rp_id)
    assert state["best"] == {"user": {"id": users[0], "name": f"user{users[0]}"}, "money": "0.01"}
    detail = await clients[1].request("packet.detail", rp_id=rp_id)
    assert [g["user"]["id"] for g in detail["grabs"] if g["is_good"]] == [users[0]]
    assert detail["mine"]["is_good"] is False
    audit()


@pytest.mark.gen_test
async def test_redis_keys_lost_mid_packet_grabs_stay_exact(admin, connect, ctx, audit):
    gid, users, clients = await group_with(admin, connect, 12, "1.00")
    await admin.deposit(users[0], "10.00")
    rp_id = await create_and_pay(clients[0], type=3, for_id=gid, number=10, amount="10.00")
    early = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients[:4]))
    async for key in ctx.redis.scan_iter(match=ctx.keys.packet(rp_id, "*")):
        await ctx.redis.delete(key)
    again = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients))
    assert [r["result"] for r in again[:4]] == ["already"] * 4
    assert [r["money"] for r in again[:4]] == [r["money"] for r in early]
    assert [r["result"] for r in again[4:]].count("ok") == 6
    assert [r["result"] for r in again[4:]].count("too_slow") == 2
    detail = await clients[0].request("packet.detail", rp_id=rp_id)
    assert detail["packet"]["grabbed_total"] == "10.00" and len(detail["grabs"]) == 10
    audit()


@pytest.mark.gen_test
async def test_detail_and_list_for_each_viewer(admin, connect, audit):
    gid, (alice, bob, carol), (a, b, c) = await group_with(admin, connect, 3, "10.00")
    stranger = await connect(await admin.user())
    created = await a.request("packet.create", type=3, for_id=gid, number=2, amount="2.00",
                              pay_type="balance")
    rp_id = created["rp_id"]
    unpaid = await a.request("packet.detail", rp_id=rp_id)
    assert unpaid["packet"]["status"] == "unpaid" and unpaid["grabs"] == []
    await a.request("packet.pay", rp_id=rp_id)
    got = await b.request("packet.grab", rp_id=rp_id)
    active = await c.request("packet.detail", rp_id=rp_id)
    assert active["packet"]["status"] == "active" and active["mine"] is None
    assert active["packet"]["grabbed_count"] == 1
    assert [g["money"] for g in active["grabs"]] == [got["money"]]
    assert not any(g["is_good"] for g in active["grabs"]), "no best luck before it is finished"
    assert (await stranger.request("packet.detail", rp_id=rp_id))["code"] == "forbidden"
    await c.request("packet.grab", rp_id=rp_id)
    late = await a.request("packet.grab", rp_id=rp_id)
    assert late == {"re": late["re"], "ok": True, "result": "too_slow"}
    finished = await a.request("packet.detail", rp_id=rp_id)
    assert finished["packet"]["status"] == "finished" and "expend_time" in finished["packet"]
    assert [g["user"]["id"] for g in finished["grabs"]] == [carol, bob]  # newest first

    sent = await a.request("packet.list", box="sent")
    assert (sent["count"], sent["total"], sent["next"]) == (1, "2.00", None)
    assert sent["items"][0]["rp_id"] == rp_id
    received = await b.request("packet.list", box="received")
    assert (received["count"], received["total"]) == (1, got["money"])
    assert received["items"][0]["money"] == got["money"]
    assert received["best_luck"] == int(received["items"][0]["is_good"])
    nothing = await b.request("packet.list", box="received", year=2001)
    assert (nothing["count"], nothing["items"], nothing["total"]) == (0, [], "0.00")
    audit()


@pytest.mark.gen_test
async def test_packet_list_pages_with_its_cursor(admin, connect, audit):
    gid, users, clients = await group_with(admin, connect, 2, "10.00")
    sent_ids = [await create_and_pay(clients[0], type=2, for_id=gid, number=1, amount="0.10")
                for _ in range(5)]
    for rp_id in sent_ids:
        await clients[1].request("packet.grab", rp_id=rp_id)
    for box, client in (("sent", clients[0]), ("received", clients[1])):
        seen, cursor = [], None
        while True:
            page = await client.request("packet.list", box=box, limit=2,
                                        **({"before": cursor} if cursor else {}))
            seen += [item["rp_id"] for item in page["items"]]
            assert page["count"] == 5 and page["total"] == "0.50"
            cursor = page["next"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(sent_ids) and len(seen) == 5, box
    bad = await clients[0].request("packet.list", box="sent", before="x.y")
    assert bad["code"] == "bad_request"
    audit()


@pytest.mark.gen_test
async def test_chat_send_and_history_catch_a_client_up(admin, connect, audit):
    gid, (alice, bob, carol), (a, b, c) = await group_with(admin, connect, 3, "5.00")
    stranger = await connect(await admin.user())
    sent = await a.request("chat.send", to_type="group", to_id=gid, text="大家好")
    assert sent["message"]["text"] == "大家好" and sent["message"]["kind"] == "text"
    heard = await c.event("message")
    assert heard["message"] == sent["message"]
    rp_id = await create_and_pay(b, type=3, for_id=gid, number=2, amount="1.00")
    await a.request("chat.send", to_type="user", to_id=bob, text="hi bob")
    assert (await b.event("message", timeout=5))  # bob hears the group and the 1:1
    assert not any(m["message"]["to_type"] == "user" for m in c.named("message"))
    history = await c.request("chat.history", to_type="group", to_id=gid)
    kinds = [(m["kind"], m.get("packet", {}).get("rp_id")) for m in history["messages"]]
    assert kinds == [("text", None), ("packet", rp_id)]
    page = await c.request("chat.history", to_type="group", to_id=gid,
                           before=history["messages"][1]["id"], limit=1)
    assert [m["text"] for m in page["messages"]] == ["大家好"]
    dm = await b.request("chat.history", to_type="user", to_id=alice)
    assert [m["text"] for m in dm["messages"]] == ["hi bob"]
    assert (await stranger.request("chat.history", to_type="group", to_id=gid))["code"] == \
        "forbidden"
    assert (await stranger.request("chat.send", to_type="group", to_id=gid,
                                   text="spam"))["code"] == "forbidden"
    assert (await a.request("chat.send", to_type="group", to_id=gid, text="   "))["code"] == \
        "bad_request"
    audit()


@pytest.mark.gen_test
async def test_a_grab_taken_but_not_written_is_completed_by_the_retry(admin, connect, ctx, audit):
    gid, users, clients = await group_with(admin, connect, 2, "2.00")
    rp_id = await create_and_pay(clients[0], type=2, for_id=gid, number=2, amount="0.50")
    # The first request took its slot in Redis and died before writing its share.
    assert (await ctx.taker.take(rp_id, users[1])).outcome == slots.WON
    retry = await clients[1].request("packet.grab", rp_id=rp_id)
    assert (retry["result"], retry["money"], retry["into_account"]) == ("ok", "0.50", True)
    assert (await clients[1].request("wallet.get"))["balance"] == "2.50"
    assert (await clients[1].request("packet.grab", rp_id=rp_id))["result"] == "already"
    audit()


@pytest.mark.gen_test
async def test_too_slow_after_the_finish_is_answered_by_the_node_alone(admin, connect, ctx,
                                                                      monkeypatch, audit):
    """Most of a big group taps once the last share is gone: their 手慢了 costs no Redis call,
    and MariaDB one query per packet on each node (who holds what, final once it is paid and
    finished); the packet and its group's members come from this node's caches."""
    gid, users, clients = await group_with(admin, connect, 8, "1.00")
    rp_id = await create_and_pay(clients[0], type=2, for_id=gid, number=2, amount="0.50")
    first = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients))
    losers = [c for c, r in zip(clients, first) if r["result"] == "too_slow"]
    winners = [(c, r["money"]) for c, r in zip(clients, first) if r["result"] == "ok"]
    assert len(losers) == 6
    await clients[0].event("packet.state", rp_id=rp_id, status="finished")
    # Counted on their way to the real MariaDB pool and Redis client, which still serve them.
    sql = calls_of(monkeypatch, ctx.db.pool, "acquire")
    redis_calls = calls_of(monkeypatch, ctx.redis, "execute_command")
    for _ in range(2):
        again = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id)
                                       for _ in range(5) for c in losers))
        assert {r["result"] for r in again} == {"too_slow"}
        held = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c, _ in winners))
        assert [(r["result"], r["money"]) for r in held] == [("already", m) for _, m in winners]
    assert len(sql) == 1 and redis_calls == []
    audit()


@pytest.mark.gen_test
async def test_a_grab_racing_the_payment_is_never_told_expired(admin, connect, ctx,
                                                               monkeypatch, audit):
    """The packet is paid between the grab's look for its slots (not yet: unpaid) and its
    look at the database (paid): the grab goes on and wins, it is not told `expired`."""
    gid, (alice, bob), (a, b) = await group_with(admin, connect, 2, "10.00")
    created = await a.request("packet.create", type=2, for_id=gid, number=1, amount="1.00",
                              pay_type="balance")
    real = grab.load_slots

    async def paid_just_after(ctx_, rp_id):
        found = await real(ctx_, rp_id)
        if found is None and not paid:
            paid.append(await a.request("packet.pay", rp_id=rp_id))  # the commit lands now
        return found

    paid = []
    monkeypatch.setattr(grab, "load_slots", paid_just_after)
    got = await b.request("packet.grab", rp_id=created["rp_id"])
    assert paid and paid[0]["ok"], "the payment landed in between"
    assert (got["result"], got["money"]) == ("ok", "1.00")
    audit()
