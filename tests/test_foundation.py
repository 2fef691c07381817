"""The ground: migrations, tokens, both sub-protocols, hello, ping, garbage frames."""
import time

import jwt
import msgpack
import pytest
import tornado.httpclient
import tornado.websocket

from rtserver import auth
from tests.conftest import run_cli


def test_migrate_twice_changes_nothing(settings):
    first = run_cli(settings, "migrate")
    second = run_cli(settings, "migrate")
    assert first.returncode == 0 and second.returncode == 0
    assert "schema up to date" in second.stdout


@pytest.mark.gen_test
async def test_hello_tells_user_balance_and_groups(admin, connect):
    alice, bob = await admin.users(2)
    gid = await admin.group([alice, bob], name="家人群")
    await admin.deposit(alice, "100.00")
    client = await connect(alice)
    assert client.hello["user"] == {"id": alice, "name": f"user{alice}"}
    assert client.hello["balance"] == "100.00"
    assert client.hello["groups"] == [{"id": gid, "name": "家人群", "members": 2}]
    assert abs(client.hello["server_time"] - time.time()) < 5


@pytest.mark.gen_test
@pytest.mark.parametrize("subprotocol", ["rp.v1.msgpack", "rp.v1.json"])
async def test_both_subprotocols_answer_ping_and_wallet(admin, connect, subprotocol):
    uid = await admin.user()
    await admin.deposit(uid, "12.34")
    client = await connect(uid, subprotocol)
    assert client.conn.selected_subprotocol == subprotocol
    pong = await client.request("ping")
    assert pong["ok"] is True and abs(pong["t"] - time.time()) < 5
    assert (await client.request("wallet.get"))["balance"] == "12.34"


@pytest.mark.gen_test
async def test_no_subprotocol_offered_gets_msgpack(admin, base_url, settings):
    uid = await admin.user()
    url = base_url.replace("http", "ws") + "/ws?token=" + auth.issue_token(settings.token_secret, uid)
    conn = await tornado.websocket.websocket_connect(url)
    hello = await conn.read_message()
    assert isinstance(hello, bytes) and msgpack.unpackb(hello)["ev"] == "hello"
    conn.close()


def _tokens(secret, uid):
    now = int(time.time())
    return {
        "missing": None,
        "forged": auth.issue_token("another-secret-of-at-least-32-bytes!", uid),
        "expired": jwt.encode({"sub": str(uid), "exp": now - 10}, secret, algorithm="HS256"),
        "no exp": jwt.encode({"sub": str(uid)}, secret, algorithm="HS256"),
        "alg none": jwt.encode({"sub": str(uid), "exp": now + 60}, None, algorithm="none"),
        "HS512": jwt.encode({"sub": str(uid), "exp": now + 60}, secret * 2, algorithm="HS512"),
        "not a user id": jwt.encode({"sub": "alice", "exp": now + 60}, secret, algorithm="HS256"),
        "unknown user": auth.issue_token(secret, 987654321),
    }


@pytest.mark.gen_test
async def test_bad_tokens_are_refused_before_the_upgrade(admin, base_url, settings):
    uid = await admin.user()
    for case, token in _tokens(settings.token_secret, uid).items():
        url = base_url.replace("http", "ws") + "/ws" + (f"?token={token}" if token else "")
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await tornado.websocket.websocket_connect(url)
        assert refused.value.code == 401, case


@pytest.mark.gen_test
async def test_token_in_authorization_header(admin, base_url, settings):
    uid = await admin.user()
    request = tornado.httpclient.HTTPRequest(
        base_url.replace("http", "ws") + "/ws",
        headers={"Authorization": "Bearer " + auth.issue_token(settings.token_secret, uid)})
    conn = await tornado.websocket.websocket_connect(request)
    assert msgpack.unpackb(await conn.read_message())["ev"] == "hello"
    conn.close()


@pytest.mark.gen_test
async def test_request_failures_carry_protocol_codes(admin, connect):
    client = await connect(await admin.user(), "rp.v1.json")
    unknown = await client.request("packet.explode")
    assert (unknown["ok"], unknown["code"]) == (False, "unknown_op")
    no_op = await client.request_frame({"id": 77, "to_id": 1})
    assert (no_op["re"], no_op["ok"], no_op["code"]) == (77, False, "unknown_op")
    wrong = await client.request("packet.detail")
    assert (wrong["ok"], wrong["code"]) == (False, "bad_request") and "rp_id" in wrong["message"]


GARBAGE = [
    b"\xc1",                      # never valid msgpack
    b"\x93\x01\x02\x03",          # msgpack, but an array
    msgpack.packb("just a string"),
    "not json",
    "[1, 2, 3]",
    "{\"op\": NaN}",
    "[" * 100_000 + "]" * 100_000,
]


@pytest.mark.gen_test
async def test_garbage_frames_get_bad_frame_and_others_are_served(admin, connect):
    attacker = await connect(await admin.user())
    bystander = await connect(await admin.user())
    for data in GARBAGE:
        await attacker.send_raw(data)
        error = await attacker.event("error")
        assert error["code"] == "bad_frame" and error["message"]
    await attacker.send_raw(b"\x00" * (64 * 1024 + 1))
    assert (await attacker.event("error"))["code"] == "bad_frame"
    assert (await attacker.request("ping"))["ok"] is True
    assert (await bystander.request("ping"))["ok"] is True


@pytest.mark.gen_test
async def test_more_than_ten_bad_frames_close_the_connection(admin, connect):
    attacker = await connect(await admin.user())
    bystander = await connect(await admin.user())
    for _ in range(11):
        await attacker.send_raw(b"\xc1")
    assert await attacker.closed == 1008
    assert (await bystander.request("ping"))["ok"] is True


@pytest.mark.gen_test
async def test_wrong_argument_types_get_bad_request(admin, connect):
    client = await connect(await admin.user())
    for args in ({"rp_id": "7"}, {"rp_id": -1}, {"rp_id": 0}, {"rp_id": 2**64 - 1}, {"rp_id": None},
                 {"rp_id": [1]}, {"rp_id": True}, {"rp_id": 1.5}):
        reply = await client.request("packet.detail", **args)
        assert (reply["ok"], reply["code"]) == (False, "bad_request"), args


@pytest.mark.gen_test
async def test_request_ids_that_cannot_be_echoed_are_refused(admin, connect):
    client = await connect(await admin.user(), "rp.v1.json")
    await client.send_raw('{"op": "ping", "id": 1180591620717411303424}')
    await client.send_raw('{"op": "ping", "id": [1]}')
    assert (await client.request("ping"))["ok"] is True
    refusals = [f for f in client.events if f.get("re", "absent") is None]
    assert [f["code"] for f in refusals] == ["bad_request", "bad_request"]
