"""The --dev sandbox gateway pays an order like a payment app: sync result now, notification later."""
import dataclasses
import json

import pytest
import tornado.httpclient

from tests.test_packets import group_with
from tests.test_payments import settle_all, third_party_packet


@pytest.fixture
def settings(run_settings):
    return dataclasses.replace(run_settings, dev=True, sandbox_delay=0.2)


async def post(url: str, body: dict):
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        url, method="POST", body=json.dumps(body), raise_error=False)
    return response.code, json.loads(response.body)


@pytest.mark.gen_test
async def test_sandbox_pays_then_notifies_and_the_packet_goes_from_2_to_1(
        admin, connect, base_url, ctx, audit):
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await third_party_packet(clients[0], gid, number=1, amount="0.66")
    status, sync = await post(base_url + "/sandbox/pay",
                              {"out_trade_no": created["order"]["out_trade_no"]})
    assert status == 200 and sync["status"] == "SUCCESS"
    paid = await clients[0].request("packet.sync_paid", rp_id=created["rp_id"], result=sync)
    assert paid["pay_status"] == 2
    got = await clients[1].request("packet.grab", rp_id=created["rp_id"])
    assert got["into_account"] is False
    await clients[1].event("packet.grabbed")
    settled = None
    while settled is None:  # the notification arrives after --sandbox-delay
        await settle_all(ctx)
        settled = next(iter(clients[1].named("packet.settled")), None)
    assert settled["money"] == "0.66"
    assert (await clients[1].request("wallet.get"))["balance"] == "1.66"
    audit()


@pytest.mark.gen_test
async def test_sandbox_gateway_refuses_unknown_orders(admin, base_url):
    status, body = await post(base_url + "/sandbox/pay", {"out_trade_no": "RP0Tnone"})
    assert status == 404 and body["code"] == "not_found"
    status, body = await post(base_url + "/sandbox/pay", {"out_trade_no": 5})
    assert status == 400
