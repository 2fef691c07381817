"""Two `rtserver serve` processes sharing this run's database and Redis (docs/protocol.md, "Command line"):
every event reaches every connection of its room or user on every node exactly once, whichever
node caused it; a storm split over both nodes pays exactly; one user on both nodes holds one
share; a node killed outright sends the other nodes' clients to catch up; the jobs inline on
both nodes refund once and say so once; the storm on a Redis Cluster.

"Exactly once" is checked after a barrier: a chat message sent last and awaited on every
connection. Every event travels the one events channel, and a request is answered only after its
events were published, so once the barrier arrives everything published before it has too. (On
a Redis Cluster every PUBLISH of the channel goes to the master owning its hash slot, once the
client knows the slots, which `/healthz` makes it learn; the cluster bus keeps their order.)
"""
import asyncio
import dataclasses
import secrets

import pytest

from rtserver.bus import BEAT_EVERY, BEAT_LASTS_MS
from rtserver.money import format_fen
from tests.client import Admin, Client
from tests.conftest import IDS
from tests.processes import Server
from tests.test_packets import cents, create_and_pay
from tools import cluster

JOBS = ("--jobs=inline", "--job-interval=0.2")  # after Server's --jobs=off: the last one wins
TTL = 2  # seconds; fixed at payment by the paying node's --packet-ttl


async def two_nodes(children, settings, *args: str) -> tuple[Server, Server, Admin]:
    """Nodes A and B on this run's database and Redis, and the admin API of A."""
    nodes = [children.server(settings, *args) for _ in range(2)]
    await asyncio.gather(*(node.until_healthy() for node in nodes))
    return nodes[0], nodes[1], Admin(nodes[0].base_url, settings.admin_token, IDS)


async def barrier(speaker: Client, gid: int, listeners: list[Client]) -> None:
    """Send a chat message to the group and wait until every listener has heard it."""
    said = await speaker.request("chat.send", to_type="group", to_id=gid,
                                 text=f"barrier {secrets.token_hex(4)}")
    for client in listeners:
        await client.event("message", message=said["message"])


async def packet_message(client: Client, rp_id: int) -> dict:
    """The room's `message` event that carries packet `rp_id` (the other messages are left)."""
    event = await client.event("message", where=lambda e: e["message"]["kind"] == "packet"
                               and e["message"]["packet"]["rp_id"] == rp_id)
    return event["message"]


async def deposit(admin: Admin, uid: int, amount: str, *connections: Client) -> None:
    """Deposit through the admin API and wait for its `wallet` event on the user's connections
    (a deposit made before connecting might be heard after, published as it was before)."""
    balance = await admin.deposit(uid, amount)
    for client in connections:
        await client.event("wallet", balance=balance)


def notices_heard(client: Client) -> list[str]:
    """The texts of the notices a connection heard (each its user's alone), consumed."""
    heard = [e for e in client.named("message") if e["message"]["kind"] == "notice"]
    for event in heard:
        client.events.remove(event)
    return [event["message"]["text"] for event in heard]


def left_over(*clients: Client) -> list[list[dict]]:
    return [client.events for client in clients]


@pytest.mark.gen_test
async def test_chat_packets_and_membership_across_nodes(settings, children, dial, audit):
    a, b, admin = await two_nodes(children, settings)
    alice, bob, carol, dave = await admin.users(4)
    gid = await admin.group([alice, bob, carol])
    al = await dial(a.base_url, alice)
    bo, ca, da = [await dial(b.base_url, uid) for uid in (bob, carol, dave)]
    await deposit(admin, bob, "10.00", bo)

    # A chat message sent on A reaches the members on A and on B, and nobody else.
    said = await al.request("chat.send", to_type="group", to_id=gid, text="大家好")
    for client in (al, bo, ca):
        await client.event("message", message=said["message"])

    # A packet paid on B appears on A; bob's wallet event reaches him on B.
    rp_id = await create_and_pay(bo, type=3, for_id=gid, number=2, amount="2.00")
    for client in (al, bo, ca):
        assert (await packet_message(client, rp_id))["from"]["id"] == bob
    assert (await bo.event("wallet"))["balance"] == "8.00"

    # Alice grabs on A: her share and wallet on A, "alice took your packet" to bob on B.
    got_a = await al.request("packet.grab", rp_id=rp_id)
    assert got_a["result"] == "ok"
    mine = await al.event("packet.grabbed", rp_id=rp_id)
    assert (mine["money"], mine["last"]) == (got_a["money"], False)
    assert (await al.event("wallet"))["balance"] == got_a["money"]
    told = await bo.event("packet.grabbed", rp_id=rp_id)
    assert told["grabber"]["id"] == alice and "money" not in told
    # Carol takes the last share on B: alice on A hears the packet is finished.
    got_c = await ca.request("packet.grab", rp_id=rp_id)
    assert got_c["result"] == "ok" and cents(got_a["money"]) + cents(got_c["money"]) == 200
    assert (await ca.event("packet.grabbed", rp_id=rp_id))["last"] is True
    assert (await ca.event("wallet"))["balance"] == got_c["money"]
    assert (await bo.event("packet.grabbed", rp_id=rp_id))["grabber"]["id"] == carol
    best = max(got_a["money"], got_c["money"], key=cents)
    for client in (al, bo, ca):
        state = await client.event("packet.state", rp_id=rp_id)
        assert (state["status"], state["best"]["money"]) == ("finished", best)

    # A deposit through A's admin API reaches bob's wallet on B.
    await admin.deposit(bob, "5.00")
    assert (await bo.event("wallet"))["balance"] == "13.00"

    # Dave is added through A: his connection on B joins the room, B's member cache follows.
    status, body = await admin.call("POST", f"/admin/groups/{gid}/members", {"user_ids": [dave]})
    assert status == 200 and dave in body["members"]
    said = await al.request("chat.send", to_type="group", to_id=gid, text="欢迎 dave")
    for client in (al, bo, ca, da):
        await client.event("message", message=said["message"])
    # Carol is removed through A: her connection on B leaves the room.
    status, _ = await admin.call("DELETE", f"/admin/groups/{gid}/members/{carol}")
    assert status == 200
    rp_id = await create_and_pay(bo, type=2, for_id=gid, number=2, amount="1.00")
    for client in (al, bo, da):
        await packet_message(client, rp_id)
    assert (await bo.event("wallet"))["balance"] == "11.00"
    refused = await ca.request("packet.grab", rp_id=rp_id)
    assert (refused["ok"], refused["code"]) == (False, "forbidden")
    got_d = await da.request("packet.grab", rp_id=rp_id)
    assert (got_d["result"], got_d["money"]) == ("ok", "1.00")
    assert (await da.event("packet.grabbed", rp_id=rp_id))["money"] == "1.00"
    assert (await da.event("wallet"))["balance"] == "1.00"
    assert (await bo.event("packet.grabbed", rp_id=rp_id))["grabber"]["id"] == dave

    # Nothing twice, nothing more: carol's own events still come (a deposit), the group's don't.
    await barrier(al, gid, [al, bo, da])
    await admin.deposit(carol, "1.00")
    assert (await ca.event("wallet"))["balance"] == format_fen(cents(got_c["money"]) + 100)
    # Each notice reached its own user once, on whichever node they are.
    assert notices_heard(bo) == [f"user{alice}领取了你的红包", f"user{carol}领取了你的红包",
                                 "你的红包已被领完", f"user{dave}领取了你的红包"]
    assert [notices_heard(client) for client in (al, ca, da)] == [[f"你领取了user{bob}的红包"]] * 3
    assert left_over(al, bo, ca, da) == [[], [], [], []]
    audit()


async def storm(a: Server, b: Server, admin: Admin, dial, number: int = 10) -> None:
    """24 members, alternately on A and B, grab one lucky packet at once: exactly `number` win,
    the shares add up, every wallet is right and every connection hears the end once."""
    users = await admin.users(24)
    gid = await admin.group(users)
    clients = await asyncio.gather(*(dial((a, b)[i % 2].base_url, uid)
                                     for i, uid in enumerate(users)))
    await asyncio.gather(*(deposit(admin, uid, "1.00", c) for uid, c in zip(users, clients)))
    sender = clients[0]
    await deposit(admin, users[0], "20.00", sender)
    rp_id = await create_and_pay(sender, type=3, for_id=gid, number=number, amount="20.00")
    replies = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients))

    assert sorted(r["result"] for r in replies) == ["ok"] * number + ["too_slow"] * (24 - number)
    won = {i: cents(r["money"]) for i, r in enumerate(replies) if r["result"] == "ok"}
    assert sum(won.values()) == 2000 and all(fen >= 1 for fen in won.values())
    balances = await asyncio.gather(*(c.request("wallet.get") for c in clients))
    assert [cents(r["balance"]) for r in balances] == [100 + won.get(i, 0)
                                                      for i in range(len(clients))]
    # The last share may be booked on the other node a moment after the last slot was taken
    # here: the room hears the packet is finished, and the detail says so from then on.
    best = format_fen(max(won.values()))
    for client in clients:
        state = await client.event("packet.state", rp_id=rp_id)
        assert (state["status"], state["best"]["money"]) == ("finished", best)
    # Taps once it is finished, on either node: answered from who holds what, as it stays.
    again = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients))
    assert [(r["result"], r.get("money"), r.get("into_account")) for r in again] == \
        [("already", format_fen(won[i]), True) if i in won else ("too_slow", None, None)
         for i in range(len(clients))]
    detail = await clients[1].request("packet.detail", rp_id=rp_id)
    assert (detail["packet"]["status"], detail["packet"]["grabbed_total"]) == ("finished", "20.00")
    assert {g["user"]["id"]: cents(g["money"]) for g in detail["grabs"]} == \
        {users[i]: fen for i, fen in won.items()}
    assert [cents(g["money"]) for g in detail["grabs"] if g["is_good"]] == [max(won.values())]
    await barrier(sender, gid, clients)
    for i, client in enumerate(clients):
        assert client.named("packet.state") == []
        wallet = [cents(e["balance"]) for e in client.named("wallet")]
        paid = [100] if i == 0 else []  # the sender's balance after paying 20.00 of 21.00
        assert wallet == paid + ([100 + won[i]] if i in won else []), (i, wallet)
        grabbed = client.named("packet.grabbed")
        mine = [(e["grabber"]["id"], e.get("money")) for e in grabbed if e["grabber"]["id"] == users[i]]
        assert mine == ([(users[i], format_fen(won[i]))] if i in won else [])
    told = sorted(e["grabber"]["id"] for e in sender.named("packet.grabbed")
                  if "money" not in e)
    assert told == sorted(users[i] for i in won if i != 0), "the sender hears every grab once"


@pytest.mark.gen_test
async def test_storm_split_over_two_nodes_pays_exactly(settings, children, dial, audit):
    a, b, admin = await two_nodes(children, settings)
    await storm(a, b, admin, dial)
    audit()


@pytest.mark.gen_test
async def test_one_user_on_both_nodes_holds_one_share(settings, children, dial, audit):
    a, b, admin = await two_nodes(children, settings)
    sender, user, other = await admin.users(3)
    gid = await admin.group([sender, user, other])
    sc = await dial(a.base_url, sender)
    await deposit(admin, sender, "10.00", sc)
    on_a, on_b = await dial(a.base_url, user), await dial(b.base_url, user)
    balance = 0
    for _ in range(5):  # several rounds: the two grabs meet in different orders
        rp_id = await create_and_pay(sc, type=3, for_id=gid, number=2, amount="1.00")
        got = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in (on_a, on_b)))
        assert sorted(r["result"] for r in got) == ["already", "ok"], got
        assert got[0]["money"] == got[1]["money"] and got[0]["into_account"] is True
        balance += cents(got[0]["money"])
        for client in (on_a, on_b):
            assert (await client.event("wallet"))["balance"] == format_fen(balance)
            assert (await client.event("packet.grabbed", rp_id=rp_id))["money"] == got[0]["money"]
        detail = await on_b.request("packet.detail", rp_id=rp_id)
        assert [g["user"]["id"] for g in detail["grabs"]] == [user]
        assert detail["mine"]["money"] == got[0]["money"]
    await barrier(sc, gid, [sc, on_a, on_b])
    for client in (on_a, on_b):
        assert client.named("wallet") == [] and client.named("packet.grabbed") == []
        assert (await client.request("wallet.get"))["balance"] == format_fen(balance)
    audit()


@pytest.mark.gen_test
async def test_a_node_killed_outright_tells_the_other_nodes_clients_to_catch_up(settings, children,
                                                                              dial):
    # A node killed between a commit and its PUBLISH takes those events with it: the clients
    # elsewhere learn it from its beat lapsing, and fetch what they show again. A roll of their
    # own: the nodes other tests killed on ending lapse too.
    settings = dataclasses.replace(settings, redis_prefix=f"{settings.redis_prefix}alone:")
    nodes = [children.server(settings) for _ in range(3)]
    await asyncio.gather(*(node.until_healthy() for node in nodes))
    stopped, killed, watching = nodes
    admin = Admin(watching.base_url, settings.admin_token, IDS)
    (user,) = await admin.users(1)
    client = await dial(watching.base_url, user)

    assert stopped.terminate() == 0
    await asyncio.sleep(BEAT_LASTS_MS / 1000 + 2 * BEAT_EVERY)
    assert client.named("resync") == [], "a node that stops cleanly leaves nothing unpublished"

    killed.kill()
    await client.event("resync", timeout=BEAT_LASTS_MS / 1000 + 5 * BEAT_EVERY)
    assert (await client.request("wallet.get"))["balance"] == "0.00"


@pytest.mark.gen_test
async def test_expiry_refund_once_with_both_nodes_running_jobs(settings, children, dial, audit):
    a, b, admin = await two_nodes(children, settings, *JOBS, f"--packet-ttl={TTL}")
    sender, grabber, other = await admin.users(3)
    gid = await admin.group([sender, grabber, other])
    on_a, on_b = await dial(a.base_url, sender), await dial(b.base_url, sender)
    await deposit(admin, sender, "10.00", on_a, on_b)
    grabbing = await dial(b.base_url, grabber)
    # Expiry counts whole seconds from the second of payment: grab before paying the others.
    rp_ids = [await create_and_pay(on_a, type=3, for_id=gid, number=3, amount="3.00")]
    got = await grabbing.request("packet.grab", rp_id=rp_ids[0])
    assert got["result"] == "ok", got
    rp_ids += [await create_and_pay(on_a, type=3, for_id=gid, number=3, amount="3.00")
               for _ in range(2)]
    returned = {rp_id: 300 for rp_id in rp_ids}
    returned[rp_ids[0]] -= cents(got["money"])
    final = 1000 - 900 + sum(returned.values())

    for client in (on_a, on_b):
        for rp_id in rp_ids:
            refunded = await client.event("packet.refunded", rp_id=rp_id, timeout=TTL + 8)
            assert refunded["return_money"] == format_fen(returned[rp_id])
    await asyncio.sleep(1)  # five more sweeps on each node
    await barrier(on_a, gid, [on_a, on_b, grabbing])
    for client in (on_a, on_b):
        assert client.named("packet.refunded") == []
        wallet = [e["balance"] for e in client.named("wallet")]
        assert wallet[:3] == ["7.00", "4.00", "1.00"] and len(wallet) == 6, wallet
        assert wallet[-1] == format_fen(final)
        assert (await client.request("wallet.get"))["balance"] == format_fen(final)
    for client in (on_a, on_b, grabbing):
        expired = sorted(e["rp_id"] for e in client.named("packet.state")
                         if e["status"] == "expired")
        assert expired == sorted(rp_ids)
    detail = await on_b.request("packet.detail", rp_id=rp_ids[0])
    assert detail["packet"]["status"] == "expired"
    assert detail["packet"]["return_money"] == format_fen(returned[rp_ids[0]])
    audit()


@pytest.fixture
def cluster_url(tmp_path):
    folder = tmp_path / "redis-cluster"
    url = cluster.up(folder)
    yield url
    cluster.down(folder)


@pytest.mark.gen_test
async def test_storm_over_two_nodes_on_a_redis_cluster(settings, cluster_url, children, dial,
                                                       audit):
    settings = dataclasses.replace(settings, redis_url=cluster_url, redis_cluster=True)
    a, b, admin = await two_nodes(children, settings, "--redis-cluster",
                                  f"--redis-url={cluster_url}")
    await storm(a, b, admin, dial)
    audit()
