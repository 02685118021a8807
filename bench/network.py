#!/usr/bin/env python3
"""Networking benchmark: `pocketstack up` in a subprocess, loads from this process.

    python3 bench/network.py [--ports 2000] [--concurrency 8]

1. port create: ``--ports`` ports at concurrency 8 on one /16 (ports/s, server
   CPU ms a port);
2. listing 10,000 ports with ``limit=1000`` (ms a page, walking the next links);
3. allocation time of the last 100 vs the first 100 ports of a /16 filled to
   99% (ratio of wall times and of server CPU). The middle of the subnet is
   filled by writing allocations straight into the database (the same rows
   the API writes) so the run takes seconds, not minutes.

Prints each figure beside its goal (../shared/ANCHORS.md). Timings only.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from _common import UpProcess, free_port  # bench/ is on the path when a script runs

try:  # the client's own parsing is part of a page's time: keep it small
    from orjson import loads
except ImportError:  # pragma: no cover
    from json import loads

ADMIN_PASSWORD = "bench-admin-password"
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


# -- the load client (a second process: `network.py --client SPEC`) ---------------

async def _post_worker(host, port, request: bytes, count: int, result: dict):
    reader, writer = await asyncio.open_connection(host, port)
    for _ in range(count):
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        match = CONTENT_LENGTH.search(head)
        if match:
            await reader.readexactly(int(match.group(1)))
        status = int(head[9:12])
        result["ok" if 200 <= status < 300 else "bad"] += 1
        if status >= 300 and "first_bad" not in result:
            result["first_bad"] = head[:300].decode(errors="replace")
    writer.close()


def run_client(spec: dict) -> dict:
    host, port = spec["host"], spec["port"]
    body = json.dumps(spec["body"]).encode()
    request = (f"POST {spec['path']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"X-Auth-Token: {spec['token']}\r\nContent-Type: application/json\r\n"
               f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    result = {"ok": 0, "bad": 0}
    c, total = spec["concurrency"], spec["count"]
    shares = [total // c + (1 if i < total % c else 0) for i in range(c)]

    async def main():
        await asyncio.gather(*[_post_worker(host, port, request, n, result) for n in shares])

    started = time.monotonic()
    asyncio.run(main())
    result["elapsed"] = time.monotonic() - started
    return result


# -- the server --------------------------------------------------------------------

class Server(UpProcess):
    def __init__(self, state: str, port: int):
        super().__init__(state, port, "[DEFAULT]\nenabled_services = identity,network\n"
                         f"\n[bootstrap]\nadmin_password = {ADMIN_PASSWORD}\n"
                         "\n[quotas]\nquota_port = -1\nquota_network = -1\nquota_subnet = -1\n",
                         "/networking/")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def admin_token(server: Server) -> str:
    import httpx

    r = httpx.post(server.url + "/identity/v3/auth/tokens", json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    return r.headers["X-Subject-Token"]


def fill(state: str, network_id: str, subnet_id: str, project_id: str, count: int) -> None:
    """Write ``count`` ports with addresses from ``subnet_id`` straight into the
    networking database (what the API would write, without HTTP)."""
    import sqlalchemy as sa

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from pocketstack.network import ipam, models

    engine = sa.create_engine(f"sqlite:///{os.path.join(state, 'network.sqlite')}",
                              connect_args={"timeout": 60})
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
    done = 0
    while done < count:
        batch = min(5000, count - done)
        with engine.begin() as conn:
            ports, allocs = [], []
            for _ in range(batch):
                ip = ipam.take_any(conn, subnet_id)
                if ip is None:
                    raise RuntimeError("subnet full while filling")
                port_id = str(uuid.uuid4())
                address = str(ipaddress.ip_address(ip))
                mac = "fa:16:3f:" + ":".join(f"{b:02x}" for b in ip.to_bytes(16, "big")[-3:])
                ports.append({
                    "id": port_id, "network_id": network_id, "project_id": project_id,
                    "name": "", "description": "", "mac_address": mac,
                    "admin_state_up": True, "status": "DOWN", "device_id": "",
                    "device_owner": "", "port_security_enabled": True,
                    "security_groups": [], "allowed_address_pairs": [],
                    "extra_dhcp_opts": [], "host_id": "", "vnic_type": "normal",
                    "profile": {}, "vif_type": "unbound", "vif_details": {},
                    "fixed_ips": [{"subnet_id": subnet_id, "ip_address": address}],
                    "tags": [], "created_at": now, "updated_at": now,
                    "revision_number": 1})
                allocs.append({"subnet_id": subnet_id, "ip_address": address,
                               "port_id": port_id, "network_id": network_id})
            conn.execute(models.port.insert(), ports)
            conn.execute(models.ip_allocation.insert(), allocs)
        done += batch
    with engine.connect() as conn:  # leave no WAL behind for the timed requests to pay for
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


def timed_posts(client, body: dict, n: int, server: Server) -> tuple[list[float], float]:
    times = []
    cpu0 = server.cpu_seconds()
    for _ in range(n):
        t = time.perf_counter()
        r = client.post("/ports", json=body)
        times.append(time.perf_counter() - t)
        assert r.status_code == 201, r.text
    return times, server.cpu_seconds() - cpu0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--list-total", type=int, default=10000)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(run_client(json.loads(args.client))))
        return

    import httpx

    state = tempfile.mkdtemp(prefix="pocketstack-bench-network-")
    server = Server(state, free_port())
    server.start()
    try:
        token = admin_token(server)
        client = httpx.Client(base_url=server.url + "/networking/v2.0", timeout=300,
                              headers={"X-Auth-Token": token})
        net = client.post("/networks", json={"network": {"name": "bench"}}).json()["network"]
        project = net["project_id"]
        subnet = client.post("/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.0.0.0/16", "ip_version": 4}}).json()["subnet"]
        client.post("/ports", json={"port": {"network_id": net["id"]}})  # warm up (default SG)

        # 1. port create at concurrency 8
        spec = {"host": "127.0.0.1", "port": server.port, "path": "/networking/v2.0/ports",
                "token": token, "body": {"port": {"network_id": net["id"]}},
                "count": args.ports, "concurrency": args.concurrency}
        cpu0 = server.cpu_seconds()
        out = subprocess.run([sys.executable, __file__, "--client", json.dumps(spec)],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout)
        server_cpu = server.cpu_seconds() - cpu0
        rate = result["ok"] / result["elapsed"]
        cpu_ms = 1000 * server_cpu / max(result["ok"], 1)
        print(f"port create, /16, c={args.concurrency}: {result['ok']} ok, {result['bad']} "
              f"failed, {rate:.0f} ports/s (goal >= 300), {cpu_ms:.2f} ms server CPU a port "
              f"(goal <= 3)")
        if result["bad"]:
            print("  first failure:", result.get("first_bad"))
        listed = client.get("/ports", params={"network_id": net["id"], "fields": "fixed_ips"})
        ips = [p["fixed_ips"][0]["ip_address"] for p in listed.json()["ports"]]
        print(f"  distinct addresses: {len(set(ips))} of {len(ips)} ports")

        # 2. listing 10,000 ports, limit=1000
        have = len(ips)
        if have < args.list_total:
            fill(state, net["id"], subnet["id"], project, args.list_total - have)
        pages, url, params = [], "/ports", {"limit": 1000}
        cpu0 = server.cpu_seconds()
        count = 0
        while url:
            t = time.perf_counter()
            body = loads(client.get(url, params=params).content)
            pages.append(time.perf_counter() - t)
            count += len(body["ports"])
            nxt = [x["href"] for x in body.get("ports_links", []) if x["rel"] == "next"]
            url, params = (nxt[0].split("/v2.0", 1)[1], None) if nxt else (None, None)
        list_cpu = server.cpu_seconds() - cpu0
        print(f"list {count} ports, limit=1000: {len(pages)} pages, "
              f"{1000 * statistics.mean(pages):.1f} ms a page (max "
              f"{1000 * max(pages):.1f}; goal <= 60), {1000 * list_cpu / len(pages):.1f} ms "
              "server CPU a page")

        # 3. last 100 vs first 100 allocations of a /16 filled to 99%
        net2 = client.post("/networks", json={"network": {"name": "fill"}}).json()["network"]
        sub2 = client.post("/subnets", json={"subnet": {
            "network_id": net2["id"], "cidr": "10.1.0.0/16",
            "ip_version": 4}}).json()["subnet"]
        body = {"port": {"network_id": net2["id"]}}
        pool = 65533
        target = int(pool * 0.99)
        # three rounds of 100 at each end; the quickest round counts (the
        # machine is shared: a burst of other work should not decide the ratio)
        timed_posts(client, body, 10, server)  # warm up
        firsts = [timed_posts(client, body, 100, server) for _ in range(3)]
        fill(state, net2["id"], sub2["id"], project, target - 620)
        timed_posts(client, body, 10, server)
        lasts = [timed_posts(client, body, 100, server) for _ in range(3)]
        first = min((r[0] for r in firsts), key=sum)
        last = min((r[0] for r in lasts), key=sum)
        first_cpu = min(r[1] for r in firsts)
        last_cpu = min(r[1] for r in lasts)
        print(f"allocation in a /16 filled to {100 * target / pool:.0f}%: first 100 "
              f"{1000 * sum(first):.0f} ms, last 100 {1000 * sum(last):.0f} ms, wall ratio "
              f"{sum(last) / sum(first):.2f}; server CPU ratio "
              f"{last_cpu / max(first_cpu, 1e-9):.2f} (goal <= 1.2; the anchor compares CPU); "
              f"median {1000 * statistics.median(first):.2f} / "
              f"{1000 * statistics.median(last):.2f} ms")
        r = client.get("/ports", params={"network_id": net2["id"], "limit": 1,
                                         "sort_key": "created_at", "sort_dir": "desc"})
        last_port = r.json()["ports"][0]
        print(f"  last address handed out: {last_port['fixed_ips'][0]['ip_address']}")
    finally:
        server.stop()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
