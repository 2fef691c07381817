"""The payment password (支付密码): its rules, setting and changing it, paying with it, the lock
after five wrong tries, storms of tries from many sockets, and the PIN kept out of every log."""
import asyncio
import logging
import re
import secrets
import threading
import time

import hypothesis
import hypothesis.strategies as st
import pytest

from rtserver.errors import BadRequest
from rtserver.pin_hash import CURRENT, Params, PinHasher, hash_pin, parse_pin, pin_matches
from rtserver.pins import MAX_WRONG
from rtserver.uow import UnitOfWork
from storage import pins
from storage.db import to_fen
from tests.test_packets import cents

RIGHT, WRONG, NEW = "482915", "000000", "736041"
# What a PIN is not: other lengths, other digits, other types, huge numbers.
MALFORMED = ["", "48291", "4829150", "48291a", " 482915", "482915\n", "４８２９１５", "٤٨٢٩١٥",
             482915, 4829150000000000000000, -1, 48291.5, True, ["4", "8", "2", "9", "1", "5"],
             {"pin": RIGHT}, b"482915"]


# The rules, without a server

def test_a_pin_is_a_string_of_six_ascii_digits():
    assert parse_pin("000000") == "000000" and parse_pin(RIGHT) == RIGHT
    messages = set()
    for value in MALFORMED:
        with pytest.raises(BadRequest) as refused:
            parse_pin(value)
        messages.add(refused.value.message)
    assert len(messages) == 1 and RIGHT not in messages.pop()  # says nothing of the value


@hypothesis.given(st.text(max_size=8))
def test_any_text_is_a_pin_only_if_it_is_six_of_0_to_9(text):
    try:
        parse_pin(text)
    except BadRequest:
        assert len(text) != 6 or not set(text) <= set("0123456789")
    else:
        assert len(text) == 6 and set(text) <= set("0123456789")


def test_a_hash_is_salted_names_its_parameters_and_knows_only_its_pin():
    first, second = hash_pin(RIGHT), hash_pin(RIGHT)
    assert first != second  # salted
    assert first.startswith("$scrypt$ln=14,r=8,p=1$") and RIGHT not in first
    assert pin_matches(RIGHT, first) and pin_matches(RIGHT, second)
    assert not pin_matches(WRONG, first) and not pin_matches(RIGHT[::-1], first)
    # A hash made with other parameters is checked with its own: they can be raised later.
    cheaper = hash_pin(RIGHT, Params(log_n=10, r=8, p=1))
    assert cheaper.startswith("$scrypt$ln=10,") and CURRENT.log_n == 14
    assert pin_matches(RIGHT, cheaper) and not pin_matches(WRONG, cheaper)


@pytest.mark.gen_test
async def test_the_hasher_works_off_the_event_loop_one_hash_of_a_user_at_a_time():
    hasher = PinHasher(threads=2)
    running, most = {1: 0, 2: 0}, {1: 0, 2: 0}
    lock = threading.Lock()

    def work(user_id):
        with lock:
            running[user_id] += 1
            most[user_id] = max(most[user_id], running[user_id])
            together = sum(running.values())
        time.sleep(0.05)
        with lock:
            running[user_id] -= 1
        return threading.get_ident(), together

    try:
        done = await asyncio.gather(*(hasher.run(uid, work, uid) for uid in (1, 2) * 4))
    finally:
        hasher.close()
    assert threading.get_ident() not in {thread for thread, _ in done}
    assert most == {1: 1, 2: 1}  # each user's one after another...
    assert max(together for _, together in done) == 2  # ...beside the other user's


# Over the socket

async def payer(admin, connect, deposit: str = "100.00"):
    """A user with money in a group with a friend, connected; and a way to make unpaid packets."""
    uid, friend = await admin.users(2)
    gid = await admin.group([uid, friend])
    await admin.deposit(uid, deposit)
    client = await connect(uid)

    async def unpaid(amount: str = "1.00") -> int:
        created = await client.request("packet.create", type=2, for_id=gid, number=1,
                                       amount=amount, pay_type="balance")
        assert created["ok"], created
        return created["rp_id"]
    return uid, client, unpaid


async def with_pin(admin, connect, deposit: str = "100.00"):
    """The payer with RIGHT as their PIN."""
    uid, client, unpaid = await payer(admin, connect, deposit)
    set_pin = await client.request("wallet.set_pin", pin=RIGHT)
    assert set_pin == {"re": set_pin["re"], "ok": True}  # the result is {}
    return uid, client, unpaid


def refused(reply: dict) -> tuple:
    assert reply["ok"] is False and reply["message"], reply
    return reply["code"], reply.get("tries_left"), reply.get("until")


async def wallet_pin(ctx, uid) -> pins.PinRecord | None:
    async with ctx.db.cursor() as cur:
        return await pins.get(cur, uid)


@pytest.mark.gen_test(timeout=30)
async def test_once_set_a_balance_payment_takes_the_pin_and_a_right_one_resets_the_count(
        admin, connect, ctx, audit):
    uid, client, unpaid = await payer(admin, connect)
    assert client.hello["has_pin"] is False
    assert (await client.request("wallet.set_pin", pin=RIGHT))["ok"]
    assert (await connect(uid)).hello["has_pin"] is True

    rp_id = await unpaid("3.00")
    missing = await client.request("packet.pay", rp_id=rp_id)
    assert refused(missing) == ("pin_required", None, None) and missing["has_pin"] is True
    assert refused(await client.request("packet.pay", rp_id=rp_id, pin=WRONG)) == (
        "bad_pin", 4, None)
    assert refused(await client.request("packet.pay", rp_id=rp_id, pin="999999")) == (
        "bad_pin", 3, None)
    assert (await client.request("wallet.get"))["balance"] == "100.00"
    paid = await client.request("packet.pay", rp_id=rp_id, pin=RIGHT)
    assert paid["ok"] and paid["balance"] == "97.00"
    # The right PIN started the count again; a paid packet is refused before any PIN is asked.
    assert refused(await client.request("packet.pay", rp_id=await unpaid(), pin=WRONG)) == (
        "bad_pin", 4, None)
    assert refused(await client.request("packet.pay", rp_id=rp_id, pin=WRONG))[0] == "already_paid"
    assert (await wallet_pin(ctx, uid)).wrong == 1
    audit()


@pytest.mark.gen_test(timeout=30)
async def test_malformed_pins_are_bad_requests_that_change_nothing(admin, connect, ctx, audit):
    uid, client, unpaid = await payer(admin, connect)
    as_json = await connect(uid, "rp.v1.json")

    def carrying(value):  # msgpack carries bytes, JSON integers past 64 bits
        return as_json if type(value) is int and value > 2**63 else client

    for value in MALFORMED:
        reply = await carrying(value).request("wallet.set_pin", pin=value)
        assert refused(reply)[0] == "bad_request", value
    assert await wallet_pin(ctx, uid) is None
    assert (await client.request("wallet.set_pin", pin=RIGHT))["ok"]
    stored = await wallet_pin(ctx, uid)

    rp_id = await unpaid()
    for value in MALFORMED:
        for op, args in (("wallet.set_pin", {"pin": value, "old_pin": RIGHT}),
                         ("wallet.set_pin", {"pin": NEW, "old_pin": value}),
                         ("packet.pay", {"rp_id": rp_id, "pin": value})):
            reply = await carrying(value).request(op, **args)
            assert refused(reply)[0] == "bad_request", (op, value)
    assert await wallet_pin(ctx, uid) == stored  # no try counted, the PIN unchanged
    assert (await client.request("wallet.get"))["balance"] == "100.00"
    assert (await client.request("packet.pay", rp_id=rp_id, pin=RIGHT))["ok"]
    audit()


@pytest.mark.gen_test(timeout=30)
async def test_changing_the_pin_takes_the_old_one_and_a_wrong_one_counts(admin, connect, ctx):
    uid, client, unpaid = await with_pin(admin, connect)
    assert refused(await client.request("wallet.set_pin", pin=NEW))[0] == "pin_required"
    assert refused(await client.request("wallet.set_pin", pin=NEW, old_pin=WRONG)) == (
        "bad_pin", 4, None)
    rp_id = await unpaid()
    assert refused(await client.request("packet.pay", rp_id=rp_id, pin=WRONG)) == (
        "bad_pin", 3, None)
    assert (await client.request("wallet.set_pin", pin=NEW, old_pin=RIGHT))["ok"]
    assert (await wallet_pin(ctx, uid)).wrong == 0
    assert refused(await client.request("packet.pay", rp_id=rp_id, pin=RIGHT)) == (
        "bad_pin", 4, None)
    assert (await client.request("packet.pay", rp_id=rp_id, pin=NEW))["ok"]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"pin_lock": 2}], indirect=True)
async def test_five_wrong_in_a_row_lock_even_the_right_pin_until_then(admin, connect, ctx, audit):
    uid, client, unpaid = await with_pin(admin, connect)
    rp_id = await unpaid()
    for left in (4, 3, 2, 1):
        assert refused(await client.request("packet.pay", rp_id=rp_id, pin=WRONG)) == (
            "bad_pin", left, None)
    before = int(time.time())
    code, _, until = refused(await client.request("packet.pay", rp_id=rp_id, pin=WRONG))
    assert code == "pin_locked" and before + 2 <= until <= int(time.time()) + 2
    assert refused(await client.request("packet.pay", rp_id=rp_id, pin=RIGHT)) == (
        "pin_locked", None, until)
    assert refused(await client.request("wallet.set_pin", pin=NEW, old_pin=RIGHT)) == (
        "pin_locked", None, until)
    assert (await client.request("wallet.get"))["balance"] == "100.00"
    await asyncio.sleep(until - time.time() + 0.05)
    assert refused(await client.request("packet.pay", rp_id=rp_id, pin=WRONG)) == (
        "bad_pin", 4, None)  # a new row of five once the lock is over
    assert (await client.request("packet.pay", rp_id=rp_id, pin=RIGHT))["balance"] == "99.00"
    audit()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"require_pin": True}], indirect=True)
async def test_require_pin_asks_every_balance_payment_but_not_a_providers(admin, connect, audit):
    uid, client, unpaid = await payer(admin, connect)
    rp_id = await unpaid()
    for args in ({}, {"pin": RIGHT}):
        none_yet = await client.request("packet.pay", rp_id=rp_id, **args)
        assert refused(none_yet)[0] == "pin_required" and none_yet["has_pin"] is False
    # A provider's payment is confirmed with the PIN of the provider's own app.
    group = (await client.request("packet.detail", rp_id=rp_id))["packet"]["for_id"]
    third = await client.request("packet.create", type=2, for_id=group, number=1, amount="1.00",
                                 pay_type="sandbox")
    synced = await client.request("packet.sync_paid", rp_id=third["rp_id"], result={})
    assert synced["ok"], synced
    assert (await client.request("wallet.set_pin", pin=RIGHT))["ok"]
    assert (await client.request("packet.pay", rp_id=rp_id, pin=RIGHT))["balance"] == "99.00"
    audit()


@pytest.mark.gen_test(timeout=30)
async def test_the_admin_api_removes_a_pin_and_its_lock(admin, connect, ctx, audit):
    uid, client, unpaid = await with_pin(admin, connect)
    rp_id = await unpaid()
    for _ in range(MAX_WRONG):
        await client.request("packet.pay", rp_id=rp_id, pin=WRONG)
    assert (await wallet_pin(ctx, uid)).locked_until > time.time() + 3600

    assert (await admin.call("DELETE", f"/admin/wallets/{uid}/pin", token="wrong"))[0] == 401
    assert (await admin.call("DELETE", f"/admin/wallets/0{uid}/pin"))[0] == 400
    nobody = next(admin.ids)
    assert (await admin.call("DELETE", f"/admin/wallets/{nobody}/pin")) == (
        404, {"code": "not_found", "message": f"no user {nobody}"})
    assert await wallet_pin(ctx, uid) is not None
    assert (await admin.call("DELETE", f"/admin/wallets/{uid}/pin")) == (200, {"has_pin": False})
    assert (await admin.call("DELETE", f"/admin/wallets/{uid}/pin")) == (200, {"has_pin": False})
    assert await wallet_pin(ctx, uid) is None
    assert (await connect(uid)).hello["has_pin"] is False
    assert (await client.request("packet.pay", rp_id=rp_id))["ok"]
    assert (await client.request("wallet.set_pin", pin=NEW))["ok"]  # a first PIN again
    audit()


# Storms

@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"pin_lock": 3}], indirect=True)
async def test_twenty_sockets_of_wrong_pins_lock_after_exactly_five(admin, connect, ctx, audit):
    uid, client, unpaid = await with_pin(admin, connect)
    rp_id = await unpaid()
    sockets = [client] + [await connect(uid) for _ in range(19)]
    replies = await asyncio.gather(*(s.request("packet.pay", rp_id=rp_id, pin=WRONG)
                                     for s in sockets))
    outcomes = [refused(reply) for reply in replies]
    wrong = sorted(left for code, left, _ in outcomes if code == "bad_pin")
    locked = [until for code, _, until in outcomes if code == "pin_locked"]
    assert wrong == [1, 2, 3, 4]  # four told what is left, each count once; the fifth locked it
    assert len(locked) == 16 and len(set(locked)) == 1
    until = locked[0]
    assert (await wallet_pin(ctx, uid)).locked_until == until

    rights = await asyncio.gather(*(s.request("packet.pay", rp_id=rp_id, pin=RIGHT)
                                    for s in sockets))
    assert {refused(reply) for reply in rights} == {("pin_locked", None, until)}
    assert (await client.request("wallet.get"))["balance"] == "100.00"
    await asyncio.sleep(until - time.time() + 0.05)
    rights = await asyncio.gather(*(s.request("packet.pay", rp_id=rp_id, pin=RIGHT)
                                    for s in sockets))
    assert sorted(r.get("code", "ok") for r in rights) == ["already_paid"] * 19 + ["ok"]
    assert (await client.request("wallet.get"))["balance"] == "99.00"
    audit()


@pytest.mark.gen_test(timeout=30)
async def test_thirty_wrong_tries_recorded_at_once_count_to_exactly_five(admin, ctx):
    """The guarded update alone, each try in a transaction of its own, all at once."""
    uid = await admin.user()
    stored = hash_pin(RIGHT)
    async with ctx.db.cursor() as cur:
        assert await pins.insert(cur, uid, stored, int(time.time()))
    now = int(time.time())

    async def wrong_try():
        async with UnitOfWork(ctx) as uow:
            after = await pins.record_try(uow.cur, uid, stored, False, now, now + 60, MAX_WRONG)
            await uow.commit()
        return after

    afters = await asyncio.gather(*(wrong_try() for _ in range(30)))
    counted = sorted(a.wrong for a in afters if a.locked_until <= now)
    assert counted == [1, 2, 3, 4]
    assert all(a.locked_until == now + 60 and a.wrong == 0 for a in afters if a.wrong == 0)
    assert await wallet_pin(ctx, uid) == pins.PinRecord(stored, 0, now + 60)


@pytest.mark.gen_test(timeout=30)
async def test_a_right_pin_and_a_fifth_wrong_one_at_once_are_judged_in_one_order(admin, ctx):
    """Either the right one came first (let through, and the wrong one is the first of a new
    row), or the wrong one locked the PIN first (and the right one is refused): never both."""
    stored = hash_pin(RIGHT)
    for _ in range(10):  # which of the two MariaDB takes first is up to it
        uid = await admin.user()
        now = int(time.time())
        async with ctx.db.cursor() as cur:
            assert await pins.insert(cur, uid, stored, now)

        async def recorded(right: bool):
            async with UnitOfWork(ctx) as uow:
                after = await pins.record_try(uow.cur, uid, stored, right, now, now + 60,
                                              MAX_WRONG)
                await uow.commit()
            return after

        for _ in range(MAX_WRONG - 1):
            await recorded(False)
        right, wrong = await asyncio.gather(recorded(True), recorded(False))
        if right.locked_until > now:
            assert wrong.locked_until == now + 60  # locked first: the right PIN refused
        else:
            assert (wrong.wrong, wrong.locked_until) == (1, 0)  # reset first: one wrong after


@pytest.mark.gen_test(timeout=30)
async def test_two_first_pins_set_at_once_one_is_set_and_the_other_needs_it(admin, connect):
    uid, client, unpaid = await payer(admin, connect)
    other = await connect(uid)
    replies = await asyncio.gather(client.request("wallet.set_pin", pin=RIGHT),
                                   other.request("wallet.set_pin", pin=NEW))
    assert sorted(r.get("code", "ok") for r in replies) == ["ok", "pin_required"]
    winner = RIGHT if replies[0]["ok"] else NEW
    assert (await client.request("packet.pay", rp_id=await unpaid(), pin=winner))["ok"]


@pytest.mark.gen_test(timeout=90)
async def test_right_and_wrong_pins_racing_with_payments_pay_each_packet_once(
        admin, connect, ctx, audit):
    uid, client, unpaid = await with_pin(admin, connect)
    amounts = ["1.00", "2.50", "3.33", "0.01"]
    packets = [await unpaid(amount) for amount in amounts]
    sockets = [client] + [await connect(uid) for _ in range(7)]
    # 32 payments at once (a user's most in flight): each socket tries every packet, right and
    # wrong PINs interleaved, so rights reset the count while wrongs add to it.
    tries = [(s, rp_id, RIGHT if (i + j) % 3 == 0 else WRONG)
             for i, s in enumerate(sockets) for j, rp_id in enumerate(packets)]
    replies = await asyncio.gather(*(s.request("packet.pay", rp_id=rp_id, pin=pin)
                                     for s, rp_id, pin in tries))

    paid = {}
    for (_, rp_id, pin), reply in zip(tries, replies):
        if reply["ok"]:
            assert pin == RIGHT and rp_id not in paid, reply
            paid[rp_id] = reply
            continue
        code, left, _ = refused(reply)
        allowed = {"already_paid", "pin_locked"} | ({"bad_pin"} if pin == WRONG else set())
        assert code in allowed, reply
        assert left is None or 1 <= left <= 4
    assert paid, "some right PIN got through"
    record = await wallet_pin(ctx, uid)
    assert record.wrong < MAX_WRONG
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT ref, amount FROM wallet_ledger WHERE user_id = %s"
                          " AND kind = 'pay'", (uid,))
        ledger = {int(row["ref"]): -to_fen(row["amount"]) for row in await cur.fetchall()}
    spent = {rp_id: cents(amounts[packets.index(rp_id)]) for rp_id in paid}
    assert ledger == spent
    assert cents((await client.request("wallet.get"))["balance"]) == 10000 - sum(spent.values())
    audit()


# Secrets

@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("settings", [{"pin_lock": 1}], indirect=True)
async def test_no_pin_in_a_log_line_a_metric_or_an_answer(
        admin, connect, ctx, http_client, base_url, caplog, audit):
    caplog.set_level(logging.DEBUG)
    right, new, wrong = (f"{n:06d}" for n in secrets.SystemRandom().sample(range(10**6), 3))
    uid, client, unpaid = await payer(admin, connect)
    answers = [await client.request("wallet.set_pin", pin=right)]
    rp_id = await unpaid()
    for pin in (wrong, right, wrong, wrong):
        answers.append(await client.request("packet.pay", rp_id=await unpaid(), pin=pin))
    answers.append(await client.request("wallet.set_pin", pin=new, old_pin=wrong))
    answers.append(await client.request("wallet.set_pin", pin=new, old_pin=right))
    answers += await asyncio.gather(*(client.request("packet.pay", rp_id=rp_id, pin=wrong)
                                      for _ in range(6)))
    answers.append(await client.request("packet.pay", rp_id=rp_id, pin=right + "0"))
    await asyncio.sleep(1.1)
    answers.append(await client.request("packet.pay", rp_id=rp_id, pin=new))
    assert answers[-1]["ok"] and any(a.get("code") == "pin_locked" for a in answers)
    stored = (await wallet_pin(ctx, uid)).pin_hash
    assert (await admin.call("DELETE", f"/admin/wallets/{uid}/pin"))[0] == 200
    metrics = (await http_client.fetch(base_url + "/metrics")).body.decode()

    text = logging.Formatter("%(name)s %(levelname)s %(message)s")
    said = {"a log line": [text.format(r) for r in caplog.records], "the metrics": [metrics],
            "an answer": [repr(a) for a in answers], "the stored hash": [stored]}
    assert said["a log line"], "the run was logged"
    for pin in (right, new, wrong):
        alone = re.compile(rf"(?<![0-9]){pin}(?![0-9])")  # not a part of a longer number
        for where, lines in said.items():
            assert not [line for line in lines if alone.search(line)], f"a PIN in {where}"
    audit()
