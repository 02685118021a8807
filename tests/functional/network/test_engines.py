"""The same API on PostgreSQL and MariaDB (and SQLite): a topology with
routers and floating IPs, security groups, pagination and deletes."""

from __future__ import annotations

import pytest

from . import test_topologies
from .conftest import Http, Tenant, token_for


@pytest.fixture
def engine_cloud(pocketstack_cloud_factory, database_url):
    return pocketstack_cloud_factory(**{"enabled_services": ["identity", "network"],
                                        "database.connection": database_url})


def test_topology_on_each_engine(engine_cloud):
    admin = Http(engine_cloud, token_for(engine_cloud))
    tenants: list[Tenant] = []

    def make_tenant() -> Tenant:
        tenants.append(Tenant(engine_cloud, engine_cloud.make_user()))
        return tenants[-1]

    try:
        test_topologies.test_per_tenant_routers_with_overlapping_cidrs(admin, make_tenant)
        test_topologies.test_provider_router_with_private_networks(admin, make_tenant)
        # sorted, paged listing across pages
        net = admin.create("network", name="paging")
        admin.create("subnet", network_id=net["id"], cidr="10.77.0.0/24", ip_version=4)
        made = sorted(admin.create("port", network_id=net["id"])["id"] for _ in range(5))
        seen, params = [], {"network_id": net["id"], "limit": 2}
        url = "/ports"
        while url:
            body = admin.get(url, params=params).json()
            seen += [p["id"] for p in body["ports"]]
            nxt = [x["href"] for x in body.get("ports_links", []) if x["rel"] == "next"]
            url, params = (nxt[0].split("/v2.0", 1)[1], None) if nxt else (None, None)
        assert seen == made
        shown = admin.get(f"/ports/{made[0]}").json()["port"]
        assert shown["created_at"].endswith("Z") and shown["fixed_ips"]
        assert admin.get("/ports", params={"id": made[0]}).json()["ports"] == [shown]
        assert shown["admin_state_up"] is True and shown["port_security_enabled"] is True
        for port_id in made:
            assert admin.delete(f"/ports/{port_id}").status_code == 204
        assert admin.delete(f"/networks/{net['id']}").status_code == 204
    finally:
        admin.close()
        for tenant in tenants:
            tenant.http.close()
