"""Fuzzing the socket: generated frames at a live server, which must answer each one, never fail
inside, move no money, and keep answering everyone else.

Hypothesis drives the examples from a worker thread; each example's frames are sent on the
test's IOLoop, where the server runs. More examples: `RTSERVER_FUZZ_EXAMPLES=2000 make test
PYTEST_ARGS=tests/test_fuzz_socket.py`.
"""
import asyncio
import json
import os

import hypothesis
import hypothesis.strategies as st
import msgpack
import pytest

from handlers.ops import OPS
from rtserver import auth, codec, wallet
from rtserver.errors import BadFrame
from rtserver.lifecycle import PAY_TYPES
from tests.client import Client
from tests.test_packets import create_and_pay

EXAMPLES = int(os.environ.get("RTSERVER_FUZZ_EXAMPLES", "300"))
CODES = {"bad_request", "bad_frame", "unknown_op", "unauthorized", "forbidden", "not_found",
         "invalid_amount", "invalid_number", "insufficient_balance", "already_paid", "not_paid",
         "rate_limited", "unavailable", "bad_pin", "pin_required", "pin_locked",
         "limit_exceeded", "frozen", "wrong_password"}  # all but "internal": that is a bug

# Any code point, awkward ones more often. Hypothesis all but never draws a lone surrogate (which
# JSON's \ud800 escapes make), so those are put in on purpose.
CHARS = st.one_of(st.characters(), st.sampled_from("\x00\n\"\\'红包😀\u202e\ufeff"))
LONE_SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])


def text(max_size: int = 30):
    plain = st.text(alphabet=CHARS, max_size=max_size)
    return st.one_of(plain, st.tuples(plain, LONE_SURROGATES, plain).map(
        lambda parts: "".join(parts)[:max_size]))


# Values of every type the two encodings carry, at their edges.
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-2**64, max_value=2**64),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64 - 1, -2**63, 10**40, -10**40]),
    st.floats(allow_nan=True, allow_infinity=True),
    text(),
    st.binary(max_size=20),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.one_of(text(8), st.integers()), inner,
                                        max_size=4), max_leaves=12)
# Mostly the attacker's own few PINs (set, changed, tried, locked), else what a PIN is not.
PINS = st.sampled_from(["123456", "000000", "999999"] * 3
                       + ["12345", "1234567", "１２３４５６", "12345a", " 123456", "123456\n"])
IDS = st.one_of(st.integers(min_value=-2**64, max_value=2**64), st.sampled_from([0, -1]),
                text(70), VALUES)


def plausible(world: dict) -> dict:
    """Values an argument might rightly take, so that the fuzzer gets past the first check."""
    ids = st.sampled_from(world["ids"])
    return {
        "rp_id": ids, "for_id": ids, "to_id": ids, "before": ids, "to_user": ids, "group_id": ids,
        # 口令: near misses of the world's phrase (暗号), phrases a sender may set, or any text.
        "password": st.one_of(st.sampled_from(["暗", "暗号号", "暗 号", "芝麻开门", "", " " * 21,
                                               "x" * 20, "x" * 21]), text(25)),
        "to_type": st.sampled_from(["group", "user"] * 3 + ["GROUP", ""]),
        "text": text(600),
        "type": st.integers(min_value=-1, max_value=5),
        "number": st.integers(min_value=-1, max_value=102),
        "amount": st.sampled_from(["0.01", "0.02", "1.00", "3.00", "200.00"] * 2
                                  + ["200.01", "0", "-1.00", "1e2", "NaN", " 1.00", "1.001",
                                     "９.00"]),
        "intro": text(30),
        "pay_type": st.sampled_from([*PAY_TYPES] * 2 + ["cash", "Balance"]),
        "client_key": text(70),
        "box": st.sampled_from(["sent", "received", "all"]),
        "year": st.integers(min_value=1999, max_value=2101),
        "limit": st.integers(min_value=-1, max_value=101),
        "result": VALUES,
        "pin": PINS, "old_pin": PINS,
        "token": st.sampled_from(world["tokens"]),
    }


def op_frames(world: dict):
    """A request for one op: its arguments mostly plausible, sometimes of a wrong type, and
    sometimes missing, so that many requests get past the first check to the use-cases."""
    arg_values = plausible(world)

    def for_op(op: str):
        args = {name: st.one_of(*[arg_values.get(name, VALUES)] * 3, VALUES)
                for name in OPS[op][0]}
        head = {"op": st.just(op), "id": st.one_of(*[st.integers(1, 2**31)] * 3, IDS)}
        return st.one_of(st.fixed_dictionaries({**head, **args}),
                         st.fixed_dictionaries(head, optional=args))
    return st.sampled_from(sorted(OPS)).flatmap(for_op)


def nested(depth: int, kind: str) -> bytes | str:
    """A frame nested `depth` deep, built by hand: the encoders refuse such depths."""
    if kind == "binary":
        return b"\x91" * depth + b"\xc0"  # fixarray of one, `depth` times, around nil
    return "[" * depth + "]" * depth


def encode(value, kind: str) -> bytes | str | None:
    """A value as the client would send it in a binary (msgpack) or text (JSON) frame."""
    if kind == "binary":
        try:
            return msgpack.packb(value, use_bin_type=True)
        except (OverflowError, ValueError, TypeError):
            return None
    try:  # NaN and Infinity as Python writes them; bytes as text; \ud800 escapes stay
        return json.dumps(value, default=lambda b: b.decode("latin-1"))
    except (ValueError, TypeError):
        return None


def raw_frames(world: dict):
    kind = st.sampled_from(["binary", "text"])
    structured = st.tuples(st.one_of(op_frames(world), VALUES), kind).map(
        lambda pair: (pair[0], encode(*pair)))
    # A text frame is UTF-8 on the wire: raw text can hold no lone surrogate (JSON's escapes can).
    garbage = st.one_of(st.binary(max_size=200), st.text(max_size=200)).map(lambda d: (None, d))
    deep = st.tuples(st.integers(min_value=1, max_value=40_000), kind).map(
        lambda pair: (None, nested(*pair)))
    # Structured frames twice as often: they reach the op table and the use-cases.
    return st.one_of(structured, structured, garbage, deep).filter(lambda f: f[1] is not None)


def sent_id(data: bytes | str):
    """The `id` of a frame as the server reads it (bytes sent as JSON text arrive as text)."""
    try:
        frame = codec.decode(data)
    except BadFrame:
        return None
    return frame.get("id")


async def answers(client: Client, count: int, timeout: float = 5) -> list[dict]:
    """Wait for `count` answers (replies and error events), or fail saying what came."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = [f for f in client.events if "re" in f or f.get("ev") == "error"]
        if len(got) >= count or client.closed.done():
            return got
        left = deadline - asyncio.get_running_loop().time()
        assert left > 0, f"{len(got)} answers of {count}: {client.events}"
        client.arrived.clear()
        try:
            await asyncio.wait_for(client.arrived.wait(), left)
        except asyncio.TimeoutError:
            pass


async def send_and_check(base_url: str, token: str, subprotocol: str, frames: list) -> None:
    client = await Client.open(base_url, token, subprotocol)
    try:
        for _, data in frames:
            await client.send_raw(data)
        got = await answers(client, len(frames))
        assert not client.closed.done(), f"closed {client.closed.result()} after {len(got)}"
        assert len(got) == len(frames), got
        for answer in got:
            if answer.get("ev") == "error":
                assert answer["code"] == "bad_frame" and isinstance(answer["message"], str)
            elif not answer["ok"]:
                assert answer["code"] in CODES and isinstance(answer["message"], str), answer
        sent_ids = {repr(sent_id(data)) for _, data in frames}
        for reply in (a for a in got if "re" in a and a["re"] is not None):
            assert repr(reply["re"]) in sent_ids, reply  # echoed, never made up
    finally:
        client.close()


async def set_up(admin, connect) -> dict:
    """An attacker with no money, a group of theirs, and money of others nearby."""
    attacker, friend, rich, other = await admin.users(4)
    mine, theirs = await admin.group([attacker, friend, other]), await admin.group([rich, other])
    for uid in (friend, rich):
        await admin.deposit(uid, "50.00")
    rich_client, friend_client = await connect(rich), await connect(friend)
    lucky = await create_and_pay(rich_client, type=3, for_id=theirs, number=2, amount="3.00")
    personal = await create_and_pay(rich_client, type=1, for_id=other, amount="1.00")
    unpaid = (await friend_client.request("packet.create", type=2, for_id=mine, number=1,
                                          amount="1.00", pay_type="balance"))["rp_id"]
    # In the attacker's own group: one exclusive packet for someone else, one with a phrase.
    # The attacker never says its phrase: what the fuzzer says are near misses and noise.
    exclusive = await create_and_pay(friend_client, type=4, for_id=mine, amount="1.00",
                                     to_user=other)
    phrase = await create_and_pay(friend_client, type=3, for_id=mine, number=2, amount="2.00",
                                  password="暗号")
    users = [attacker, friend, rich, other]
    return {"attacker": attacker, "users": users,
            "ids": users + [mine, theirs, lucky, personal, unpaid, exclusive, phrase, 0, 1,
                            2**63 - 1],
            "bystander": friend_client}


def tokens_to_refresh_with(secret: str, world: dict) -> list[str]:
    """For `auth.refresh`: the attacker's own token, another user's, an expired, a forged one."""
    attacker, rich = world["attacker"], world["users"][2]
    return [auth.issue_token(secret, attacker), auth.issue_token(secret, rich),
            auth.issue_token(secret, attacker, ttl=-60),
            auth.issue_token("a-forger-s-secret-of-thirty-two-bytes", attacker), "e30.e30.", ""]


async def balances(ctx, users) -> dict:
    return {uid: await wallet.balance(ctx, uid) for uid in users}


@pytest.mark.gen_test(timeout=300)
async def test_fuzzed_frames_are_answered_move_no_money_and_hurt_nobody(
        admin, connect, base_url, settings, ctx, audit):
    world = await set_up(admin, connect)
    world["tokens"] = tokens_to_refresh_with(settings.token_secret, world)
    before = await balances(ctx, world["users"])
    token = auth.issue_token(settings.token_secret, world["attacker"])
    loop = asyncio.get_running_loop()

    # No shrinking: a lost answer costs the whole wait, and shrinking would spend minutes on
    # it. The failing example's frames (ten at most) are printed as they were sent.
    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                         phases=[hypothesis.Phase.generate],
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(frames=st.lists(raw_frames(world), min_size=1, max_size=10),
                      subprotocol=st.sampled_from(["rp.v1.msgpack", "rp.v1.json"]))
    def fuzz(frames, subprotocol):
        hypothesis.note(f"{subprotocol}: {[data for _, data in frames]!r:.3000}")
        asyncio.run_coroutine_threadsafe(
            send_and_check(base_url, token, subprotocol, frames), loop).result(30)

    await loop.run_in_executor(None, fuzz)
    assert (await world["bystander"].request("ping"))["ok"] is True
    assert await balances(ctx, world["users"]) == before
    audit()
