"""Claims are atomic: parallel boots never over-commit a host (each database engine)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.functional.compute.conftest import wait_for


def test_fifty_parallel_boots_never_overcommit(pocketstack_cloud_factory, database_url):
    cloud = pocketstack_cloud_factory(**{
        "enabled_services": ["identity", "image", "compute"], "database.connection":
        database_url, "fake.hosts": 2, "fake.vcpus": 10, "cpu_allocation_ratio": 1.0,
        "ram_allocation_ratio": 100.0, "conductor.workers": 8})
    conn = cloud.connect()
    image = conn.image.create_image(name="cirros", data=b"disk", disk_format="raw",
                                    container_format="bare", visibility="public")
    project = conn.current_project_id
    conn.compute.update_quota_set(project, instances=-1, cores=-1, ram=-1)
    token = conn.session.get_token()
    url = cloud.url + "/compute/v2.1/servers"
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.37"}

    def boot(i: int) -> str:
        with httpx.Client(timeout=60) as client:
            r = client.post(url, headers=headers, json={"server": {
                "name": f"p{i}", "imageRef": image.id, "flavorRef": "1",
                "networks": "none"}})
            assert r.status_code == 202, r.text
            return r.json()["server"]["id"]

    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(boot, range(50)))
    assert len(set(ids)) == 50

    def settled():
        servers = list(conn.compute.servers())
        return servers if all(s.status in ("ACTIVE", "ERROR") for s in servers) else None

    servers = wait_for(settled, "all boots settled", timeout=120)
    active = [s for s in servers if s.status == "ACTIVE"]
    failed = [s for s in servers if s.status == "ERROR"]
    assert len(active) == 20 and len(failed) == 30
    assert all("No valid host" in s.fault["message"] for s in failed)
    per_host = {}
    for s in active:
        per_host[s.compute_host] = per_host.get(s.compute_host, 0) + 1
    assert per_host == {"fake-1": 10, "fake-2": 10}
    for hyp in conn.compute.get("/os-hypervisors/detail",
                                microversion="2.53").json()["hypervisors"]:
        assert hyp["vcpus_used"] == 10 and hyp["running_vms"] == 10
