"""The admin API: its token, its validation, idempotent deposits, and health."""
import dataclasses
import json

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.testing

from rtserver import auth
from server.app import make_app
from rtserver.hub import Hub
from storage.redis_client import connect as redis_connect


@pytest.mark.gen_test
async def test_admin_token_missing_or_wrong_is_401(admin):
    for token in ("", "wrong", admin.token + "x"):
        status, body = await admin.call("PUT", "/admin/users/5", {"name": "x"}, token=token)
        assert status == 401 and body["code"] == "unauthorized"


@pytest.mark.gen_test
async def test_a_user_token_is_not_an_admin_token(admin, settings):
    uid = await admin.user()
    status, _ = await admin.call("POST", f"/admin/wallets/{uid}/deposit",
                                 {"amount": "1.00", "ref": "x"},
                                 token=auth.issue_token(settings.token_secret, uid))
    assert status == 401


@pytest.mark.gen_test
async def test_bad_bodies_are_400_with_a_code_and_message(admin):
    uid = await admin.user()
    cases = [
        ("PUT", "/admin/users/9", None, b"{not json"),
        ("PUT", "/admin/users/9", None, b"[1]"),
        ("PUT", "/admin/users/9", {"name": ""}, None),
        ("PUT", "/admin/users/9", {"name": 5}, None),
        ("PUT", "/admin/groups/9", {"name": "g", "members": "everyone"}, None),
        ("PUT", "/admin/groups/9", {"name": "g", "members": [uid, -3]}, None),
        ("PUT", "/admin/groups/9", {"name": "g", "members": [uid, admin.unused_id()]}, None),
        ("POST", f"/admin/wallets/{uid}/deposit", {"amount": "1.00"}, None),
        ("POST", f"/admin/wallets/{uid}/deposit", {"amount": 1.0, "ref": "a"}, None),
        ("POST", f"/admin/wallets/{uid}/deposit", {"amount": "0.00", "ref": "a"}, None),
        ("POST", f"/admin/wallets/{uid}/deposit", {"amount": "-1.00", "ref": "a"}, None),
        ("POST", f"/admin/wallets/{uid}/deposit", {"amount": "1.001", "ref": "a"}, None),
        ("POST", f"/admin/wallets/{uid}/deposit", {"amount": "1e3", "ref": "a"}, None),
    ]
    for method, path, body, raw in cases:
        status, answer = await admin.call(method, path, body, raw=raw)
        assert status == 400, (path, body, raw, answer)
        assert answer["code"] in ("bad_request", "invalid_amount") and answer["message"]
    status, answer = await admin.call("POST", f"/admin/wallets/{uid}/deposit",
                                      {"amount": "1.00", "ref": "r"})
    assert status == 200 and answer == {"balance": "1.00"}, "earlier refusals moved money"


@pytest.mark.gen_test
async def test_deposit_is_idempotent_on_ref(admin, connect, audit):
    uid = await admin.user()
    client = await connect(uid)
    assert await admin.deposit(uid, "10.00", ref="bank-1") == "10.00"
    assert (await client.event("wallet"))["balance"] == "10.00"
    assert await admin.deposit(uid, "10.00", ref="bank-1") == "10.00"
    assert await admin.deposit(uid, "0.50", ref="bank-2") == "10.50"
    other = await admin.user()
    status, body = await admin.call("POST", f"/admin/wallets/{other}/deposit",
                                    {"amount": "10.00", "ref": "bank-1"})
    assert status == 400 and body["code"] == "bad_request"
    assert (await client.request("wallet.get"))["balance"] == "10.50"
    audit()


@pytest.mark.gen_test
async def test_a_deposit_of_other_than_two_places_is_invalid_amount(admin, audit):
    uid = await admin.user()
    for amount in ("1", "1.0", "1.000"):
        status, body = await admin.call("POST", f"/admin/wallets/{uid}/deposit",
                                        {"amount": amount, "ref": f"{uid}-{amount}"})
        assert (status, body["code"]) == (400, "invalid_amount"), amount
    assert await admin.deposit(uid, "1.00") == "1.00", "the refusals moved nothing"
    audit()


@pytest.mark.gen_test
async def test_deposit_to_unknown_user_is_404(admin):
    status, body = await admin.call("POST", f"/admin/wallets/{admin.unused_id()}/deposit",
                                    {"amount": "1.00", "ref": "nobody"})
    assert status == 404 and body["code"] == "not_found"


@pytest.mark.gen_test
async def test_group_membership_changes_join_and_leave_rooms(admin, connect):
    alice, bob, carol = await admin.users(3)
    gid = await admin.group([alice, bob])
    status, body = await admin.call("POST", f"/admin/groups/{gid}/members", {"user_ids": [carol]})
    assert status == 200 and body["members"] == [alice, bob, carol]
    status, body = await admin.call("DELETE", f"/admin/groups/{gid}/members/{bob}")
    assert status == 200 and body["members"] == [alice, carol]
    status, body = await admin.call("DELETE", f"/admin/groups/{gid}/members/{bob}")
    assert status == 404
    carol_client = await connect(carol)
    assert [g["id"] for g in carol_client.hello["groups"]] == [gid]


@pytest.mark.gen_test
async def test_health_is_200_when_both_answer(http_client, base_url):
    response = await http_client.fetch(base_url + "/healthz")
    assert response.code == 200


@pytest.mark.gen_test
async def test_health_is_503_when_redis_is_unreachable(ctx):
    closed_port = dataclasses.replace(ctx, redis=redis_connect("redis://127.0.0.1:1/0"), hub=Hub())
    server = tornado.httpserver.HTTPServer(make_app(closed_port))
    sock, port = tornado.testing.bind_unused_port()
    server.add_sockets([sock])
    try:
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{port}/healthz", raise_error=False)
        assert response.code == 503
        assert json.loads(response.body) == {"ok": False, "mysql": True, "redis": False}
    finally:
        server.stop()
        await closed_port.redis.aclose()


@pytest.mark.gen_test
async def test_metrics_are_prometheus_text(http_client, base_url, admin, connect):
    client = await connect(await admin.user())
    await client.request("ping")
    body = (await http_client.fetch(base_url + "/metrics")).body.decode()
    assert "rtserver_connections" in body
    assert 'rtserver_requests_total{op="ping",outcome="ok"}' in body


@pytest.mark.gen_test
async def test_a_deposit_past_what_a_wallet_holds_is_refused(admin, audit):
    uid = await admin.user()
    assert await admin.deposit(uid, "9999999999.99") == "9999999999.99"
    status, body = await admin.call("POST", f"/admin/wallets/{uid}/deposit",
                                    {"amount": "0.01", "ref": f"over-{uid}"})
    assert status == 400 and body["code"] == "invalid_amount"
    audit()


# Four references MariaDB's default collation takes for one: case, a trailing space, an accent.
LOOKALIKES = ("abc", "ABC", "abc ", "ábc")


@pytest.mark.gen_test
async def test_refs_differing_in_case_space_or_accent_are_four_deposits(admin, ctx, audit):
    uid = await admin.user()
    refs = [f"{uid}-{spelling}" for spelling in LOOKALIKES]  # this run's database is shared
    assert [await admin.deposit(uid, "1.00", ref) for ref in refs] == \
        ["1.00", "2.00", "3.00", "4.00"]
    assert [await admin.deposit(uid, "1.00", ref) for ref in refs] == ["4.00"] * 4, \
        "a repeat of each moves nothing"
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT ref FROM wallet_ledger WHERE user_id = %s ORDER BY id", (uid,))
        assert [row["ref"] for row in await cur.fetchall()] == refs
    audit()
