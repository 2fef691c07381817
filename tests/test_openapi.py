"""`GET /openapi.json` describes every HTTP endpoint, and schemathesis holds the server to it."""
import asyncio
import dataclasses
import json
import pathlib
import re
import sys

import pytest

from handlers.base import BaseHandler
from server.app import make_app

CONFIG = pathlib.Path(__file__).with_name("schemathesis.toml")
# Served, but not part of docs/protocol.md's HTTP contract: development helpers of --dev.
UNDOCUMENTED = {"/dev/demo", "/sandbox/pay"}


@pytest.fixture
def settings(run_settings):
    return dataclasses.replace(run_settings, dev=True)  # /dev/token answers


def documented(path: str) -> str:
    """A route's regex as an OpenAPI path: `/admin/users/([^/]+)` → `/admin/users/{}`."""
    return re.sub(r"\([^)]*\)", "{}", path).replace("\\", "")


@pytest.mark.gen_test
async def test_every_http_endpoint_is_in_the_document(http_client, base_url, ctx):
    response = await http_client.fetch(base_url + "/openapi.json")
    assert response.headers["Content-Type"].startswith("application/json")
    doc = json.loads(response.body)
    assert doc["openapi"].startswith("3.")
    paths = {re.sub(r"\{[^}]*\}", "{}", p) for p in doc["paths"]}
    routes = {documented(rule.matcher.regex.pattern.rstrip("$"))
              for rule in make_app(ctx).wildcard_router.rules
              if isinstance(rule.target, type) and issubclass(rule.target, BaseHandler)}
    pay = {p for p in routes if p.startswith("/pay/notify/")}
    routes = (routes - pay) | {f"/pay/notify/{p}" for p in ("alipay", "wechat", "unionpay",
                                                            "sandbox")}
    assert routes - UNDOCUMENTED == paths
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            error = op["responses"]["413"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}, (method, path)


@pytest.mark.gen_test(timeout=120)
async def test_schemathesis_finds_nothing(base_url, settings, http_server):
    """Generated requests (valid and not) at every endpoint: no 500, every answer as documented."""
    st = pathlib.Path(sys.executable).with_name("st")
    run = await asyncio.create_subprocess_exec(
        str(st), "--config-file", str(CONFIG), "run", base_url + "/openapi.json",
        "--header", f"Authorization: Bearer {settings.admin_token}",
        "--no-color", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await run.communicate()  # the server answers on this loop meanwhile
    assert run.returncode == 0, output.decode()[-20_000:]
