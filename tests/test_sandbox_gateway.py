"""The --dev sandbox gateway pays an order like a payment app: sync result now, notification later."""
import asyncio
import dataclasses
import json
import logging

import pytest
import tornado.httpclient

from rtserver.config import Settings
from rtserver.sandbox import own_notify_url

from tests.test_packets import group_with
from tests.test_payments import settle_all, third_party_packet


@pytest.fixture
def settings(run_settings):
    return dataclasses.replace(run_settings, dev=True, sandbox_delay=0.2)


async def post(url: str, body: dict, headers: dict | None = None):
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        url, method="POST", body=json.dumps(body), headers=headers, raise_error=False)
    return response.code, json.loads(response.body)


async def paid(client, rp_id: int) -> None:
    """Wait until the notification has paid the packet."""
    for _ in range(100):
        if (await client.request("packet.detail", rp_id=rp_id))["packet"]["pay_status"] == 1:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"packet {rp_id} was never paid")


def notifications(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "tornado.access" and "/pay/notify/sandbox" in r.getMessage()]


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


@pytest.mark.gen_test(timeout=20)
async def test_five_pays_of_one_order_are_one_trade_one_notification_and_one_payment(
        admin, connect, base_url, ctx, audit, caplog):
    caplog.set_level(logging.INFO, logger="tornado.access")
    gid, users, clients = await group_with(admin, connect, 2, "1.00")
    created = await third_party_packet(clients[0], gid, number=1, amount="4.00")
    order = {"out_trade_no": created["order"]["out_trade_no"]}
    answers = await asyncio.gather(*(post(base_url + "/sandbox/pay", order) for _ in range(5)))
    assert {status for status, _ in answers} == {200}
    assert len({json.dumps(sync, sort_keys=True) for _, sync in answers}) == 1, "one trade"
    await paid(clients[0], created["rp_id"])
    again = await post(base_url + "/sandbox/pay", {**order, "status": "FAILED"})
    assert again == answers[0], "paid already: the same trade, whatever is asked"
    await asyncio.sleep(3 * ctx.settings.sandbox_delay)  # any further notification would be in
    assert len(notifications(caplog)) == 1
    assert (await clients[0].request("wallet.get"))["balance"] == "1.00", "no money came back"
    got = await clients[1].request("packet.grab", rp_id=created["rp_id"])
    assert (got["money"], got["into_account"]) == ("4.00", True)
    audit()


@pytest.mark.gen_test(timeout=20)
async def test_a_forged_host_header_still_gets_the_notification_to_the_server_itself(
        admin, connect, base_url, caplog):
    caplog.set_level(logging.INFO, logger="tornado.access")
    trapped = []  # whoever the forged Host names hears nothing

    def caught(reader, writer):
        trapped.append(writer.get_extra_info("peername"))
        writer.close()

    trap = await asyncio.start_server(caught, "127.0.0.1", 0)
    trap_port = trap.sockets[0].getsockname()[1]
    try:
        gid, users, clients = await group_with(admin, connect, 2, "1.00")
        created = await third_party_packet(clients[0], gid, number=1, amount="1.00")
        status, _ = await post(base_url + "/sandbox/pay",
                               {"out_trade_no": created["order"]["out_trade_no"]},
                               {"Host": f"127.0.0.1:{trap_port}"})
        assert status == 200
        await paid(clients[0], created["rp_id"])
        for _ in range(40):  # the access line is written once the answer is, after the payment
            if notifications(caplog):
                break
            await asyncio.sleep(0.05)
        assert len(notifications(caplog)) == 1 and trapped == []
    finally:
        trap.close()


@pytest.mark.parametrize("address, url", [
    ("127.0.0.1", "http://127.0.0.1:8123/pay/notify/sandbox"),
    ("0.0.0.0", "http://127.0.0.1:8123/pay/notify/sandbox"),
    ("", "http://127.0.0.1:8123/pay/notify/sandbox"),
    ("::", "http://[::1]:8123/pay/notify/sandbox"),
    ("::1", "http://[::1]:8123/pay/notify/sandbox"),
    ("10.1.2.3", "http://10.1.2.3:8123/pay/notify/sandbox"),
    ("localhost", "http://localhost:8123/pay/notify/sandbox"),
])
def test_the_notification_goes_to_the_listening_address(address, url):
    assert own_notify_url(Settings(address=address, port=8123)) == url
