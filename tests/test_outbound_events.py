"""Outbound events (--events-url): the chat app's back end hears of every committed change to a
packet, at least once, signed, whatever its receiver does; a grab never waits for it."""
import asyncio
import dataclasses
import json

import pytest
import tornado.httpclient

from jobs.outbound import Delivery
from rtserver import outbound, payments, refund
from rtserver.uow import UnitOfWork
from storage.schema import EventState
from tests.client import Admin
from tests.conftest import IDS
from tests.receiver import Receiver
from tests.test_packets import cents, create_and_pay, group_with
from tests.test_payments import notify, sandbox_note, settle_all, third_party_packet

SECRET = "test-events-secret"
TIMEOUT = 0.5  # --events-timeout here: a receiver that hangs costs the tests half a second


@pytest.fixture
def receiver(io_loop):
    r = Receiver(SECRET).start()
    yield r
    r.stop()


@pytest.fixture
def settings(run_settings, receiver, request):
    flags = {"events_url": receiver.url, "events_secret": SECRET, "events_timeout": TIMEOUT,
             "packet_ttl": 3, **getattr(request, "param", {})}
    return dataclasses.replace(run_settings, **flags)


@pytest.fixture
def delivery(ctx, io_loop):
    """The delivery job, as every serving node runs it."""
    job = Delivery(ctx)
    job.start()
    yield job
    io_loop.run_sync(job.stop)


async def rows_of(ctx, rp_id: int) -> list[dict]:
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT id, type, state, tries FROM outbound_events WHERE rp_id = %s"
                          " ORDER BY id", [rp_id])
        return list(await cur.fetchall())


async def until_states(ctx, rp_id: int, states: list[EventState], seconds: int = 5) -> list[dict]:
    """Wait until the packet's outbound events are in these states, in order."""
    for _ in range(seconds * 10):
        rows = await rows_of(ctx, rp_id)
        if [r["state"] for r in rows] == states:
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"events of packet {rp_id}: {rows}, not {states}")


async def admin_get(base_url: str, settings, path: str) -> tuple[int, dict]:
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + path, headers={"Authorization": f"Bearer {settings.admin_token}"},
        raise_error=False)
    return response.code, json.loads(response.body)


def test_retries_start_within_five_seconds_and_double_up_to_ten_minutes():
    delays = [outbound.retry_delay_ms(tries, 0.0) for tries in range(1, 12)]
    assert delays[:4] == [4_000, 8_000, 16_000, 32_000]
    assert delays[-1] == 600_000 and max(delays) == 600_000
    assert outbound.retry_delay_ms(1, 0.999) > 3_000, "jitter takes at most a quarter"
    assert outbound.retry_delay_ms(10_000, 0.5) == 525_000, "no overflow after many tries"


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"id":"7","type":"packet.voided","time":1,"data":{"rp_id":3}}'
    assert Receiver(SECRET).signed_by_us("1700000000", body,
                                         outbound.signature(SECRET, "1700000000", body))
    assert not Receiver("another secret").signed_by_us(
        "1700000000", body, outbound.signature(SECRET, "1700000000", body))


@pytest.mark.gen_test(timeout=60)
async def test_a_lucky_packet_told_from_sent_to_finished_and_refunded(
        admin, connect, ctx, receiver, delivery, audit):
    gid, users, clients = await group_with(admin, connect, 4, "10.00")
    rp_id = await create_and_pay(clients[0], type=3, for_id=gid, number=3, amount="3.00")
    grabs = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients[1:]))
    await receiver.until(lambda: receiver.of("packet.finished", rp_id=rp_id))
    sent, = receiver.of("packet.sent", rp_id=rp_id)
    assert (sent["data"]["to_type"], sent["data"]["to_id"]) == ("group", gid)
    assert (sent["data"]["packet"]["total"], sent["data"]["packet"]["number"]) == ("3.00", 3)
    grabbed = receiver.of("packet.grabbed", rp_id=rp_id)
    assert sorted((e["data"]["grabber"]["id"], e["data"]["money"]) for e in grabbed) == \
        sorted((uid, g["money"]) for uid, g in zip(users[1:], grabs))
    assert all(e["data"]["sender"]["id"] == users[0] for e in grabbed)
    finished, = receiver.of("packet.finished", rp_id=rp_id)
    assert finished["data"]["best"]["money"] == max((g["money"] for g in grabs), key=cents)
    assert len({e["id"] for e in receiver.accepted}) == len(receiver.accepted), "ids are unique"
    assert all(isinstance(e["time"], int) for e in receiver.accepted)

    left = await create_and_pay(clients[0], type=2, for_id=gid, number=3, amount="0.01")
    await clients[1].request("packet.grab", rp_id=left)
    await asyncio.sleep(ctx.settings.packet_ttl + 1.1)
    assert await refund.refund_expired(ctx) >= 1
    await receiver.until(lambda: receiver.of("packet.refunded", rp_id=left))
    assert receiver.of("packet.refunded", rp_id=left)[0]["data"] == \
        {"rp_id": left, "return_money": "0.02", "to": "balance"}
    assert not receiver.forged
    await until_states(ctx, rp_id, [EventState.DELIVERED] * 5)  # sent, 3 grabbed, finished
    audit()


@pytest.mark.gen_test(timeout=60)
async def test_settled_and_voided_packets_of_a_provider_payment(
        admin, connect, ctx, base_url, providers, receiver, delivery, audit):
    gid, users, clients = await group_with(admin, connect, 3, "1.00")
    created = await third_party_packet(clients[0], gid, number=2, amount="2.00")
    rp_id = created["rp_id"]
    await clients[0].request("packet.sync_paid", rp_id=rp_id, result={"resultStatus": "9000"})
    got = await clients[1].request("packet.grab", rp_id=rp_id)
    assert await notify(base_url, "sandbox", sandbox_note(providers, created)) == (204, "")
    await settle_all(ctx)
    await receiver.until(lambda: receiver.of("packet.settled", rp_id=rp_id))
    settled, = receiver.of("packet.settled", rp_id=rp_id)
    assert settled["data"]["money"] == got["money"]
    assert settled["data"]["grabber"]["id"] == users[1]

    unpaid = (await third_party_packet(clients[0], gid, number=2, amount="2.00"))["rp_id"]
    await clients[0].request("packet.sync_paid", rp_id=unpaid, result={})
    await clients[2].request("packet.grab", rp_id=unpaid)
    soon = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings,
                                                                 payment_timeout=-1))
    assert await payments.void_overdue(soon) >= 1
    await receiver.until(lambda: receiver.of("packet.voided", rp_id=unpaid))
    assert receiver.of("packet.voided", rp_id=unpaid)[0]["data"]["grabbed_count"] == 1
    audit()


@pytest.mark.gen_test(timeout=60)
async def test_a_failing_receiver_gets_the_same_event_again_until_it_takes_it(
        admin, connect, ctx, receiver, delivery, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    receiver.misbehave("fail")
    rp_id = await create_and_pay(clients[0], type=2, for_id=gid, number=1, amount="0.01")
    await receiver.until(lambda: receiver.tries_of(rp_id))
    assert not receiver.accepted
    receiver.misbehave("ok")
    await receiver.until(lambda: receiver.of("packet.sent", rp_id=rp_id), timeout=10)
    sent, = receiver.of("packet.sent", rp_id=rp_id)
    assert set(receiver.tries_of(rp_id)) == {sent["id"]}, "every try had the same id"
    rows = await until_states(ctx, rp_id, [EventState.DELIVERED])
    assert rows[0]["tries"] == len(receiver.tries_of(rp_id))
    audit()


@pytest.mark.gen_test(timeout=60)
async def test_an_answer_later_than_the_timeout_is_sent_again(
        admin, connect, ctx, receiver, delivery, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    receiver.misbehave("late", delay=TIMEOUT * 3)
    rp_id = await create_and_pay(clients[0], type=2, for_id=gid, number=1, amount="0.01")
    await receiver.until(lambda: len(receiver.tries_of(rp_id)) >= 2, timeout=15)
    receiver.misbehave("ok")
    await until_states(ctx, rp_id, [EventState.DELIVERED], seconds=15)  # the 3rd try, 8 s on
    await receiver.until(lambda: len(receiver.of("packet.sent", rp_id=rp_id)) >= 2)
    assert len({e["id"] for e in receiver.of("packet.sent", rp_id=rp_id)}) == 1, \
        "the late answer's event and its retry are one event: a back end deduplicates by id"
    audit()


@pytest.mark.gen_test(timeout=90)
async def test_a_hanging_receiver_never_holds_up_a_storm_of_grabs(
        admin, connect, ctx, receiver, delivery, audit):
    """Thirty members grab at once while every POST hangs: each grab is answered and every
    fen is where it should be; the events all arrive once the receiver answers again."""
    gid, users, clients = await group_with(admin, connect, 31, "1.00")
    receiver.misbehave("hang")
    rp_id = await create_and_pay(clients[0], type=3, for_id=gid, number=20, amount="1.00")
    grabs = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id) for c in clients[1:]))
    won = [g for g in grabs if g["result"] == "ok"]
    assert len(won) == 20 and sum(cents(g["money"]) for g in won) == 100
    assert {g["result"] for g in grabs} == {"ok", "too_slow"}
    assert not receiver.accepted, "the receiver hung all along"
    receiver.misbehave("ok")

    def grabbers() -> set[int]:
        return {e["data"]["grabber"]["id"] for e in receiver.of("packet.grabbed", rp_id=rp_id)}
    # Each retry has its own jitter, so the events come back in no particular order.
    await receiver.until(lambda: receiver.of("packet.finished", rp_id=rp_id)
                         and len(grabbers()) == 20, timeout=30)
    assert grabbers() == {uid for uid, g in zip(users[1:], grabs) if g["result"] == "ok"}
    audit()


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"events_retry_for": 1}], indirect=True)
async def test_undelivered_events_fail_and_are_replayed_with_their_ids(
        admin, connect, ctx, base_url, settings, receiver, delivery, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    receiver.misbehave("fail")
    rp_id = await create_and_pay(clients[0], type=2, for_id=gid, number=1, amount="0.01")
    await until_states(ctx, rp_id, [EventState.FAILED])
    status, listed = await admin_get(base_url, settings, "/admin/events?state=failed&limit=500")
    failed = [e for e in listed["events"] if e["data"]["rp_id"] == rp_id]
    assert status == 200 and [(e["type"], e["state"]) for e in failed] == [("packet.sent",
                                                                            "failed")]
    assert failed[0]["last_error"] == "HTTP 503"
    await outbound.tidy(ctx)
    assert outbound.FAILED._value.get() >= 1, "the metric counts it"
    receiver.misbehave("ok")
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + "/admin/events/replay", method="POST",
        headers={"Authorization": f"Bearer {settings.admin_token}"},
        body=json.dumps({"ids": [failed[0]["id"]]}))
    assert json.loads(response.body) == {"replayed": 1}
    await receiver.until(lambda: receiver.of("packet.sent", rp_id=rp_id), timeout=10)
    assert receiver.of("packet.sent", rp_id=rp_id)[0]["id"] == failed[0]["id"]
    status, listed = await admin_get(base_url, settings, "/admin/events?state=failed&limit=500")
    assert not [e for e in listed["events"] if e["data"]["rp_id"] == rp_id]
    audit()


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"events_timeout": 2.0}], indirect=True)
async def test_a_slow_receiver_gets_a_backlog_each_event_on_its_first_try(
        ctx, settings, receiver, delivery):
    """More events than POSTs in flight (a round is four times as many), each answered a while
    after the last: the ones waiting their turn never use up their time-out waiting. (A third
    turn's wait would; the answer comes well within the time-out, so a busy machine does not.)"""
    receiver.misbehave("late", delay=settings.events_timeout * 0.4)
    backlog = range(10_000_000, 10_000_000 + outbound.ROUND + 40)
    async with UnitOfWork(ctx) as uow:
        for rp_id in backlog:
            uow.send_out("packet.voided", {"rp_id": rp_id, "grabbed_count": 0})
        await uow.commit()
    await receiver.until(lambda: len(receiver.of("packet.voided")) >= len(backlog), timeout=30)
    assert sorted(e["data"]["rp_id"] for e in receiver.of("packet.voided")) == list(backlog)
    for _ in range(50):
        async with ctx.db.cursor() as cur:
            await cur.execute("SELECT state, MAX(tries) AS most, COUNT(*) AS n FROM"
                              " outbound_events WHERE rp_id >= %s GROUP BY state", [backlog[0]])
            states = {row["state"]: (row["n"], row["most"]) for row in await cur.fetchall()}
        if states.get(EventState.DELIVERED, (0,))[0] == len(backlog):
            break
        await asyncio.sleep(0.1)
    assert states == {EventState.DELIVERED: (len(backlog), 1)}, "each on its first try"


@pytest.mark.gen_test
async def test_admin_events_refuses_what_it_cannot_read(base_url, settings, http_server):
    for query in ("state=lost", "limit=0", "limit=501", "after=01", "after=x"):
        status, body = await admin_get(base_url, settings, "/admin/events?" + query)
        assert (status, body["code"]) == (400, "bad_request"), query
    for body in ({"ids": []}, {"ids": ["x"]}, {"ids": [7]}, {"ids": ["01"]}, {"ids": "7"},
                 {"id": ["7"]}):
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            base_url + "/admin/events/replay", method="POST", raise_error=False,
            headers={"Authorization": f"Bearer {settings.admin_token}"}, body=json.dumps(body))
        assert response.code == 400, body


@pytest.mark.gen_test
async def test_no_event_for_money_the_database_refused(admin, connect, ctx, receiver, delivery):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await clients[0].request("packet.create", type=2, for_id=gid, number=1,
                                       amount="5.00", pay_type="balance")
    paid = await clients[0].request("packet.pay", rp_id=created["rp_id"])
    assert paid["code"] == "insufficient_balance"
    assert await rows_of(ctx, created["rp_id"]) == []


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"events_url": ""}], indirect=True)
async def test_without_an_events_url_nothing_is_kept(admin, connect, ctx):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    rp_id = await create_and_pay(clients[0], type=2, for_id=gid, number=1, amount="0.01")
    assert (await clients[1].request("packet.grab", rp_id=rp_id))["result"] == "ok"
    assert await rows_of(ctx, rp_id) == []


@pytest.mark.gen_test(timeout=60)
async def test_a_node_killed_mid_delivery_leaves_its_events_to_another(
        settings, children, dial, receiver, audit):
    """Node A commits a packet and is killed -9 while its POST hangs; the jobs process, a node
    too, sends the event once A's claim has run out."""
    flags = (f"--events-url={receiver.url}", f"--events-secret={SECRET}",
             f"--events-timeout={TIMEOUT}")
    node = children.server(settings, *flags)
    await node.until_healthy()
    admin = Admin(node.base_url, settings.admin_token, IDS)
    users = await admin.users(2)
    gid = await admin.group(users)
    await admin.deposit(users[0], "1.00")
    receiver.misbehave("hang")
    sender = await dial(node.base_url, users[0])
    rp_id = await create_and_pay(sender, type=2, for_id=gid, number=1, amount="0.01")
    await receiver.until(lambda: receiver.tries_of(rp_id))
    node.kill()
    receiver.misbehave("ok")
    children.rtserver(settings, "jobs", *flags)
    await receiver.until(lambda: receiver.of("packet.sent", rp_id=rp_id), timeout=20)
    tried = receiver.tries_of(rp_id)
    assert len(tried) >= 2 and set(tried) == {receiver.of("packet.sent", rp_id=rp_id)[0]["id"]}
    audit()
