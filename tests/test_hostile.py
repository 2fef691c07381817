"""docs/protocol.md's "Rates and bounds" and "HTTP": tokens, secret-free logs, rate limits, origins, bodies."""
import asyncio
import json
import logging
import time
import urllib.parse

import jwt
import msgpack
import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.testing
import tornado.websocket

from handlers.base import MAX_BODY
from rtserver import auth
from rtserver.quotas import REQUESTS_PER_CONNECTION
from rtserver.ratelimit import TokenBucket
from tests.providers import new_key


def ws_url(base_url: str, token: str | None = None) -> str:
    return base_url.replace("http", "ws", 1) + "/ws" + (f"?token={token}" if token else "")


async def upgrade(base_url: str, token: str | None = None, headers: dict | None = None):
    """Open a raw socket (no hello read); raises HTTPClientError when the upgrade is refused."""
    request = tornado.httpclient.HTTPRequest(ws_url(base_url, token), headers=headers or {})
    return await tornado.websocket.websocket_connect(request)


# Tokens

def refused_tokens(secret: str, admin_token: str, uid: int) -> dict[str, str]:
    """Every token docs/protocol.md refuses, by why."""
    now = int(time.time())
    claims = {"sub": str(uid), "exp": now + 60}
    rsa_key = new_key()
    return {
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "HS512": jwt.encode(claims, secret * 2, algorithm="HS512"),
        "HS384": jwt.encode(claims, secret * 2, algorithm="HS384"),
        "RS256": jwt.encode(claims, rsa_key, algorithm="RS256"),
        "forged": jwt.encode(claims, "another-secret-of-at-least-32-bytes!", algorithm="HS256"),
        "expired": jwt.encode({**claims, "exp": now - 10}, secret, algorithm="HS256"),
        "no exp": jwt.encode({"sub": str(uid)}, secret, algorithm="HS256"),
        "no sub": jwt.encode({"exp": now + 60}, secret, algorithm="HS256"),
        "sub a number": _unchecked_hs256({"sub": uid, "exp": now + 60}, secret),
        "sub not a user id": jwt.encode({**claims, "sub": "alice"}, secret, algorithm="HS256"),
        "sub zero": jwt.encode({**claims, "sub": "0"}, secret, algorithm="HS256"),
        # the user's own id, spelled otherwise: only "UID" names the user
        **{f"sub {sub!r}": jwt.encode({**claims, "sub": sub}, secret, algorithm="HS256")
           for sub in (f"0{uid}", f"+{uid}", f" {uid}", f"{uid} ")},
        "exp a string": _unchecked_hs256({**claims, "exp": str(now + 60)}, secret),
        "exp a bool": _unchecked_hs256({**claims, "exp": True}, secret),
        "not yet valid": jwt.encode({**claims, "nbf": now + 600}, secret, algorithm="HS256"),
        "unknown user": auth.issue_token(secret, 987654321),
        "the admin token": admin_token,
        "garbage": "not.a.token",
    }


def _unchecked_hs256(claims: dict, secret: str) -> str:
    """Sign claims PyJWT would refuse to encode (a numeric `sub`) as a client could."""
    return jwt.api_jws.encode(json.dumps(claims).encode(), secret, algorithm="HS256")


@pytest.mark.gen_test
async def test_every_refused_token_is_401_before_the_upgrade_in_query_and_header(
        admin, base_url, settings):
    uid = await admin.user()
    for case, token in refused_tokens(settings.token_secret, settings.admin_token, uid).items():
        for where in ("query", "header"):
            headers = {"Authorization": f"Bearer {token}"} if where == "header" else None
            with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
                await upgrade(base_url, token if where == "query" else None, headers)
            assert refused.value.code == 401, (case, where)
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await upgrade(base_url, headers=headers)
        assert refused.value.code == 401, headers


@pytest.mark.gen_test
@pytest.mark.parametrize("where", ["query", "header"])
async def test_a_good_hs256_token_opens_the_socket(admin, base_url, settings, where):
    uid = await admin.user()
    token = auth.issue_token(settings.token_secret, uid)
    conn = await upgrade(base_url, token if where == "query" else None,
                         {"Authorization": f"Bearer {token}"} if where == "header" else None)
    hello = msgpack.unpackb(await conn.read_message())
    assert (hello["ev"], hello["user"]["id"]) == ("hello", uid)
    conn.close()


# Logs

@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"dev": True}], indirect=True)
async def test_no_log_record_holds_a_token_or_a_secret(admin, base_url, settings, caplog):
    caplog.set_level(logging.DEBUG)
    uid = await admin.user()
    user_token = auth.issue_token(settings.token_secret, uid)
    conn = await upgrade(base_url, user_token, {"Origin": "http://anywhere.example"})
    await conn.read_message()
    conn.close()
    refused = jwt.encode({"sub": str(uid), "exp": 1}, settings.token_secret, algorithm="HS256")
    with pytest.raises(tornado.httpclient.HTTPClientError):
        await upgrade(base_url, refused)
    with pytest.raises(tornado.httpclient.HTTPClientError):
        await upgrade(base_url, headers={"Authorization": f"Bearer {settings.admin_token}"})
    assert (await admin.call("PUT", f"/admin/users/{uid}", {"name": "x"}))[0] == 200
    assert (await admin.call("PUT", "/admin/users/1?token=" + user_token, raw=b"{"))[0] == 400
    multipart = await admin.http.fetch(  # Tornado itself would log this refusal with its query
        f"{base_url}/admin/users/1?token={user_token}", method="PUT", body=b"--x--",
        headers={"Authorization": f"Bearer {settings.admin_token}",
                 "Content-Type": "multipart/form-data"}, raise_error=False)
    assert multipart.code == 400
    status, issued = await admin.call("POST", "/dev/token", {"user_id": uid})
    assert status == 200
    forged = await admin.http.fetch(  # a webhook refused: its refusal is logged
        f"{base_url}/pay/notify/sandbox", method="POST", body=b'{"out_trade_no": "x"}',
        headers={"X-Sandbox-Signature": "0" * 64}, raise_error=False)
    assert forged.code == 400
    for path in ("/no/such/page", "/../etc/passwd"):  # Tornado logs a traversal with its query
        await admin.call("GET", f"{path}?token={user_token}")
    await asyncio.sleep(0.1)  # let the closing socket log what it logs

    secrets = {"user token": user_token, "refused token": refused, "dev token": issued["token"],
               "token secret": settings.token_secret, "admin token": settings.admin_token,
               "sandbox secret": settings.sandbox_secret}
    text = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = [(r.name, text.format(r)) for r in caplog.records]
    for name, line in records:
        for what, secret in secrets.items():
            assert secret not in line, f"{what} in a {name} record: {line}"
    access = [line for name, line in records if name == "tornado.access"]
    assert any(" /ws " in line for line in access), "the socket's upgrade is logged, by path"
    assert any("/dev/token" in line for line in access)
    assert any("sandbox notification refused" in line for _, line in records)


# Rate limits

def test_token_bucket_allows_bursts_then_the_rate():
    bucket = TokenBucket(rate=50, burst=100, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(150)) == 100
    assert sum(bucket.take(1.0) for _ in range(100)) == 50
    assert not bucket.take(1.0)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"rate_limit": 50}], indirect=True)
async def test_a_flood_is_refused_then_cut_off_and_others_are_answered(admin, connect):
    flooder = await connect(await admin.user())
    bystander = await connect(await admin.user(), "rp.v1.json")
    for n in range(1, 5001):  # 500 would do at full speed; a slow machine refills the bucket
        try:
            await flooder.send({"op": "ping", "id": n})
        except tornado.websocket.WebSocketClosedError:
            break  # cut off mid-flood
    assert await asyncio.wait_for(flooder.closed, 10) == 1008
    refused = [f for f in flooder.events if f.get("ok") is False]
    assert refused and {f["code"] for f in refused} == {"rate_limited"}
    assert all(type(f["re"]) is int and 1 <= f["re"] <= n for f in refused), "ids echoed"
    assert (await bystander.request("ping"))["ok"] is True


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"rate_limit": 50}], indirect=True)
async def test_one_flood_does_not_hold_up_another_connection(admin, connect):
    flooder = await connect(await admin.user())
    bystander = await connect(await admin.user())
    flood = asyncio.gather(*(flooder.request("wallet.get") for _ in range(250)))
    assert (await bystander.request("wallet.get"))["ok"] is True
    assert "rate_limited" in {r.get("code") for r in await flood}


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"rate_limit": 20}], indirect=True)
async def test_a_refused_request_does_nothing(admin, connect):
    uid = await admin.user()
    gid = await admin.group([uid])
    client = await connect(uid)
    replies = await asyncio.gather(*(client.request("chat.send", to_type="group", to_id=gid,
                                                    text=f"#{n}") for n in range(100)))
    sent = sorted(r["message"]["text"] for r in replies if r["ok"])
    assert {r["code"] for r in replies if not r["ok"]} == {"rate_limited"}
    # Refused past the 16 being worked on at once, and past the burst of 40
    assert REQUESTS_PER_CONNECTION <= len(sent) <= 40
    await asyncio.sleep(0.2)  # a token for the history
    history = await client.request("chat.history", to_type="group", to_id=gid, limit=100)
    assert sorted(m["text"] for m in history["messages"]) == sent


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"rate_limit": 0}], indirect=True)
async def test_rate_limit_0_refuses_nothing(admin, connect):
    client = await connect(await admin.user())
    turns = asyncio.Semaphore(REQUESTS_PER_CONNECTION)  # within the limit of work in flight

    async def ping():
        async with turns:
            return await client.request("ping")
    replies = await asyncio.gather(*(ping() for _ in range(500)))
    assert all(r["ok"] for r in replies)


# Origins

ORIGINS = "https://chat.example.com, http://localhost:8888"


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [{"allowed_origins": ORIGINS}], indirect=True)
async def test_a_foreign_origin_is_refused_with_403(admin, base_url, settings):
    token = auth.issue_token(settings.token_secret, await admin.user())
    for origin in ("https://evil.example", "https://chat.example.com.evil.example", "null",
                   "http://chat.example.com"):
        with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
            await upgrade(base_url, token, {"Origin": origin})
        assert refused.value.code == 403, origin
    for headers in ({"Origin": "https://chat.example.com"}, {"Origin": "HTTP://LOCALHOST:8888"},
                    {}):  # no Origin: not a browser, nothing to check
        conn = await upgrade(base_url, token, headers)
        assert msgpack.unpackb(await conn.read_message())["ev"] == "hello"
        conn.close()


@pytest.mark.gen_test
async def test_without_allowed_origins_any_origin_may_connect(admin, base_url, settings):
    token = auth.issue_token(settings.token_secret, await admin.user())
    conn = await upgrade(base_url, token, {"Origin": "https://anyone.example"})
    assert msgpack.unpackb(await conn.read_message())["ev"] == "hello"
    conn.close()


# Bodies

def body_endpoints(uid: int, gid: int) -> list[tuple[str, str]]:
    """Every endpoint that takes a body: the admin API, the webhooks and the dev token."""
    return [("PUT", f"/admin/users/{uid}"), ("PUT", f"/admin/groups/{gid}"),
            ("POST", f"/admin/groups/{gid}/members"), ("POST", f"/admin/wallets/{uid}/deposit"),
            ("POST", "/pay/notify/alipay"), ("POST", "/pay/notify/wechat"),
            ("POST", "/pay/notify/unionpay"), ("POST", "/pay/notify/sandbox"),
            ("POST", "/dev/token")]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"dev": True}], indirect=True)
async def test_bodies_over_64_kib_are_413_everywhere(admin):
    uid = await admin.user()
    gid = await admin.group([uid])
    too_big = json.dumps({"name": "x" * MAX_BODY}).encode()
    for method, path in body_endpoints(uid, gid) + [("DELETE", f"/admin/groups/{gid}/members/1")]:
        status, body = await admin.call(method, path, raw=too_big)
        assert status == 413, (path, body)
        assert body["code"] == "bad_request" and body["message"], path


@pytest.mark.gen_test
async def test_a_body_of_exactly_64_kib_is_read(admin):
    uid = await admin.user()
    body = json.dumps({"name": "x" * 10}).encode()
    body += b" " * (MAX_BODY - len(body))
    assert (await admin.call("PUT", f"/admin/users/{uid}", raw=body)) == \
        (200, {"id": uid, "name": "x" * 10})


async def raw_http(base_url: str, data: bytes) -> bytes:
    """Send bytes on a fresh connection; return everything the server answers until it closes."""
    url = urllib.parse.urlsplit(base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


@pytest.fixture
def capped_url(app, http_server):
    """A second server of the same app that caps bodies as `rtserver serve` does."""
    server = tornado.httpserver.HTTPServer(app, max_body_size=MAX_BODY)
    sock, port = tornado.testing.bind_unused_port()
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["test server", "capped server"])
def server_url(request, base_url):
    return base_url if request.param == "test server" else request.getfixturevalue("capped_url")


def put_head(path: str, token: str, *headers: str) -> bytes:
    return "\r\n".join([f"PUT {path} HTTP/1.1", "Host: test", f"Authorization: Bearer {token}",
                        *headers, "", ""]).encode()


@pytest.mark.gen_test
async def test_a_huge_declared_body_is_refused_without_waiting_for_it(admin, server_url):
    """100 MB announced, 1 KB sent: the 413 comes at once and the connection is closed."""
    head = put_head("/admin/users/5", admin.token, f"Content-Length: {100 << 20}")
    answer = await raw_http(server_url, head + b"x" * 1024)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nConnection: close\r\n" in rest and b"HTTP/1.1" not in rest, "one answer"
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["code"] == "bad_request"


@pytest.mark.gen_test
async def test_a_chunked_body_is_refused_once_it_passes_64_kib(admin, server_url):
    head = put_head("/admin/users/5", admin.token, "Transfer-Encoding: chunked")
    body = b"".join(b"1000\r\n" + b"x" * 4096 + b"\r\n" for _ in range(40))  # 160 KiB, unended
    answer = await raw_http(server_url, head + body)
    assert answer.startswith(b"HTTP/1.1 413 ") and answer.count(b"HTTP/1.1") == 1


@pytest.mark.gen_test
async def test_a_small_chunked_body_is_read_whole(admin, server_url):
    uid = await admin.user()
    head = put_head(f"/admin/users/{uid}", admin.token, "Transfer-Encoding: chunked",
                    "Connection: close")
    chunks = b'a\r\n{"name": "\r\n7\r\nchunky"\r\n1\r\n}\r\n0\r\n\r\n'
    answer = await raw_http(server_url, head + chunks)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {"id": uid, "name": "chunky"}


@pytest.mark.gen_test
async def test_rtserver_serve_caps_bodies_of_every_other_route(capped_url):
    """Static files and the socket take no body: the server's cap refuses one unread."""
    head = f"POST /index.html HTTP/1.1\r\nHost: test\r\nContent-Length: {100 << 20}\r\n\r\n"
    answer = await raw_http(capped_url, head.encode() + b"x" * 1024)
    assert answer.startswith(b"HTTP/1.1 400 ")


MALFORMED = [b"{not json", b"", b"[1]", b"\"text\"", b"null", b"\xff\xfe", b"[" * 60_000,
             b"{\"name\": NaN}", b"1" * 5000]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("settings", [{"dev": True}], indirect=True)
async def test_malformed_json_is_400_with_a_message_on_every_json_endpoint(admin):
    uid = await admin.user()
    gid = await admin.group([uid])
    json_endpoints = [(m, p) for m, p in body_endpoints(uid, gid) if "/pay/" not in p]
    for method, path in json_endpoints:
        for raw in MALFORMED:
            status, body = await admin.call(method, path, raw=raw)
            assert status == 400, (path, raw[:20], body)
            assert body["code"] == "bad_request" and body["message"], (path, raw[:20])


# Admin input

@pytest.mark.gen_test
async def test_malformed_ids_in_admin_paths_are_400_with_a_message(admin):
    for segment in ("abc", "0", "-1", "1.5", "99999999999999999999", "9223372036854775808",
                    "%F0%9F%98%80", "١٢٣", "1" * 5000, "01", "+1", "%201", "1%20", "007"):
        status, body = await admin.call("PUT", f"/admin/users/{segment}", {"name": "x"})
        assert (status, body["code"]) == (400, "bad_request"), segment
        status, _ = await admin.call("DELETE", f"/admin/groups/1/members/{segment}")
        assert status == 400, segment


@pytest.mark.gen_test
async def test_admin_text_must_be_storable_text(admin):
    uid = await admin.user()
    for name in ("", "   ", "\t\n", "x" * 65, "\ud800", "ok\udfffok"):
        status, body = await admin.call("PUT", f"/admin/users/{uid}",
                                        raw=json.dumps({"name": name}).encode())
        assert (status, body["code"]) == (400, "bad_request"), name
    status, body = await admin.call("POST", f"/admin/wallets/{uid}/deposit",
                                    raw=json.dumps({"amount": "1.00", "ref": "\ud800"}).encode())
    assert (status, body["code"]) == (400, "bad_request")
    assert await admin.call("PUT", f"/admin/users/{uid}", {"name": " 张三 "}) == \
        (200, {"id": uid, "name": "张三"})


@pytest.mark.gen_test
async def test_a_deposit_larger_than_a_wallet_holds_is_invalid_amount(admin, audit):
    uid = await admin.user()
    status, body = await admin.call("POST", f"/admin/wallets/{uid}/deposit",
                                    {"amount": "10000000000.00", "ref": "too-much"})
    assert (status, body["code"]) == (400, "invalid_amount")
    audit()


@pytest.mark.gen_test
async def test_an_unsupported_method_is_405_naming_the_allowed_ones(admin):
    status, body = await admin.call("GET", "/admin/users/5")
    assert (status, body["code"]) == (405, "bad_request")
    response = await admin.http.fetch(admin.base_url + "/admin/groups/5", method="PATCH",
                                      body=b"{}", raise_error=False,
                                      headers={"Authorization": f"Bearer {admin.token}"})
    assert response.code == 405 and response.headers["Allow"] == "PUT"


# Frames

@pytest.mark.gen_test
async def test_a_lone_surrogate_in_a_json_frame_is_a_bad_frame(admin, connect):
    """JSON's \\ud800 escapes make text no reply, no msgpack and no database can hold."""
    uid = await admin.user()
    gid = await admin.group([uid])
    client = await connect(uid, "rp.v1.json")
    chat = '{"op": "chat.send", "id": 1, "to_type": "group", "to_id": %d, "text": "a\\udfff"}'
    for frame in ('{"op": "ping", "id": "\\ud800"}', chat % gid):
        await client.send_raw(frame)
        assert (await client.event("error"))["code"] == "bad_frame"
    sent = await client.request("chat.send", to_type="group", to_id=gid, text="\\ud83d😀")
    assert sent["message"]["text"] == "\\ud83d😀", "escaped text and real emoji are fine"
