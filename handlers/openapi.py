"""`GET /openapi.json`: every HTTP endpoint of docs/protocol.md as an OpenAPI 3 document.

The test suite runs schemathesis against the live server with this document, so what it says
is what the handlers do: keep the two together.
"""
import json

from handlers.admin import (EVENT_STATES, MAX_EVENTS, MAX_ID, MAX_MEMBERS, MAX_NAME, MAX_REASON,
                            MAX_REF)
from handlers.base import MAX_BODY, BaseHandler

CODES = ["bad_request", "bad_frame", "unknown_op", "unauthorized", "forbidden", "not_found",
         "invalid_amount", "invalid_number", "insufficient_balance", "already_paid", "not_paid",
         "rate_limited", "unavailable", "internal", "limit_exceeded", "frozen"]
MONEY = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "example": "12.34"}
AMOUNT = {"type": "string", "example": "10.00",
          "pattern": r"^([1-9][0-9]{0,9}\.[0-9]{2}|0\.(0[1-9]|[1-9][0-9]))$",
          "description": "more than 0, a decimal with exactly two places"}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
IDS = {"type": "array", "items": ID, "maxItems": MAX_MEMBERS}
TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_NAME, "pattern": r"\S"}
ERROR = {"type": "object", "required": ["code", "message"],
         "properties": {"code": {"type": "string", "enum": CODES},
                        "message": {"type": "string"}}}
WHY = {400: "malformed or invalid body or path", 401: "admin token missing or wrong",
       403: "the account is frozen (`frozen`)", 404: "no such thing", 405: "method not allowed",
       409: "not enough money in the wallet (`insufficient_balance`)",
       413: f"body larger than {MAX_BODY // 1024} KiB", 500: "a bug", 503: "a dependency is down"}
# Every endpoint may answer these: the base handler's limits and failures.
ALWAYS = (405, 413, 500, 503)


def obj(required: list[str], **properties) -> dict:
    return {"type": "object", "required": required, "properties": properties}


def json_content(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def text_content(example: str | None = None) -> dict:
    return {"text/plain": {"schema": {"type": "string", **given("example", example)}}}


def given(key: str, value) -> dict:
    """`{key: value}`, or nothing when there is no value: for optional parts of the document."""
    return {key: value} if value else {}


def errors(*statuses: int) -> dict:
    """The error answers: `{"code", "message"}` with a docs/protocol.md failure code."""
    error = json_content({"$ref": "#/components/schemas/Error"})
    return {str(s): {"description": WHY[s], "content": error}
            for s in sorted(set(statuses + ALWAYS))}


def operation(name: str, summary: str, ok: dict, *failures: int, body: dict | None = None,
              params: list | None = None, admin: bool = False) -> dict:
    op = {"operationId": name, "summary": summary,  # the answers named win over the errors
          "responses": {**errors(*failures, *((401,) if admin else ())), **ok}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": body}
    if params:
        op["parameters"] = params
    if admin:
        op["security"] = [{"adminToken": []}]
    return op


def path_id(name: str, what: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": what, "schema": ID}


def answer(description: str, content: dict | None = None) -> dict:
    return {"description": description, **given("content", content)}


def ok_json(schema: dict, description: str = "done", links: dict | None = None) -> dict:
    return {"200": {**answer(description, json_content(schema)), **given("links", links)}}


# A member just added can be removed: the first member of the group answered.
MEMBER_LINK = {"removeMember": {"operationId": "removeMember", "parameters": {
    "gid": "$response.body#/id", "uid": "$response.body#/members/0"}}}
USER = obj(["id", "name"], id=ID, name={"type": "string"})
MOVEMENT = json_content(obj(["amount", "ref"], amount=AMOUNT, ref={**TEXT, "maxLength": MAX_REF}))
GROUP = obj(["id", "members"], id=ID, name={"type": "string"}, members=IDS)
EVENT_ID = {"type": "string", "pattern": "^[1-9][0-9]{0,15}$", "example": "42"}
OUTBOUND_EVENT = obj(
    ["id", "type", "time", "data", "state", "tries", "last_error"], id=EVENT_ID,
    type={"type": "string", "example": "packet.grabbed"}, time={"type": "integer"},
    data={"type": "object", "required": ["rp_id"]},
    state={"type": "string", "enum": list(EVENT_STATES)}, tries={"type": "integer"},
    last_error={"type": "string", "nullable": True})


def query(name: str, what: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": what, "schema": schema}


def admin_paths() -> dict:
    uid, gid = path_id("uid", "user id"), path_id("gid", "group id")
    return {
        "/admin/users/{uid}": {"put": operation(
            "putUser", "Create or rename a user", ok_json(USER), 400, admin=True, params=[uid],
            body=json_content(obj(["name"], name=TEXT)))},
        "/admin/groups/{gid}": {"put": operation(
            "putGroup", "Create or rename a group and make its members exactly these users",
            ok_json(GROUP), 400, admin=True, params=[gid],
            body=json_content(obj(["name"], name=TEXT, members=IDS)))},
        "/admin/groups/{gid}/members": {"post": operation(
            "addMembers", "Add users to a group", ok_json(GROUP, links=MEMBER_LINK), 400, 404,
            admin=True, params=[gid], body=json_content(obj(["user_ids"], user_ids=IDS)))},
        "/admin/groups/{gid}/members/{uid}": {"delete": operation(
            "removeMember", "Remove a user from a group", ok_json(GROUP), 400, 404, admin=True,
            params=[gid, uid])},
        "/admin/users/{uid}/frozen": {"put": operation(
            "setFrozen", "Freeze or thaw a user's account: a frozen user still connects and "
            "reads, but may not create, pay or grab packets, nor withdraw",
            ok_json(obj(["id", "frozen", "reason"], id=ID, frozen={"type": "boolean"},
                        reason={"type": "string"})), 400, 404, admin=True, params=[uid],
            body=json_content(obj(["frozen"], frozen={"type": "boolean"},
                                  reason={"type": "string", "maxLength": MAX_REASON})))},
        "/admin/wallets/{uid}/deposit": {"post": operation(
            "deposit", "Add money to a wallet, once per ref",
            ok_json(obj(["balance"], balance=MONEY)), 400, 404, admin=True, params=[uid],
            body=MOVEMENT)},
        "/admin/wallets/{uid}/withdraw": {"post": operation(
            "withdraw", "Take money out of a wallet (提现), once per ref, if it holds enough",
            ok_json(obj(["balance"], balance=MONEY)), 400, 403, 404, 409, admin=True,
            params=[uid], body=MOVEMENT)},
        "/admin/wallets/{uid}/pin": {"delete": operation(
            "removePin", "Remove a user's payment password and its lock (after the chat app's "
            "own identity check)", ok_json(obj(["has_pin"], has_pin={"type": "boolean"})),
            400, 404, admin=True, params=[uid])},
        "/admin/events": {"get": operation(
            "listEvents", "Outbound events (--events-url) in a state, oldest first: the failed "
            "ones are those not delivered within --events-retry-for",
            ok_json(obj(["events"], events={"type": "array", "items": OUTBOUND_EVENT})), 400,
            admin=True, params=[
                query("state", "pending, delivered or failed (default)",
                      {"type": "string", "enum": list(EVENT_STATES)}),
                query("after", "a page from after this event id", EVENT_ID),
                query("limit", f"at most this many (1 to {MAX_EVENTS}, default 100)",
                      {"type": "integer", "minimum": 1, "maximum": MAX_EVENTS})])},
        "/admin/events/replay": {"post": operation(
            "replayEvents", "Send failed outbound events again, with the same ids, for another "
            "--events-retry-for: those named, or every failed one",
            ok_json(obj(["replayed"], replayed={"type": "integer", "minimum": 0})), 400,
            admin=True, body=json_content({**obj([], ids={
                "type": "array", "items": EVENT_ID, "minItems": 1, "maxItems": MAX_EVENTS}),
                "additionalProperties": False}))},
    }


def webhook(provider: str, summary: str, body: dict, ok: dict, headers: list | None = None):
    refused = answer("a bad signature, an unknown order or a wrong amount: nothing changed",
                     {**text_content(), **json_content({"type": "object"})})
    return {f"/pay/notify/{provider}": {"post": {
        **operation(f"notify_{provider}", summary, {**ok, "400": refused}, 404, body=body,
                    params=headers),
        "description": "Answered the way the provider expects; 404 when the provider is not "
                       "configured on this server."}}}


def form(required: list[str], *optional: str) -> dict:
    fields = {name: {"type": "string"} for name in required + list(optional)}
    return {"application/x-www-form-urlencoded": {"schema": obj(required, **fields)}}


def header(name: str) -> dict:
    return {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}


def webhook_paths() -> dict:
    no_content = {"204": answer("recorded (or recorded before)")}
    return {
        **webhook("alipay", "Alipay asynchronous notification (RSA2 over the sorted fields)",
                  form(["out_trade_no", "trade_no", "total_amount", "trade_status", "app_id",
                        "sign", "sign_type"], "notify_type", "notify_time", "notify_id"),
                  {"200": answer("recorded (or recorded before)", text_content("success"))}),
        **webhook("wechat", "WeChat Pay v3 notification (AEAD_AES_256_GCM resource)",
                  json_content(obj(["resource"], id={"type": "string"},
                                   event_type={"type": "string"},
                                   resource=obj(["ciphertext", "nonce"],
                                                algorithm={"type": "string"},
                                                ciphertext={"type": "string"},
                                                nonce={"type": "string"},
                                                associated_data={"type": "string"}))),
                  no_content,
                  [header(h) for h in ("Wechatpay-Timestamp", "Wechatpay-Nonce",
                                       "Wechatpay-Signature", "Wechatpay-Serial")]),
        **webhook("unionpay", "UnionPay gateway notification (RSA-SHA256)",
                  form(["orderId", "txnAmt", "respCode", "queryId", "signature"]),
                  {"200": answer("recorded (or recorded before)", text_content("ok"))}),
        **webhook("sandbox", "The built-in sandbox provider's notification",
                  json_content(obj(["out_trade_no", "trade_no", "amount", "status"],
                                   out_trade_no={"type": "string"},
                                   trade_no={"type": "string"}, amount=AMOUNT,
                                   status={"type": "string", "enum": ["SUCCESS", "FAILED"]})),
                  no_content, [header("X-Sandbox-Signature")]),
    }


def other_paths() -> dict:
    health = obj(["ok", "mysql", "redis"], ok={"type": "boolean"}, mysql={"type": "boolean"},
                 redis={"type": "boolean"})
    return {
        "/dev/token": {"post": operation(
            "devToken", "Issue a user token (only under --dev; 404 otherwise)",
            ok_json(obj(["token"], token={"type": "string"})), 400, 404,
            body=json_content(obj(["user_id"], user_id=ID)))},
        "/healthz": {"get": operation(
            "health", "Whether MariaDB and Redis answer",
            {"200": answer("both answer", json_content(health)),
             "503": answer("one does not", json_content(health))})},
        "/metrics": {"get": operation(
            "metrics", "Prometheus metrics",
            {"200": answer("Prometheus text format", text_content())})},
        "/openapi.json": {"get": operation(
            "openapi", "This document",
            {"200": answer("OpenAPI 3", json_content({"type": "object"}))})},
        "/asyncapi.json": {"get": operation(
            "asyncapi", "The WebSocket protocol (GET /ws) as an AsyncAPI 3 document",
            {"200": answer("AsyncAPI 3", json_content(
                obj(["asyncapi"], asyncapi={"type": "string", "enum": ["3.0.0"]})))})},
    }


def document() -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "rtserver", "version": "1",
                 "description": "Red packets for chat apps: the HTTP side of docs/protocol.md. The "
                                "WebSocket `GET /ws?token=TOKEN` carries everything else."},
        "paths": {**admin_paths(), **webhook_paths(), **other_paths()},
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer",
                                               "description": "--admin-token"}},
        },
    }


DOCUMENT = json.dumps(document(), ensure_ascii=False, indent=1)


class OpenApiHandler(BaseHandler):
    def get(self):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(DOCUMENT)


default_handlers = [(r"/openapi.json", OpenApiHandler)]
