"""SIGTERM stops `rtserver serve` gracefully: sockets closed with 1001 and the process gone
with exit code 0."""
import asyncio

import pytest


@pytest.mark.gen_test
async def test_sigterm_closes_sockets_with_1001_and_exits_cleanly(admin, children, dial,
                                                                  settings):
    server = children.server(settings)
    await server.until_healthy()
    uid = await admin.user()
    client = await dial(server.base_url, uid)
    assert (await client.request("ping"))["ok"] is True
    server.proc.terminate()
    assert await asyncio.wait_for(client.closed, 10) == 1001
    assert await asyncio.get_running_loop().run_in_executor(None, server.proc.wait, 10) == 0
