#!/usr/bin/env python3
"""Whole-cloud benchmark: `pocketstack up` (every service) as a subprocess.

    python3 bench/cloud.py [--servers 200] [--ports 200] [--volumes 200] [--runs 3]

Prints, beside the goals of /work/shared/ANCHORS.md:
  - cold start to first answer: exec -> first 200 of GET /identity/v3, and
    exec -> first token (POST /v3/auth/tokens, production bcrypt cost);
  - cold start to first ACTIVE server (fake driver; image upload included);
  - resident memory of the process tree (from /proc): right after the first
    answer, idle with every service up and used once, and after --servers
    servers + --ports ports + --volumes volumes.
A fresh state directory each run; the best and median of --runs cold starts.
Timings only: never pass/fail.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

PASSWORD = "bench-admin-pass"


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_mb(root: int) -> float:
    total = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_s(root: int) -> float:
    """CPU seconds (user + system) of the process tree (steadier than wall time on a
    shared machine)."""
    total = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def auth_body(project: bool = True) -> dict:
    body = {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": PASSWORD}}}}
    if project:
        body["scope"] = {"project": {"name": "admin", "domain": {"name": "Default"}}}
    return {"auth": body}


class Up:
    """One `pocketstack up` on a fresh state directory, timed from exec."""

    def __init__(self, extra_conf: str = ""):
        self.state = tempfile.mkdtemp(prefix="pocketstack-bench-")
        conf = os.path.join(self.state, "bench.conf")
        with open(conf, "w") as f:
            f.write(f"[bootstrap]\nadmin_password = {PASSWORD}\n{extra_conf}")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.state, "up.log"), "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pocketstack", "up", "--config-file", conf,
             "--state-path", self.state, "--port", str(self.port), "--no-user-clouds-yaml"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(timeout=60)

    def first_answer(self) -> float:
        while True:
            try:
                if self.client.get(self.url + "/identity/v3").status_code == 200:
                    return time.monotonic() - self.t0
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(open(os.path.join(self.state, "up.log")).read())
            time.sleep(0.002)

    def token(self) -> float:
        r = self.client.post(self.url + "/identity/v3/auth/tokens", json=auth_body())
        r.raise_for_status()
        self.token_id = r.headers["X-Subject-Token"]
        self.project_id = r.json()["token"]["project"]["id"]
        self.client.headers["X-Auth-Token"] = self.token_id
        return time.monotonic() - self.t0

    def first_server(self) -> float:
        c, url = self.client, self.url
        img = c.post(url + "/image/v2/images", json={
            "name": "cirros", "disk_format": "raw", "container_format": "bare"}).json()
        c.put(f"{url}/image/v2/images/{img['id']}/file", content=b"fake-disk" * 64,
              headers={"Content-Type": "application/octet-stream"}).raise_for_status()
        self.image_id = img["id"]
        body = {"server": {"name": "first", "imageRef": img["id"], "flavorRef": "1",
                           "networks": "none"}}
        r = c.post(url + "/compute/v2.1/servers", json=body,
                   headers={"OpenStack-API-Version": "compute 2.37"})
        r.raise_for_status()
        sid = r.json()["server"]["id"]
        while True:
            status = c.get(f"{url}/compute/v2.1/servers/{sid}").json()["server"]["status"]
            if status == "ACTIVE":
                return time.monotonic() - self.t0
            if status == "ERROR":
                raise SystemExit("first server went to ERROR")
            time.sleep(0.002)

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        subprocess.run(["rm", "-rf", self.state])


def fill(up: Up, servers: int, ports: int, volumes: int, concurrency: int = 8) -> None:
    url, headers = up.url, {"X-Auth-Token": up.token_id}
    c = up.client
    net = c.post(url + "/networking/v2.0/networks", json={"network": {"name": "bench"}})
    net.raise_for_status()
    net_id = net.json()["network"]["id"]
    c.post(url + "/networking/v2.0/subnets", json={"subnet": {
        "network_id": net_id, "cidr": "10.100.0.0/20", "ip_version": 4}}).raise_for_status()
    # room for the load (quotas are per project; the admin project gets the defaults)
    c.put(f"{url}/compute/v2.1/os-quota-sets/{up.project_id}", json={"quota_set": {
        "instances": -1, "cores": -1, "ram": -1}})
    c.put(f"{url}/networking/v2.0/quotas/{up.project_id}", json={"quota": {"port": -1}})
    c.put(f"{url}/volume/v3/os-quota-sets/{up.project_id}", json={
        "quota_set": {"volumes": -1, "gigabytes": -1}})

    def work(kind_index):
        kind, i = kind_index
        with httpx.Client(timeout=120, headers=headers) as client:
            if kind == "server":
                r = client.post(url + "/compute/v2.1/servers", json={"server": {
                    "name": f"s{i}", "imageRef": up.image_id, "flavorRef": "1",
                    "networks": "none"}}, headers={"OpenStack-API-Version": "compute 2.37"})
            elif kind == "port":
                r = client.post(url + "/networking/v2.0/ports", json={"port": {
                    "network_id": net_id, "name": f"p{i}"}})
            else:
                r = client.post(f"{url}/volume/v3/volumes", json={"volume": {
                    "size": 1, "name": f"v{i}"}})
            if r.status_code >= 400:
                return f"{kind} {i}: {r.status_code} {r.text[:200]}"
        return None

    jobs = ([("server", i) for i in range(servers)] + [("port", i) for i in range(ports)]
            + [("volume", i) for i in range(volumes)])
    with ThreadPoolExecutor(concurrency) as pool:
        errors = [e for e in pool.map(work, jobs) if e]
    if errors:
        print(f"  {len(errors)} requests failed, first: {errors[0]}")

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        building = c.get(url + "/compute/v2.1/servers/detail?status=BUILD&limit=1").json()
        creating = c.get(f"{url}/volume/v3/volumes/detail?status=creating"
                         "&limit=1").json()
        if not building["servers"] and not creating["volumes"]:
            break
        time.sleep(0.2)


def count(up: Up) -> str:
    c, url = up.client, up.url
    servers = c.get(url + "/compute/v2.1/servers?status=ACTIVE&limit=1000").json()["servers"]
    ports = c.get(url + "/networking/v2.0/ports?fields=id").json()["ports"]
    volumes = c.get(url + "/volume/v3/volumes?status=available&limit=1000").json()["volumes"]
    return f"{len(servers)} ACTIVE servers, {len(ports)} ports, {len(volumes)} available volumes"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--ports", type=int, default=200)
    parser.add_argument("--volumes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-guest-image", action="store_true",
                        help="[guest_image] register = false: `up` does not build and "
                             "register the bootable guest image in the background")
    args = parser.parse_args()

    # A pip-installed package has its bytecode compiled; this tree may not (and
    # PYTHONDONTWRITEBYTECODE may be set), so compile it once, untimed.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "pocketstack")
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], env=env,
                   stdout=subprocess.DEVNULL, check=False)

    answers, tokens, actives, rss_start, rss_idle = [], [], [], [], []
    cpu_answer, cpu_active = [], []
    for run in range(args.runs):
        # fake hosts big enough for the fill (one host of the default size holds ~47)
        up = Up("[fake]\nvcpus = 64\nmemory_mb = 1048576\nlocal_gb = 100000\n"
                + ("[guest_image]\nregister = false\n" if args.no_guest_image else ""))
        try:
            answers.append(up.first_answer())
            cpu_answer.append(cpu_s(up.proc.pid))
            rss_start.append(rss_mb(up.proc.pid))
            tokens.append(up.token())
            actives.append(up.first_server())
            cpu_active.append(cpu_s(up.proc.pid))
            if run == args.runs - 1:
                time.sleep(2)  # let start-up work settle
                rss_idle.append(rss_mb(up.proc.pid))
                t = time.monotonic()
                fill(up, args.servers, args.ports, args.volumes)
                fill_s = time.monotonic() - t
                counts = count(up)
                time.sleep(1)
                rss_full = rss_mb(up.proc.pid)
        finally:
            up.stop()

    def fmt(values):
        return f"{min(values):6.2f} s best, {statistics.median(values):6.2f} s median"

    print(f"whole cloud (`pocketstack up`, every service, fresh state), {args.runs} cold starts"
          + (", guest image not registered" if args.no_guest_image else
             " (guest image built + registered in the background, as by default)"))
    print(f"  cold start -> first 200 GET /identity/v3  {fmt(answers)}    goal < 1 s "
          "(Keystone 2.4 s, Neutron 3.6-5 s)")
    print(f"  cold start -> first token                 {fmt(tokens)}    goal < 1 s")
    print(f"  cold start -> first ACTIVE server (fake)  {fmt(actives)}    goal < 1 s "
          "(Nova + Placement 9.4-11 s)")
    print(f"  server CPU to first answer / to ACTIVE  {statistics.median(cpu_answer):6.2f} / "
          f"{statistics.median(cpu_active):.2f} CPU-s median")
    print(f"  RSS at first answer                       {statistics.median(rss_start):6.1f} MB")
    print(f"  RSS idle, every service up (used once)    {rss_idle[0]:6.1f} MB       "
          "goal < 150 MB (OpenStack ~3.5 GB)")
    print(f"  RSS after {args.servers} servers + {args.ports} ports + {args.volumes} volumes"
          f"  {rss_full:6.1f} MB       (filled in {fill_s:.1f} s at c=8; {counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
