"""Who may call what: every socket op and every HTTP endpoint, for every kind of caller, and what
each refusal answers. The tables are the specification; the test runs them against real packets.
"""
import json

import pytest
import tornado.httpclient
import tornado.websocket

from rtserver import auth
from tests.test_packets import create_and_pay

# The people around one group G: its sender and a member; a personal packet's recipient (not in
# G); a stranger (in no group); a member of another group H.
ROLES = ("stranger", "other_group", "recipient", "member", "sender")  # the order they try


def only(*allowed: str, others: str = "forbidden", answer: str = "ok") -> dict:
    return {role: answer if role in allowed else others for role in ROLES}


def everyone(answer: str = "ok") -> dict:
    return {role: answer for role in ROLES}


# op, arguments (strings in capitals name things of the world below), what each role gets:
# "ok" or a grab's result for a success, else the failure code.
SOCKET = [
    ("ping", {}, everyone()),
    ("wallet.get", {}, everyone()),
    ("packet.list", {"box": "received"}, everyone()),
    ("chat.send", {"to_type": "group", "to_id": "G", "text": "hi"}, only("sender", "member")),
    ("chat.history", {"to_type": "group", "to_id": "G"}, only("sender", "member")),
    ("chat.history", {"to_type": "group", "to_id": "H"}, only("other_group")),
    # No friendship in rtserver: any provisioned user may talk to, or send a packet to, any other.
    ("chat.send", {"to_type": "user", "to_id": "SENDER", "text": "hi"},
     {**everyone(), "sender": "bad_request"}),
    ("packet.create", {"type": 3, "for_id": "G", "number": 1, "amount": "0.01",
                       "pay_type": "sandbox"}, only("sender", "member")),
    ("packet.create", {"type": 1, "for_id": "RECIPIENT", "amount": "0.01",
                       "pay_type": "sandbox"}, {**everyone(), "recipient": "forbidden"}),
    ("packet.pay", {"rp_id": "UNPAID"}, only("sender")),
    ("packet.sync_paid", {"rp_id": "THIRD_PARTY", "result": {}}, only("sender")),
    ("packet.detail", {"rp_id": "GROUP_PACKET"}, only("sender", "member")),
    ("packet.detail", {"rp_id": "PERSONAL_PACKET"}, only("sender", "recipient")),
    ("packet.grab", {"rp_id": "GROUP_PACKET"}, only("sender", "member")),
    ("packet.grab", {"rp_id": "PERSONAL_PACKET"}, only("recipient")),
    ("packet.detail", {"rp_id": 999_999_999}, everyone("not_found")),
    ("packet.grab", {"rp_id": 999_999_999}, everyone("not_found")),
    ("packet.pay", {"rp_id": 999_999_999}, everyone("not_found")),
    # Last: from here on each one's balance payments take the PIN.
    ("wallet.set_pin", {"pin": "123456"}, everyone()),
]

# Who calls an HTTP endpoint, by what they send in Authorization.
CALLERS = ("nobody", "wrong token", "user token", "admin token")


def callers(*allowed: str, answer: str, others: str) -> dict:
    return {caller: answer if caller in allowed else others for caller in CALLERS}


ADMIN_ONLY = {"others": "401 unauthorized"}
# method, path, body, what each caller gets: "STATUS" or "STATUS CODE" for a JSON error.
HTTP = [
    ("PUT", "/admin/users/NEW", {"name": "new"}, callers("admin token", answer="200",
                                                         **ADMIN_ONLY)),
    ("PUT", "/admin/groups/NEW", {"name": "new", "members": ["SENDER"]},
     callers("admin token", answer="200", **ADMIN_ONLY)),
    ("POST", "/admin/groups/G/members", {"user_ids": ["STRANGER"]},
     callers("admin token", answer="200", **ADMIN_ONLY)),
    ("DELETE", "/admin/groups/G/members/STRANGER", None,
     callers("admin token", answer="200", **ADMIN_ONLY)),
    ("POST", "/admin/wallets/STRANGER/deposit", {"amount": "1.00", "ref": "auth-table"},
     callers("admin token", answer="200", **ADMIN_ONLY)),
    ("DELETE", "/admin/wallets/SENDER/pin", None, callers("admin token", answer="200",
                                                          **ADMIN_ONLY)),
    ("POST", "/dev/token", {"user_id": "STRANGER"}, callers(answer="404 not_found",
                                                            others="404 not_found")),
    # Providers prove themselves by signature, not by token: unsigned is refused, whoever sends.
    *[("POST", f"/pay/notify/{provider}", {}, callers(answer=refusal, others=refusal))
      for provider, refusal in (("alipay", "400"), ("wechat", "400 FAIL"), ("unionpay", "400"),
                                ("sandbox", "400 bad_request"))],
    ("GET", "/healthz", None, callers(answer="200", others="200")),
    ("GET", "/metrics", None, callers(answer="200", others="200")),
    ("GET", "/openapi.json", None, callers(answer="200", others="200")),
    ("GET", "/ws", None, callers("user token", answer="101", others="401")),
]


async def make_world(admin, connect) -> dict:
    """Group G of sender and member, group H of other_group, and the sender's packets."""
    people = dict(zip(ROLES, await admin.users(len(ROLES))))
    g = await admin.group([people["sender"], people["member"]])
    h = await admin.group([people["other_group"]])
    await admin.deposit(people["sender"], "10.00")
    sender = await connect(people["sender"])
    world = {role.upper(): uid for role, uid in people.items()}
    world.update(
        G=g, H=h,
        GROUP_PACKET=await create_and_pay(sender, type=2, for_id=g, number=2, amount="0.01"),
        PERSONAL_PACKET=await create_and_pay(sender, type=1, for_id=people["recipient"],
                                             amount="0.01"),
        UNPAID=(await sender.request("packet.create", type=2, for_id=g, number=1,
                                     amount="0.01", pay_type="balance"))["rp_id"],
        THIRD_PARTY=(await sender.request("packet.create", type=2, for_id=g, number=1,
                                          amount="0.01", pay_type="sandbox"))["rp_id"],
    )
    return world


def resolve(value, world: dict, fresh):
    """Put the world's ids in place of the capitalised names of a table row."""
    if isinstance(value, dict):
        return {k: resolve(v, world, fresh) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, world, fresh) for v in value]
    if value == "NEW":
        return fresh()
    return world.get(value, value) if isinstance(value, str) else value


def resolve_path(path: str, world: dict, fresh) -> str:
    return "/".join(str(resolve(part, world, fresh)) for part in path.split("/"))


async def socket_outcome(client, op: str, args: dict) -> str:
    reply = await client.request(op, **args)
    if reply["ok"]:
        return reply.get("result", "ok")
    assert reply["message"], reply
    return reply["code"]


async def http_outcome(base_url: str, method: str, path: str, body, authorization) -> str:
    headers = {"Authorization": authorization} if authorization else {}
    if path == "/ws":
        request = tornado.httpclient.HTTPRequest(base_url.replace("http", "ws", 1) + path,
                                                 headers=headers)
        try:
            (await tornado.websocket.websocket_connect(request)).close()
            return "101"
        except tornado.httpclient.HTTPClientError as refused:
            return str(refused.code)
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + path, method=method, headers=headers, raise_error=False,
        body=None if method in ("GET", "DELETE") else json.dumps(body).encode(),
        allow_nonstandard_methods=True)
    if response.code < 400 or not response.headers.get("Content-Type", "").startswith(
            "application/json"):
        return str(response.code)
    error = json.loads(response.body)
    assert error["message"], error
    return f"{response.code} {error['code']}"


@pytest.mark.gen_test(timeout=60)
async def test_who_may_call_what(admin, connect, base_url, settings):
    world = await make_world(admin, connect)
    clients = {role: await connect(world[role.upper()]) for role in ROLES}

    fresh = admin.unused_id
    seen = {}
    for op, args, expected in SOCKET:
        for role in ROLES:
            outcome = await socket_outcome(clients[role], op, resolve(args, world, fresh))
            seen[(op, json.dumps(args), role)] = (outcome, expected[role])

    user_token = auth.issue_token(settings.token_secret, world["STRANGER"])
    authorization = {"nobody": None, "wrong token": "Bearer wrong",
                     "user token": f"Bearer {user_token}",
                     "admin token": f"Bearer {settings.admin_token}"}
    for method, path, body, expected in HTTP:
        for caller in CALLERS:
            outcome = await http_outcome(base_url, method, resolve_path(path, world, fresh),
                                         resolve(body, world, fresh), authorization[caller])
            seen[(method, path, caller)] = (outcome, expected[caller])

    wrong = {row: f"got {got}, table says {want}" for row, (got, want) in seen.items()
             if got != want}
    assert not wrong, "\n".join(f"{row}: {why}" for row, why in wrong.items())
