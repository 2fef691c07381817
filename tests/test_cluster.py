"""Against a local Redis Cluster of three masters (`--redis-cluster`): the storm, settlement,
expiry and the events bus work the same, with every key of a packet on one node."""
import asyncio
import dataclasses

import pytest

from tests.test_packets import cents, create_and_pay, group_with
from tests.test_payments import notify, sandbox_note, settle_all, third_party_packet
from tools import cluster


@pytest.fixture(scope="module")
def cluster_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("redis-cluster")
    url = cluster.up(folder)
    yield url
    cluster.down(folder)


@pytest.fixture
def settings(run_settings, cluster_url):
    return dataclasses.replace(run_settings, redis_url=cluster_url, redis_cluster=True)


@pytest.mark.gen_test
async def test_storm_on_a_redis_cluster_pays_exactly(admin, connect, ctx, audit):
    gid, users, clients = await group_with(admin, connect, 30, "1.00")
    await admin.deposit(users[0], "80.00")
    rp_ids = [await create_and_pay(clients[0], type=3, for_id=gid, number=24, amount="24.00")
              for _ in range(3)]
    hash_slots = {await ctx.redis.cluster_keyslot(ctx.keys.packet(rp_id, "slots")) for rp_id in rp_ids}
    assert len(hash_slots) == 3, "each packet keeps all its keys in a hash slot of its own"
    replies = await asyncio.gather(*(c.request("packet.grab", rp_id=rp_id)
                                     for rp_id in rp_ids for c in clients))
    won = [r for r in replies if r["result"] == "ok"]
    assert len(won) == 72 and sum(cents(r["money"]) for r in won) == 7200
    heard = await clients[5].event("packet.state")  # through the bus, across the cluster
    assert heard["status"] == "finished"
    audit()


@pytest.mark.gen_test
async def test_settlement_queue_on_a_redis_cluster(admin, connect, base_url, providers, ctx,
                                                   audit):
    gid, users, clients = await group_with(admin, connect, 3, "1.00")
    created = await third_party_packet(clients[0], gid, number=2, amount="2.00")
    await clients[0].request("packet.sync_paid", rp_id=created["rp_id"], result={})
    grabs = [await c.request("packet.grab", rp_id=created["rp_id"]) for c in clients[1:]]
    assert await notify(base_url, "sandbox", sandbox_note(providers, created)) == (204, "")
    assert await settle_all(ctx) >= 1
    for client, grab in zip(clients[1:], grabs):
        assert (await client.event("packet.settled"))["money"] == grab["money"]
    audit()
