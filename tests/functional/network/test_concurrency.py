"""Parallel allocation on SQLite, PostgreSQL and MariaDB: never a duplicate IP,
MAC or segment id; exhaustion is a clean 409/503; failures give back what
they took."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from pocketstack.network import models

from .conftest import Http, assert_error, token_for


@pytest.fixture
def db_cloud(pocketstack_cloud_factory, database_url):
    return pocketstack_cloud_factory(**{
        "enabled_services": ["identity", "network"], "database.connection": database_url,
        "ml2_type_vxlan.vni_ranges": ["100:109"]})


def parallel(fn, count: int, workers: int = 8) -> list:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, range(count)))


def free_ranges(cloud, subnet_id: str) -> list[tuple[int, int]]:
    """The subnet's free ranges, adjacent ones merged (concurrent releases on
    PostgreSQL/MariaDB may leave neighbours unmerged); overlaps fail."""
    db = cloud.cloud.services["network"].db
    R = models.ip_range
    with db.reader() as s:
        rows = sorted((int(a, 16), int(b, 16)) for a, b in s.execute(
            sa.select(R.c.first_ip, R.c.last_ip).where(R.c.subnet_id == subnet_id)))
    merged: list[tuple[int, int]] = []
    for first, last in rows:
        assert first <= last
        if merged:
            assert first > merged[-1][1], f"overlapping free ranges {merged[-1]} {first}"
        if merged and first == merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def test_parallel_ports_never_duplicate(db_cloud):
    token = token_for(db_cloud)
    admin = Http(db_cloud, token)
    net = admin.create("network", name="race")
    subnet = admin.create("subnet", network_id=net["id"], cidr="10.50.0.0/27", ip_version=4)
    pool_size = 29  # .2 - .30

    clients = [Http(db_cloud, token) for _ in range(8)]

    def create(i):
        r = clients[i % 8].post("/ports", json={"port": {"network_id": net["id"],
                                                         "name": f"p{i}"}})
        return r.status_code, r.json()

    results = parallel(create, 40)
    made = [body["port"] for status, body in results if status == 201]
    failed = [body for status, body in results if status != 201]
    assert len(made) == pool_size
    assert all(b["NeutronError"]["type"] == "IpAddressGenerationFailure" for b in failed)
    ips = [p["fixed_ips"][0]["ip_address"] for p in made]
    macs = [p["mac_address"] for p in made]
    assert len(set(ips)) == len(ips) == pool_size
    assert len(set(macs)) == len(macs)
    assert {str(ipaddress.ip_address("10.50.0.0") + i) for i in range(2, 31)} == set(ips)
    assert free_ranges(db_cloud, subnet["id"]) == []

    # delete them all in parallel: the pool is whole again
    def delete(i):
        return clients[i % 8].delete(f"/ports/{made[i]['id']}").status_code

    assert set(parallel(delete, len(made))) == {204}
    first = int(ipaddress.ip_address("10.50.0.2"))
    assert free_ranges(db_cloud, subnet["id"]) == [(first, first + pool_size - 1)]
    for client in clients:
        client.close()
    admin.close()


def test_failed_request_gives_back_what_it_took(db_cloud):
    admin = Http(db_cloud, token_for(db_cloud))
    net = admin.create("network", name="giveback")
    big = admin.create("subnet", network_id=net["id"], cidr="10.60.0.0/24", ip_version=4)
    tiny = admin.create("subnet", network_id=net["id"], cidr="10.61.0.0/30", ip_version=4)
    admin.create("port", network_id=net["id"], fixed_ips=[{"subnet_id": tiny["id"]}])
    before = free_ranges(db_cloud, big["id"])
    r = admin.post("/ports", json={"port": {"network_id": net["id"], "fixed_ips": [
        {"subnet_id": big["id"]}, {"subnet_id": tiny["id"]}]}})
    assert_error(r, 409, "IpAddressGenerationFailure")
    assert free_ranges(db_cloud, big["id"]) == before
    port = admin.create("port", network_id=net["id"], fixed_ips=[{"subnet_id": big["id"]}])
    assert port["fixed_ips"][0]["ip_address"] == "10.60.0.2"
    admin.close()


def test_parallel_segment_allocation(db_cloud):
    token = token_for(db_cloud)
    clients = [Http(db_cloud, token) for _ in range(8)]

    def create(i):
        r = clients[i % 8].post("/networks", json={"network": {"name": f"n{i}"}})
        return r.status_code, r.json()

    results = parallel(create, 14)
    made = [b["network"] for status, b in results if status == 201]
    failed = [b for status, b in results if status != 201]
    vnis = [n["provider:segmentation_id"] for n in made]
    assert len(made) == 10 and sorted(vnis) == list(range(100, 110))
    assert len(failed) == 4
    assert all(b["NeutronError"]["type"] == "NoNetworkAvailable" for b in failed)
    # a deleted network's VNI is free again
    clients[0].delete(f"/networks/{made[0]['id']}")
    again = clients[0].create("network", name="again")
    assert again["provider:segmentation_id"] == made[0]["provider:segmentation_id"]
    for client in clients:
        client.close()
