"""The --dev demo world (POST /dev/demo) and the dev routes being dev-only."""
import dataclasses

import pytest

from rtserver import demo


@pytest.fixture
def settings(run_settings, request):
    """This module's server runs under --dev unless a test asks for `settings` False."""
    return dataclasses.replace(run_settings, dev=getattr(request, "param", True))


@pytest.mark.gen_test
async def test_demo_creates_users_groups_and_money_once(admin, connect, audit):
    status, first = await admin.call("POST", "/dev/demo", token="")
    assert status == 200, first
    assert [(u["id"], u["name"]) for u in first["users"]] == list(demo.USERS.items())
    assert {u["balance"] for u in first["users"]} == {"1000.00"}
    assert [(g["id"], g["name"], g["members"]) for g in first["groups"]] == [
        (gid, name, members) for gid, (name, members) in demo.GROUPS.items()]

    status, second = await admin.call("POST", "/dev/demo", token="")
    assert (status, second) == (200, first), "a second set-up deposits nothing more"

    zhang = await connect(1)
    assert zhang.hello["user"] == {"id": 1, "name": "张三"}
    assert zhang.hello["balance"] == "1000.00"
    assert {(g["id"], g["members"]) for g in zhang.hello["groups"]} == {(1, 5), (2, 3)}
    audit()


@pytest.mark.gen_test
async def test_dev_token_signs_in_a_demo_user(admin, connect):
    await admin.call("POST", "/dev/demo", token="")
    status, body = await admin.call("POST", "/dev/token", {"user_id": 2}, token="")
    assert status == 200 and body["token"]
    status, body = await admin.call("POST", "/dev/token", {"user_id": "2"}, token="")
    assert (status, body["code"]) == (400, "bad_request")


@pytest.mark.gen_test
@pytest.mark.parametrize("settings", [False], indirect=True)
@pytest.mark.parametrize("path, body", [("/dev/demo", None), ("/dev/token", {"user_id": 1})])
async def test_dev_routes_are_not_found_outside_dev(admin, path, body):
    status, reply = await admin.call("POST", path, body, token="")
    assert (status, reply["code"]) == (404, "not_found")
