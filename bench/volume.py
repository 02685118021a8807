#!/usr/bin/env python3
"""Block storage benchmark: `pocketstack up` in a subprocess, loads from this process.

    python3 bench/volume.py [--volumes 200] [--concurrency 8] [--snapshots 20]
                            [--image-mib 512]

- N volumes of 1 GiB created at concurrency C on the file and the nfs backend
  (a real nfs-ganesha on 127.0.0.N, reached through libnfs): volumes/s from
  the first request until all are available, and the server's CPU per volume.
- A chain of 20 snapshots of one NFS volume (16 MiB written between each):
  time per snapshot (request -> available), and reading the whole newest
  volume through its chain vs reading a flat copy of it (ratio).
- An image of 512 MiB (random data, qcow2) into a volume (file backend): MiB/s
  from request to available vs `qemu-img convert` of the same file run by hand.

Timings only: never pass/fail.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pocketstack.testing import start_cloud_process  # noqa: E402
from tests.functional.volume.conftest import Ganesha  # noqa: E402

MIB = 1 << 20
GIB = 1 << 30
MV = {"OpenStack-API-Version": "volume 3.50"}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def server_pid(state_path: str) -> int | None:
    out = subprocess.run(["pgrep", "-f", "--", f"--state-path {state_path}"],
                         capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else None


class Client:
    def __init__(self, cloud):
        import openstack

        self.conn = openstack.connect(auth=cloud.auth(), region_name="RegionOne",
                                      identity_api_version="3", load_yaml_config=False,
                                      load_envvars=False)
        self.url = self.conn.block_storage.get_endpoint()
        self.session = requests.Session()
        self.headers = {"X-Auth-Token": self.conn.auth_token, **MV}

    def post(self, path: str, body: dict) -> dict:
        r = self.session.post(self.url + path, json=body, headers=self.headers)
        r.raise_for_status()
        return r.json() if r.content else {}

    def get(self, path: str) -> dict:
        r = self.session.get(self.url + path, headers=self.headers)
        r.raise_for_status()
        return r.json()

    def delete(self, path: str) -> None:
        self.session.delete(self.url + path, headers=self.headers).raise_for_status()

    def wait(self, path: str, key: str, status: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            item = self.get(path)[key]
            if item["status"] == status:
                return item
            if item["status"].startswith("error") or time.monotonic() > deadline:
                raise RuntimeError(f"{path}: {item['status']}")
            time.sleep(0.005)


def start(tmp: Path, name: str, overrides: dict):
    state = tmp / name
    cloud = start_cloud_process(str(state), {"enabled_services": ["identity", "volume"],
                                             "volume_cleanup_interval": 1.0, **overrides})
    client = Client(cloud)
    project = client.conn.current_project_id
    client.session.put(f"{client.url}/os-quota-sets/{project}", headers=client.headers,
                       json={"quota_set": {"volumes": -1, "gigabytes": -1, "snapshots": -1}}
                       ).raise_for_status()
    return cloud, client


def bench_creates(client: Client, pid: int | None, count: int, concurrency: int,
                  volume_type: str | None) -> dict:
    body = {"volume": {"size": 1}}
    if volume_type:
        body["volume"]["volume_type"] = volume_type
    cpu0 = cpu_seconds(pid) if pid else 0.0
    started = time.monotonic()

    def create(i):
        b = {"volume": {**body["volume"], "name": f"bench-{i}"}}
        return client.post("/volumes", b)["volume"]["id"]

    with ThreadPoolExecutor(concurrency) as pool:
        ids = list(pool.map(create, range(count)))
    accepted = time.monotonic() - started
    while True:
        r = client.get("/volumes?status=available&with_count=true&limit=1")
        if r["count"] >= count:
            break
        errs = client.get("/volumes?status=error&with_count=true&limit=1")["count"]
        if errs:
            raise RuntimeError(f"{errs} volumes went to error")
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    cpu = (cpu_seconds(pid) - cpu0) if pid else float("nan")
    # and delete them again
    d0 = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda v: client.delete(f"/volumes/{v}"), ids))
    while client.get("/volumes?with_count=true&limit=1")["count"]:
        time.sleep(0.01)
    deleted = time.monotonic() - d0
    return {"rate": count / elapsed, "accepted_rate": count / accepted,
            "cpu_ms": cpu / count * 1000, "delete_rate": count / deleted}


def read_time(ref: str, size: int = GIB) -> float:
    """Read every byte the guest would see (qemu-io: no skipping of holes)."""
    step = 64 * MIB
    argv = ["qemu-io"]
    for offset in range(0, size, step):
        argv += ["-c", f"read {offset} {step}"]
    started = time.monotonic()
    subprocess.run([*argv, ref], check=True, capture_output=True)
    return time.monotonic() - started


def bench_chain(client: Client, cloud, server: Ganesha, share: str, snapshots: int) -> dict:
    vol = client.post("/volumes", {"volume": {"size": 1, "name": "chain",
                                              "volume_type": "nfs"}})["volume"]
    client.wait(f"/volumes/{vol['id']}", "volume", "available")
    host_path = share.replace(":", "", 1)
    times = []
    for i in range(snapshots):
        # 16 MiB of data in each layer, at a different place each time
        loc = chain_location(cloud, vol["id"])
        proc = subprocess.run(["qemu-io", "-c", f"write -P {i + 1} {i * 48 * MIB} {16 * MIB}",
                               f"nfs://{host_path}/{loc}"], capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"qemu-io: {proc.stderr}{proc.stdout}")
        started = time.monotonic()
        snap = client.post("/snapshots", {"snapshot": {"volume_id": vol["id"],
                                                       "name": f"s{i}"}})["snapshot"]
        client.wait(f"/snapshots/{snap['id']}", "snapshot", "available")
        times.append(time.monotonic() - started)
    active = chain_location(cloud, vol["id"])
    flat = client.post("/volumes", {"volume": {"source_volid": vol["id"],
                                               "name": "flat"}})["volume"]
    client.wait(f"/volumes/{flat['id']}", "volume", "available", timeout=1200)
    chain_reads, flat_reads = [], []
    for _ in range(3):  # alternate, best of three: the machine is shared
        os.sync()
        chain_reads.append(read_time(f"nfs://{host_path}/{active}"))
        os.sync()
        flat_reads.append(read_time(f"nfs://{host_path}/volume-{flat['id']}"))
    chain_read, flat_read = min(chain_reads), min(flat_reads)
    times.sort()
    return {"per_snapshot_ms": sum(times) / len(times) * 1000,
            "p50_ms": times[len(times) // 2] * 1000, "max_ms": times[-1] * 1000,
            "chain_read_s": chain_read, "flat_read_s": flat_read,
            "ratio": chain_read / flat_read}


def chain_location(cloud, volume_id: str) -> str:
    """The active file of a volume, from the server's database (bench-only peek)."""
    import sqlite3

    db = sqlite3.connect(os.path.join(cloud.state_path, "volume.sqlite"))
    try:
        row = db.execute("SELECT provider_location FROM volume_volume WHERE id = ?",
                         (volume_id,)).fetchone()
    finally:
        db.close()
    import json

    loc = json.loads(row[0]) if row and row[0] else None
    return loc["chain"][-1][0] if loc else f"volume-{volume_id}"


def bench_image(tmp: Path, size_mib: int) -> dict:
    cloud = start_cloud_process(str(tmp / "image-cloud"), {
        "enabled_services": ["identity", "image", "volume"]})
    try:
        client = Client(cloud)
        raw = tmp / "image.raw"
        with open(raw, "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(MIB))
        qcow = tmp / "image.qcow2"
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(qcow)], check=True)
        raw.unlink()
        images = client.conn.image
        image = images.create_image(name="bench", filename=str(qcow), disk_format="qcow2",
                                    container_format="bare", wait=True)
        size_gib = -(-size_mib // 1024)
        target = Path(cloud.state_path) / "volumes" / "file" / "by-hand.raw"
        ours, by_hand, by_hand_w = [], [], []
        for _ in range(3):  # alternate, best of three each: both see the same page cache
            for flags, times in (([], by_hand), (["-W", "-m", "8"], by_hand_w)):
                os.sync()  # nobody pays for the writeback of the one before
                started = time.monotonic()
                subprocess.run(["qemu-img", "convert", *flags, "-f", "qcow2", "-O", "raw",
                                str(qcow), str(target)], check=True)
                times.append(time.monotonic() - started)
                target.unlink()
            os.sync()
            started = time.monotonic()
            vol = client.post("/volumes", {"volume": {"size": size_gib, "imageRef": image.id}})
            client.wait(f"/volumes/{vol['volume']['id']}", "volume", "available", timeout=1200)
            ours.append(time.monotonic() - started)
            client.delete(f"/volumes/{vol['volume']['id']}")
            time.sleep(0.5)  # let the delete (zeroing) finish before the next round
        ours, by_hand, by_hand_w = min(ours), min(by_hand), min(by_hand_w)
        return {"ours_mib_s": size_mib / ours, "by_hand_mib_s": size_mib / by_hand,
                "by_hand_w_mib_s": size_mib / by_hand_w, "ratio": by_hand / ours,
                "ratio_w": by_hand_w / ours}
    finally:
        cloud.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--volumes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--image-mib", type=int, default=512)
    parser.add_argument("--parts", default="creates,chain,image",
                        help="which loads to run (comma separated)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="bench-volume-"))
    server = Ganesha(tmp / "nfs")
    server.start()
    try:
        share = server.share("vols")
        shares_file = tmp / "nfs_shares"
        shares_file.write_text(share + "\n")
        cloud, client = start(tmp, "cloud", {
            "enabled_backends": ["file", "nfs"], "nfs.nfs_shares_config": str(shares_file),
            "nfs.nfs_client": "libnfs"})
        try:
            client.post("/types", {"volume_type": {
                "name": "nfs", "extra_specs": {"volume_backend_name": "nfs"}}})
            client.post("/types", {"volume_type": {
                "name": "file", "extra_specs": {"volume_backend_name": "file"}}})
            pid = server_pid(cloud.state_path)
            if "creates" in parts:
                print(f"== {args.volumes} volumes of 1 GiB, concurrency {args.concurrency}")
            for backend in ("file", "nfs") if "creates" in parts else ():
                r = bench_creates(client, pid, args.volumes, args.concurrency, backend)
                print(f"  {backend:5s}: {r['rate']:7.1f} volumes/s to available "
                      f"({r['accepted_rate']:.1f}/s accepted; {r['cpu_ms']:.1f} ms server "
                      f"CPU a volume); deletes {r['delete_rate']:.1f}/s")
            if "chain" in parts:
                print(f"== a chain of {args.snapshots} snapshots on NFS")
                r = bench_chain(client, cloud, server, share, args.snapshots)
                print(f"  per snapshot: mean {r['per_snapshot_ms']:.0f} ms, p50 "
                      f"{r['p50_ms']:.0f} ms, max {r['max_ms']:.0f} ms")
                print(f"  reading the newest volume (1 GiB through {args.snapshots + 1} "
                      f"files): {r['chain_read_s']:.2f} s; a flat copy: "
                      f"{r['flat_read_s']:.2f} s; ratio {r['ratio']:.2f}")
        finally:
            cloud.stop()
        if "image" in parts:
            print(f"== an image of {args.image_mib} MiB (qcow2, random data) into a volume")
            r = bench_image(tmp, args.image_mib)
            print(f"  volume from image: {r['ours_mib_s']:.0f} MiB/s; qemu-img convert by "
                  f"hand: {r['by_hand_mib_s']:.0f} MiB/s (ratio {r['ratio']:.2f}); by hand "
                  f"with our flags -W -m 8: {r['by_hand_w_mib_s']:.0f} MiB/s (ratio "
                  f"{r['ratio_w']:.2f})")
    finally:
        server.close()
        subprocess.run(["rm", "-rf", str(tmp)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
