"""Tokens on open sockets: a socket ends (4001) when its token does; `auth.refresh` moves that.

The clock's rule first, without servers; then real sockets against the in-process server.
"""
import asyncio
import math
import time

import hypothesis
import hypothesis.strategies as st
import jwt
import pytest

from rtserver.listener import raise_fd_limit
from rtserver.token_clock import CLOSES_PER_TURN, TokenEnds
from tests.client import Client

TOKEN_EXPIRED = 4001


# ---- The clock's rule ----

class Sock:
    def token_ended(self):
        raise AssertionError("the rule alone tells nobody")


def test_a_socket_is_taken_once_its_token_has_ended_and_never_before():
    ends, base = TokenEnds(), 1_000_000
    on_the_second, inside_a_second, later = Sock(), Sock(), Sock()
    ends.arm(on_the_second, base)
    ends.arm(inside_a_second, base + 0.5)
    ends.arm(later, base + 2)
    assert ends.take_ended(base - 0.001) == []
    assert ends.take_ended(base) == [on_the_second]
    assert ends.take_ended(base + 0.9) == []  # at the next sweep, never before its exp
    assert ends.take_ended(base + 1) == [inside_a_second]
    assert ends.take_ended(base + 100) == [later]
    assert ends.take_ended(base + 200) == []


def test_armed_again_a_socket_ends_at_its_new_time_only():
    ends, base = TokenEnds(), 1_000_000
    refreshed, shortened, closed = Sock(), Sock(), Sock()
    for sock in (refreshed, shortened, closed):
        ends.arm(sock, base + 10)
    ends.arm(refreshed, base + 20)
    ends.arm(shortened, base + 5)
    ends.disarm(closed)
    assert ends.take_ended(base + 5) == [shortened]
    assert ends.take_ended(base + 19) == []
    assert ends.take_ended(base + 20) == [refreshed]


def test_a_clock_stepped_back_still_ends_what_is_armed_after_it():
    ends, base = TokenEnds(), 1_000_000
    early, late = Sock(), Sock()
    ends.arm(late, base + 100)
    assert ends.take_ended(base + 50) == []
    ends.arm(early, base + 3)  # the system clock went back 50 s
    assert ends.take_ended(base + 3) == [early]


STEPS = st.lists(st.tuples(st.sampled_from(["arm", "disarm", "sweep"]), st.integers(0, 5),
                           st.floats(0, 30, allow_nan=False)), max_size=60)


@hypothesis.given(STEPS)
def test_every_socket_is_taken_once_at_the_first_sweep_past_its_exp(steps):
    ends, base = TokenEnds(), 1_000_000
    socks = [Sock() for _ in range(6)]
    armed = {}  # what the rule should hold: socket → exp
    for action, which, offset in steps:
        sock, at = socks[which], base + offset
        if action == "arm":
            ends.arm(sock, at)
            armed[sock] = at
        elif action == "disarm":
            ends.disarm(sock)
            armed.pop(sock, None)
        else:  # any time, forward or back: a sweep takes what has ended by it
            due = {s for s, exp in armed.items() if math.ceil(exp) <= at}
            assert set(ends.take_ended(at)) == due
            assert all(armed.pop(s) <= at for s in due)


# ---- Real sockets ----

@pytest.fixture
def open_with(http_server, base_url):
    """Open sockets with the token given, each noting when (by this machine's clock) it saw its
    socket close; all are closed when the test ends."""
    opened = []

    async def open_socket(token: str) -> Client:
        client = await Client.open(base_url, token)
        client.closed.add_done_callback(lambda _: setattr(client, "closed_at", time.time()))
        opened.append(client)
        return client

    yield open_socket
    for client in opened:
        client.close()


def token_until(settings, user_id: int, exp: float, secret: str | None = None) -> str:
    return jwt.encode({"sub": str(user_id), "exp": exp}, secret or settings.token_secret,
                      algorithm="HS256")


async def ends_with_4001(client: Client, not_before: float) -> None:
    code = await asyncio.wait_for(asyncio.shield(client.closed), not_before - time.time() + 10)
    assert (code, client.conn.close_reason) == (TOKEN_EXPIRED, "token expired")
    assert client.closed_at >= not_before, "closed before its token ended"


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0, moment - time.time()))


@pytest.mark.gen_test(timeout=30)
async def test_a_socket_is_closed_with_4001_once_its_token_ends(admin, open_with, settings):
    uid = await admin.user()
    exp = math.floor(time.time()) + 2
    client = await open_with(token_until(settings, uid, exp))
    assert (await client.request("ping"))["ok"] is True
    await ends_with_4001(client, exp)


@pytest.mark.gen_test(timeout=30)
async def test_a_refreshed_socket_outlives_its_first_token_and_ends_with_the_second(
        admin, open_with, settings):
    uid = await admin.user()
    first = math.floor(time.time()) + 2
    second = first + 2
    client = await open_with(token_until(settings, uid, first))
    reply = await client.request("auth.refresh", token=token_until(settings, uid, second))
    assert reply == {"re": reply["re"], "ok": True, "exp": second}
    await sleep_until(first + 0.5)
    assert (await client.request("ping"))["ok"] is True, "answered past the first token's exp"
    await ends_with_4001(client, second)


@pytest.mark.gen_test(timeout=30)
async def test_a_refresh_replaces_the_token_even_with_one_that_ends_sooner(
        admin, open_with, settings):
    uid = await admin.user()
    sooner = math.floor(time.time()) + 2
    client = await open_with(token_until(settings, uid, sooner + 3600))
    assert (await client.request("auth.refresh", token=token_until(settings, uid, sooner)))["ok"]
    await ends_with_4001(client, sooner)


@pytest.mark.gen_test(timeout=30)
async def test_a_refused_refresh_changes_nothing(admin, open_with, settings):
    uid, other = await admin.users(2)
    exp = math.floor(time.time()) + 3
    client = await open_with(token_until(settings, uid, exp))
    later = exp + 3600
    refusals = {
        "forbidden": [token_until(settings, other, later)],  # valid, but someone else's
        "unauthorized": [
            token_until(settings, uid, time.time() - 1),  # expired
            token_until(settings, uid, later, secret="another-secret-of-thirty-two-bytes!!"),
            jwt.encode({"sub": str(uid), "exp": later}, None, algorithm="none"),
            jwt.encode({"sub": str(uid), "exp": str(later)}, settings.token_secret),
            jwt.encode({"sub": f"0{uid}", "exp": later}, settings.token_secret),
            jwt.encode({"sub": str(uid)}, settings.token_secret),  # no exp
            "not.a.token", token_until(settings, uid, later)[:-2],
        ],
        "bad_request": [None, "", 42, ["a", "b"], {"token": "x"}, "x" * 5000],
    }
    for code, tokens in refusals.items():
        for token in tokens:
            args = {} if token is None else {"token": token}
            reply = await client.request("auth.refresh", **args)
            assert (reply["ok"], reply["code"]) == (False, code), token
            assert "eyJ" not in reply["message"], "a token in an error message"
    assert (await client.request("ping"))["ok"] is True
    await ends_with_4001(client, exp)  # at the old token's exp: nothing was replaced


@pytest.mark.gen_test(timeout=30)
async def test_a_frame_after_the_token_ended_is_not_answered(admin, open_with, settings):
    uid = await admin.user()
    # An exp inside a second: the clock's sweep comes at the next whole second, the frame before.
    exp = math.floor(time.time()) + 2.25
    client = await open_with(token_until(settings, uid, exp))
    await sleep_until(exp + 0.05)
    await client.send({"op": "ping", "id": 7})
    await ends_with_4001(client, exp)
    assert [f for f in client.events if f.get("re") == 7] == []


# Sockets whose tokens end in one second: twenty turns of the loop closing them, more than a
# ping's way through client and server (both in this process) takes.
STORM = 20 * CLOSES_PER_TURN
PER_USER = 20  # sockets of one user (--max-connections-per-user), each refreshing at once


@pytest.mark.gen_test(timeout=60)
async def test_a_storm_of_tokens_ending_at_once_closes_each_and_others_are_served(
        admin, open_with, settings):
    raise_fd_limit(2 * STORM)  # both ends of every socket are in this process
    users = await admin.users(STORM // PER_USER)
    bystander_id = await admin.user()
    far = time.time() + 3600
    owners = [uid for uid in users for _ in range(PER_USER)]
    clients = await asyncio.gather(*(open_with(token_until(settings, uid, far))
                                     for uid in owners))
    bystander = await open_with(token_until(settings, bystander_id, far))
    # Moved to one second by auth.refresh, however long the sockets took to open.
    exp = math.floor(time.time()) + 2
    replies = await asyncio.gather(*(
        c.request("auth.refresh", token=token_until(settings, uid, exp))
        for c, uid in zip(clients, owners)))
    assert all(r["ok"] for r in replies), replies

    # The bystander asks as soon as the first socket is seen closing; its answer comes
    # while the rest of the storm is still being closed.
    first_closed = asyncio.get_running_loop().create_future()
    for c in clients:
        c.closed.add_done_callback(
            lambda _: first_closed.done() or first_closed.set_result(None))
    await first_closed
    pong = await bystander.request("ping")
    still_open = sum(not c.closed.done() for c in clients)
    assert pong["ok"] is True
    assert still_open > 0, "the ping waited for the whole storm"

    for c in clients:
        await ends_with_4001(c, exp)
    assert (await bystander.request("ping"))["ok"] is True
    assert not bystander.closed.done()
