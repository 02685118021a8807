"""IPAM on an in-memory database: pools, free ranges, give-back, EUI-64."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
import sqlalchemy as sa

from pocketstack.network import ipam, models


def ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


@pytest.fixture
def session():
    engine = sa.create_engine("sqlite://")
    models.metadata.create_all(engine)
    now = datetime.datetime(2026, 1, 1)
    with engine.begin() as conn:
        conn.execute(models.network.insert().values(
            id="n", project_id="p", name="", admin_state_up=True, status="ACTIVE",
            shared=False, external=False, is_default=False, mtu=1500,
            port_security_enabled=True, network_type="local", availability_zone_hints=[],
            description="", tags=[], created_at=now, updated_at=now, revision_number=1))
    with engine.begin() as conn:
        yield conn
    engine.dispose()


def make_subnet(conn, cidr: str, pools: list[dict]) -> dict:
    sub = {"id": f"s-{cidr}", "network_id": "n", "project_id": "p", "name": "",
           "ip_version": ipaddress.ip_network(cidr).version, "cidr": cidr,
           "gateway_ip": None, "enable_dhcp": True, "ipv6_ra_mode": None,
           "ipv6_address_mode": None, "allocation_pools": pools, "dns_nameservers": [],
           "host_routes": [], "service_types": [], "subnetpool_id": None, "description": "",
           "tags": [], "created_at": datetime.datetime(2026, 1, 1),
           "updated_at": datetime.datetime(2026, 1, 1), "revision_number": 0}
    conn.execute(models.subnet.insert().values(**sub))
    ipam.rebuild_ranges(conn, sub)
    return sub


def ranges(conn, sid: str) -> list[tuple[int, int]]:
    R = models.ip_range
    return sorted((int(a, 16), int(b, 16)) for a, b in conn.execute(
        sa.select(R.c.first_ip, R.c.last_ip).where(R.c.subnet_id == sid)))


def test_default_pools():
    net = ipaddress.ip_network("10.0.0.0/29")
    assert ipam.default_pools(net, "10.0.0.1") == [(ip("10.0.0.2"), ip("10.0.0.6"))]
    assert ipam.default_pools(net, "10.0.0.4") == [(ip("10.0.0.1"), ip("10.0.0.3")),
                                                   (ip("10.0.0.5"), ip("10.0.0.6"))]
    assert ipam.default_pools(net, None) == [(ip("10.0.0.1"), ip("10.0.0.6"))]
    v6 = ipaddress.ip_network("2001:db8::/126")
    assert ipam.default_pools(v6, "2001:db8::1") == [(ip("2001:db8::2"), ip("2001:db8::3"))]
    assert ipam.default_pools(ipaddress.ip_network("10.0.0.0/31"), None) == [
        (ip("10.0.0.0"), ip("10.0.0.1"))]


def test_take_in_order_until_full_and_give_back(session):
    sub = make_subnet(session, "10.0.0.0/29", [{"start": "10.0.0.2", "end": "10.0.0.6"}])
    got = [ipam.take_any(session, sub["id"]) for _ in range(5)]
    assert got == [ip(f"10.0.0.{i}") for i in range(2, 7)]
    assert ipam.take_any(session, sub["id"]) is None
    for addr in (ip("10.0.0.4"), ip("10.0.0.2"), ip("10.0.0.3")):
        ipam.give_back(session, sub, addr)
    assert ranges(session, sub["id"]) == [(ip("10.0.0.2"), ip("10.0.0.4"))]
    ipam.give_back(session, sub, ip("10.0.0.6"))
    ipam.give_back(session, sub, ip("10.0.0.5"))
    assert ranges(session, sub["id"]) == [(ip("10.0.0.2"), ip("10.0.0.6"))]
    ipam.give_back(session, sub, ip("10.0.0.1"))  # outside the pool: not kept
    assert ranges(session, sub["id"]) == [(ip("10.0.0.2"), ip("10.0.0.6"))]


def test_take_specific_splits_and_pools_stay_apart(session):
    sub = make_subnet(session, "10.1.0.0/24", [{"start": "10.1.0.10", "end": "10.1.0.20"},
                                               {"start": "10.1.0.21", "end": "10.1.0.30"}])
    ipam.take_specific(session, sub["id"], ip("10.1.0.15"))
    ipam.take_specific(session, sub["id"], ip("10.1.0.10"))
    ipam.take_specific(session, sub["id"], ip("10.1.0.30"))
    ipam.take_specific(session, sub["id"], ip("10.1.0.200"))  # outside any pool: no-op
    assert ranges(session, sub["id"]) == [(ip("10.1.0.11"), ip("10.1.0.14")),
                                          (ip("10.1.0.16"), ip("10.1.0.20")),
                                          (ip("10.1.0.21"), ip("10.1.0.29"))]
    ipam.give_back(session, sub, ip("10.1.0.15"))
    assert ranges(session, sub["id"])[0] == (ip("10.1.0.11"), ip("10.1.0.20"))


def test_rebuild_keeps_allocated_out(session):
    sub = make_subnet(session, "10.2.0.0/28", [{"start": "10.2.0.2", "end": "10.2.0.14"}])
    session.execute(models.port.insert().values(
        id="port", network_id="n", project_id="p", name="", mac_address="fa:16:3e:00:00:01",
        admin_state_up=True, status="DOWN", device_id="", device_owner="",
        port_security_enabled=True, security_groups=[], allowed_address_pairs=[],
        extra_dhcp_opts=[], host_id="", vnic_type="normal", profile={}, vif_type="unbound",
        vif_details={}, fixed_ips=[], description="", tags=[],
        created_at=datetime.datetime(2026, 1, 1), updated_at=datetime.datetime(2026, 1, 1),
        revision_number=1))
    session.execute(models.ip_allocation.insert().values(
        subnet_id=sub["id"], ip_address="10.2.0.5", port_id="port", network_id="n"))
    sub["allocation_pools"] = [{"start": "10.2.0.4", "end": "10.2.0.8"}]
    ipam.rebuild_ranges(session, sub)
    assert ranges(session, sub["id"]) == [(ip("10.2.0.4"), ip("10.2.0.4")),
                                          (ip("10.2.0.6"), ip("10.2.0.8"))]


def test_eui64():
    assert ipam.eui64("2001:db8::/64", "fa:16:3e:12:34:56") == "2001:db8::f816:3eff:fe12:3456"
    assert ipam.is_auto_address({"ip_version": 6, "ipv6_address_mode": "slaac"})
    assert not ipam.is_auto_address({"ip_version": 6, "ipv6_address_mode": "dhcpv6-stateful"})
