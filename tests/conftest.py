"""Fixtures: a database and Redis namespace of this run's own, the app, and clients.

The run's database and key prefix are made once and removed at the end; every test gets a new
IOLoop, so pools and Redis clients are opened per test on that loop (pytest-tornado).
"""
import asyncio
import dataclasses
import itertools
import os
import secrets
import subprocess
import sys
import urllib.parse

import pymysql
import pytest
import redis as sync_redis

from rtserver import auth
from server.app import make_app
from rtserver.config import Settings
from server.context import close_context, open_context
from storage.db import MysqlUrl
from storage.migrate import migrate
from storage.nodes import roll_key
from tests import asyncapi_check
from tests.client import Admin, Client
from tests.processes import Children
from tests.providers import Providers

RUN = secrets.token_hex(4)
MYSQL_URL = os.environ.get("RTSERVER_MYSQL_URL", "mysql://root@127.0.0.1:3306/rtserver")
REDIS_URL = os.environ.get("RTSERVER_REDIS_URL", "redis://127.0.0.1:6379/0")
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens there


@pytest.fixture(autouse=True)
def frames_as_documented():
    """Fail a test that received a frame docs/asyncapi.yaml does not describe, even where the
    test itself never looked at it (tests/client.py checks every frame as it arrives)."""
    asyncapi_check.FOUND.clear()
    yield
    found, asyncapi_check.FOUND[:] = list(asyncapi_check.FOUND), []
    if found:
        pytest.fail(f"{len(found)} frame(s) not as docs/asyncapi.yaml says; the first:\n"
                    f"{found[0]}", pytrace=False)


def _with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def providers():
    """Payment providers with keys of this run's own."""
    return Providers.generate(sandbox_secret="test-sandbox-secret-" + secrets.token_hex(16))


@pytest.fixture(scope="session")
def run_settings(providers, tmp_path_factory):
    """This run's own database (migrated through the real CLI) and Redis prefix; removed after."""
    settings = Settings(
        mysql_url=_with_database(MYSQL_URL, f"rtserver_test_{RUN}"),
        redis_url=REDIS_URL,
        redis_prefix=f"rtt:{RUN}:",
        token_secret="test-token-secret-" + secrets.token_hex(16),
        admin_token="test-admin-token-" + secrets.token_hex(16),
        sandbox_secret=providers.sandbox_secret,
        jobs="off",
        rate_limit=0,
        # Nothing leaves this machine: a provider's API is a closed port here, unless a test
        # starts its stand-in (tests/standins) and names it.
        wechat_api_base=NOWHERE, alipay_gateway=NOWHERE + "/gateway.do", unionpay_gateway=NOWHERE,
        **providers.settings(tmp_path_factory.mktemp("keys")),
    )
    migrate(settings.mysql_url)
    yield settings
    u = MysqlUrl.parse(settings.mysql_url)
    conn = pymysql.connect(host=u.host, port=u.port, user=u.user, password=u.password)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{u.database}`")
    conn.close()
    r = sync_redis.from_url(REDIS_URL)
    for key in r.scan_iter(match=settings.redis_prefix + "*", count=1000):
        r.delete(key)
    r.close()


@pytest.fixture
def settings(run_settings, request):
    """This run's settings with the flags a test names: `@pytest.mark.parametrize("settings",
    [{"rate_limit": 50}], indirect=True)`."""
    return dataclasses.replace(run_settings, **getattr(request, "param", {}))


@pytest.fixture
def ctx(io_loop, settings, http_port):
    """The in-process app's context; its settings name the port the app is served on."""
    served = dataclasses.replace(settings, port=http_port)
    context = io_loop.run_sync(lambda: open_context(served))
    yield context
    io_loop.run_sync(lambda: close_context(context), timeout=60)  # a hang fails this test alone


@pytest.fixture
def app(ctx):
    return make_app(ctx)


IDS = itertools.count(1000)


@pytest.fixture
def admin(http_server, base_url, settings):
    return Admin(base_url, settings.admin_token, IDS)


@pytest.fixture
def connect(http_server, base_url, settings):
    """Open authenticated sockets; all are closed when the test ends."""
    opened = []

    async def open_as(user_id: int, subprotocol: str = "rp.v1.msgpack") -> Client:
        client = await Client.open(base_url, auth.issue_token(settings.token_secret, user_id),
                                   subprotocol)
        opened.append(client)
        return client

    yield open_as
    for client in opened:
        client.close()


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    """Run the real `rtserver` command against this run's database and Redis."""
    env = dict(os.environ, RTSERVER_MYSQL_URL=settings.mysql_url,
               RTSERVER_REDIS_URL=settings.redis_url, RTSERVER_REDIS_PREFIX=settings.redis_prefix,
               RTSERVER_TOKEN_SECRET=settings.token_secret,
               RTSERVER_ADMIN_TOKEN=settings.admin_token)
    return subprocess.run([sys.executable, "-m", "server.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def audit(settings):
    """Check every fen with `rtserver audit`; call at the end of a money test."""
    def check():
        result = run_cli(settings, "audit")
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout
    return check


@pytest.fixture
def children(tmp_path, run_settings):
    """Child processes of one test (servers, redis-server, jobs); killed when it ends."""
    with Children(tmp_path) as spawned:
        yield spawned
    # Killed, they never left the roll of nodes: the next test's nodes would count them as
    # killed in front of its clients, and tell them to `resync`.
    with sync_redis.from_url(run_settings.redis_url) as r:
        r.delete(roll_key(run_settings.redis_prefix))


@pytest.fixture
def dial(io_loop, settings):
    """Open sockets to a server process; all are closed when the test ends."""
    opened = []

    async def open_as(base_url: str, user_id: int) -> Client:
        client = await Client.open(base_url, auth.issue_token(settings.token_secret, user_id))
        opened.append(client)
        return client

    yield open_as
    for client in opened:
        client.close()
    io_loop.run_sync(lambda: asyncio.gather(*(c.reader for c in opened), return_exceptions=True))
