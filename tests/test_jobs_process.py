"""`rtserver jobs` as processes of their own: two at once refund an expired packet exactly once,
and each stops cleanly on SIGTERM."""
import asyncio
import dataclasses
import time

import pytest

from tests.test_packets import cents, create_and_pay, group_with

# Seconds, fixed at payment (so the packets are paid through this test's own app). Expiry counts
# whole seconds from the second of payment: with 3, the grab below has two seconds at least.
TTL = 3


@pytest.fixture
def settings(run_settings):
    return dataclasses.replace(run_settings, packet_ttl=TTL)


async def until_balance(client, fen: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while cents((await client.request("wallet.get"))["balance"]) != fen:
        assert time.monotonic() < deadline, "the expired packets were not refunded"
        await asyncio.sleep(0.1)


@pytest.mark.gen_test
async def test_two_job_processes_refund_expired_packets_exactly_once(settings, admin, connect,
                                                                     children, ctx, audit):
    gid, users, clients = await group_with(admin, connect, 3, "10.00")
    sender = clients[0]
    rp_ids = [await create_and_pay(sender, type=3, for_id=gid, number=2, amount="3.00")]
    got = await clients[1].request("packet.grab", rp_id=rp_ids[0])
    assert got["result"] == "ok", got
    rp_ids += [await create_and_pay(sender, type=3, for_id=gid, number=2, amount="3.00")
               for _ in range(2)]
    runners = [children.rtserver(settings, "jobs", "--job-interval=0.2") for _ in range(2)]

    refunded = 900 - cents(got["money"])
    await until_balance(sender, 1000 - 900 + refunded)
    await asyncio.sleep(1)  # several more sweeps of both runners
    assert cents((await sender.request("wallet.get"))["balance"]) == 1000 - 900 + refunded
    async with ctx.db.cursor() as cur:
        await cur.execute("SELECT ref FROM wallet_ledger WHERE kind = 'refund' AND user_id = %s",
                          (users[0],))
        assert sorted(int(row["ref"]) for row in await cur.fetchall()) == rp_ids
    detail = await sender.request("packet.detail", rp_id=rp_ids[0])
    assert detail["packet"]["status"] == "expired"
    assert cents(detail["packet"]["return_money"]) == 300 - cents(got["money"])
    assert (await clients[2].request("packet.grab", rp_id=rp_ids[0]))["result"] == "expired"
    again = await clients[1].request("packet.grab", rp_id=rp_ids[0])
    assert (again["result"], again["money"]) == ("already", got["money"])

    for runner in runners:
        assert runner.terminate() == 0, runner.log()
    audit()
