"""The JS client package (clients/js), tested with node's own test runner against real servers.

Two `rtserver serve` processes on this run's database and Redis, both with --dev (POST
/dev/token): one with a rate limit low enough for a test to go over it, one whose dev tokens
last a few seconds; and the command line of a third, which a node test restarts. `node --test`
runs clients/js/test/*.test.js against them; this test fails with node's output when any of
them does. And the page's way to the package: its modules, only.
"""
import asyncio
import json
import pathlib
import re
import shutil
import sys

import pytest
import tornado.httpclient

from tests.processes import rtserver_env

ROOT = pathlib.Path(__file__).resolve().parent.parent
NODE_TESTS = sorted((ROOT / "clients" / "js" / "test").glob("*.test.js"))
RATE_LIMIT = 10  # requests a second: the node tests send three times that at once
SHORT_TOKEN = 3  # seconds a token of the second server's /dev/token lasts
NODE_TIMEOUT = 240  # seconds the whole node run may take; it takes some 15


@pytest.mark.skipif(shutil.which("node") is None,
                    reason="no node on this machine (apt-get install nodejs)")
@pytest.mark.skipif(not (ROOT / "node_modules" / "@rtserver" / "client").exists(),
                    reason="clients/js is not installed: `make install` (npm) installs it")
@pytest.mark.gen_test(timeout=NODE_TIMEOUT + 30)
async def test_the_js_client_against_real_servers(settings, children):
    server = children.server(settings, "--dev", f"--rate-limit={RATE_LIMIT}")
    short = children.server(settings, "--dev", f"--dev-token-ttl={SHORT_TOKEN}")
    await asyncio.gather(server.until_healthy(), short.until_healthy())
    # A third server the node tests start, stop and start again themselves (own_server.js).
    own = [sys.executable, "-m", "server.cli", "serve", "--dev", "--jobs=off"]
    env = dict(rtserver_env(settings), RTSERVER_URL=server.base_url,
               RTSERVER_SHORT_TOKEN_URL=short.base_url, RTSERVER_RATE_LIMIT=str(RATE_LIMIT),
               RTSERVER_SERVE=json.dumps(own))
    # Node 20 has its WebSocket behind this flag; later versions have it on by default.
    node = await asyncio.create_subprocess_exec(
        "node", "--experimental-websocket", "--test", *map(str, NODE_TESTS), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(node.communicate(), NODE_TIMEOUT)
    finally:
        if node.returncode is None:
            node.kill()
    report = output.decode(errors="replace")
    assert node.returncode == 0, report
    # Here every node test has what it needs: none may skip.
    assert re.search(r"^# pass [1-9]", report, re.M), report
    assert "# fail 0" in report and "# skipped 0" in report, report


@pytest.mark.gen_test
async def test_the_page_imports_the_package_from_its_src_and_nothing_beside_it(http_server,
                                                                                base_url):
    http = tornado.httpclient.AsyncHTTPClient()
    served = await http.fetch(base_url + "/vendor/rtserver-client/index.js")
    assert served.body == (ROOT / "clients" / "js" / "src" / "index.js").read_bytes()
    assert served.headers["Content-Type"] == "text/javascript"
    for outside in ("/vendor/rtserver-client/%2e%2e/package.json",
                    "/vendor/rtserver-client/%2e%2e/test/helpers.js"):
        refused = await http.fetch(base_url + outside, raise_error=False)
        assert refused.code in (403, 404), outside
