#!/usr/bin/env python3
"""Image service benchmark: `pocketstack up` in a subprocess, loads from a second process.

    python3 bench/image.py [--size-mib 1024] [--duration 10] [--images 1000]

Measures 1 GiB image upload (PUT /file) and download (GET /file) against
plain `cp` of the same file on the same disk in the same run (upload is
compared with cp + fsync, since an upload is durable before it is
acknowledged; download both ways, plain and with an fsync of the copy), the
server's CPU seconds and peak RSS while moving the data,
and GET /v2/images with 1000 images: the default page and limit=1000, at
concurrency 4. Prints each figure beside its goal (../shared/ANCHORS.md).
Timings only: never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from _common import (  # bench/ is on the path when a script runs
    UpProcess,
    free_port,
    hash_cpu_per_gib,
    splice_body,
    timed_cp,
)

ADMIN_PASSWORD = "bench-admin-password"
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
MIB = 1024 * 1024

# -- client side (runs in its own process: `image.py --client SPEC`) ----------------


def _read_head(sock) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def client_upload(spec: dict) -> dict:
    """PUT the file with sendfile (the client costs next to nothing)."""
    size = os.path.getsize(spec["file"])
    with socket.create_connection(("127.0.0.1", spec["port"])) as sock, \
            open(spec["file"], "rb") as f:
        head = (f"PUT {spec['path']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"X-Auth-Token: {spec['token']}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {size}\r\n\r\n").encode()
        started = time.monotonic()
        sock.sendall(head)
        sock.sendfile(f)
        head, _ = _read_head(sock)
        elapsed = time.monotonic() - started
    return {"elapsed": elapsed, "status": int(head[9:12])}


def client_download(spec: dict) -> dict:
    """GET the file into a file (as `openstack image save` does), the body spliced by the
    kernel so the client's own copying does not cap the figure."""
    with socket.create_connection(("127.0.0.1", spec["port"])) as sock, \
            open(spec["out"], "wb") as out:
        started, cpu = time.monotonic(), time.process_time()
        sock.sendall((f"GET {spec['path']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"X-Auth-Token: {spec['token']}\r\n\r\n").encode())
        head, rest = _read_head(sock)
        length = int(CONTENT_LENGTH.search(head + b"\r\n").group(1))
        out.write(rest)
        out.flush()
        got = len(rest) + splice_body(sock.fileno(), length - len(rest), out.fileno())
        if spec.get("fsync"):
            os.fsync(out.fileno())
        elapsed = time.monotonic() - started
    return {"elapsed": elapsed, "status": int(head[9:12]), "bytes": got,
            "client_cpu": time.process_time() - cpu}


async def _worker(port, request, deadline, result):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.monotonic() < deadline:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        match = CONTENT_LENGTH.search(head)
        if match:
            await reader.readexactly(int(match.group(1)))
        status = int(head[9:12])
        result["ok" if status == 200 else "bad"] += 1
    writer.close()


def client_load(spec: dict) -> dict:
    request = (f"GET {spec['path']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"X-Auth-Token: {spec['token']}\r\nAccept: application/json\r\n\r\n").encode()
    result = {"ok": 0, "bad": 0}

    async def main():
        deadline = time.monotonic() + spec["duration"]
        await asyncio.gather(*[_worker(spec["port"], request, deadline, result)
                               for _ in range(spec["concurrency"])])

    started = time.monotonic()
    asyncio.run(main())
    result["elapsed"] = time.monotonic() - started
    return result


CLIENTS = {"upload": client_upload, "download": client_download, "load": client_load}

# -- server side ---------------------------------------------------------------------


class Server(UpProcess):
    def __init__(self, state: str):
        super().__init__(state, free_port(), "[DEFAULT]\nenabled_services = identity,image\n"
                         f"\n[bootstrap]\nadmin_password = {ADMIN_PASSWORD}\n"
                         # `up` would build and register the guest image meanwhile: not here.
                         "\n[guest_image]\nregister = false\n", "/image/", 300)

    def status(self) -> dict:
        values = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024
        return values

    def reset_peak(self) -> None:
        try:  # Linux >= 4.0: writing 5 resets VmHWM
            with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass

    def thread_cpu(self) -> dict[str, float]:
        """CPU seconds of each live thread of the server."""
        out = {}
        tick = os.sysconf("SC_CLK_TCK")
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                with open(f"/proc/{self.proc.pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            out[tid] = (int(fields[11]) + int(fields[12])) / tick
        return out

    def cpu(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client(kind: str, spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--client", kind, json.dumps(spec)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def password_token(server: Server, user: str, password: str, project: str) -> str:
    import httpx

    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    r = httpx.post(server.url + "/identity/v3/auth/tokens", json=body, timeout=30)
    return r.headers["X-Subject-Token"]


def admin_token(server: Server) -> str:
    return password_token(server, "admin", ADMIN_PASSWORD, "admin")


def member_token(server: Server, admin: str) -> str:
    """A token of a member of a project of its own (what most users list images as)."""
    import httpx

    keystone = httpx.Client(base_url=server.url + "/identity/v3", timeout=30,
                            headers={"X-Auth-Token": admin})
    project = keystone.post("/projects", json={"project": {"name": "bench-project"}}).json()
    user = keystone.post("/users", json={"user": {"name": "bench-user",
                                                  "password": ADMIN_PASSWORD}}).json()
    role = keystone.get("/roles", params={"name": "member"}).json()["roles"][0]
    keystone.put(f"/projects/{project['project']['id']}/users/{user['user']['id']}"
                 f"/roles/{role['id']}").raise_for_status()
    keystone.close()
    return password_token(server, "bench-user", ADMIN_PASSWORD, "bench-project")


def make_file(path: str, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        for i in range(size // MIB):
            f.write(block[i % 7:] + block[: i % 7])  # no two blocks alike
        f.flush()
        os.fsync(f.fileno())


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--client", nargs=2)
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3,
                   help="rounds of cp / upload / download; the best of each is kept")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    if args.client:
        print(json.dumps(CLIENTS[args.client[0]](json.loads(args.client[1]))))
        return 0

    import httpx

    state = tempfile.mkdtemp(prefix="pocketstack-bench-image-", dir=os.environ.get("TMPDIR"))
    server = Server(state)
    rows = []
    try:
        server.start()
        token = admin_token(server)
        glance = httpx.Client(base_url=server.url + "/image", timeout=300,
                              headers={"X-Auth-Token": token})
        size = args.size_mib * MIB
        src = os.path.join(state, "source.raw")
        make_file(src, size)
        idle = server.status()["VmRSS"]
        # The machine may be shared: each measure is taken --repeat times, interleaved
        # with cp, and the best of each is compared.
        cp_sync = cp_plain = float("inf")
        up = down = down_sync = discard = None
        up_peak = down_peak = 0.0
        for _round in range(args.repeat):
            cp_sync = min(cp_sync, timed_cp(src, os.path.join(state, "copy.raw"), sync=True))
            cp_plain = min(cp_plain, timed_cp(src, os.path.join(state, "copy.raw"),
                                              sync=False))
            image = glance.post("/v2/images", json={"name": "big", "disk_format": "raw",
                                                    "container_format": "bare"}).json()
            server.reset_peak()
            cpu0 = server.cpu()
            before = server.thread_cpu()
            seen: dict[str, float] = {}
            done = threading.Event()

            def sample(seen=seen, done=done):  # the upload's threads end with it
                while not done.wait(0.05):
                    seen.update(server.thread_cpu())

            sampler = threading.Thread(target=sample)
            sampler.start()
            this_up = client("upload", {"port": server.port, "token": token, "file": src,
                                        "path": f"/image/v2/images/{image['id']}/file"})
            done.set()
            sampler.join()
            seen.update(server.thread_cpu())
            assert this_up["status"] == 204, this_up
            this_up["cpu"] = server.cpu() - cpu0
            this_up["threads"] = sorted((v - before.get(t, 0.0) for t, v in seen.items()),
                                        reverse=True)
            up_peak = max(up_peak, server.status()["VmHWM"])
            shown = glance.get(f"/v2/images/{image['id']}").json()
            assert shown["status"] == "active" and shown["size"] == size, shown
            if up is None or this_up["elapsed"] < up["elapsed"]:
                up = this_up

            # Downloads plain and made durable (as an upload is: against cp + fsync),
            # twice each: the first copy on a fresh VM pays for pages the host has not
            # mapped yet (cp got its pages just freed by the copy before it).
            out = os.path.join(state, "download.raw")
            for durable in (False, True, False, True):
                server.reset_peak()
                cpu0 = server.cpu()
                this = client("download", {"port": server.port, "token": token, "out": out,
                                           "fsync": durable,
                                           "path": f"/image/v2/images/{image['id']}/file"})
                this["cpu"] = server.cpu() - cpu0
                down_peak = max(down_peak, server.status()["VmHWM"])
                assert this["status"] == 200 and this["bytes"] == size, this
                os.unlink(out)
                best = down_sync if durable else down
                if best is None or this["elapsed"] < best["elapsed"]:
                    if durable:
                        down_sync = this
                    else:
                        down = this
            # The same download with the bytes thrown away: the server's side alone.
            this = client("download", {"port": server.port, "token": token,
                                       "out": os.devnull,
                                       "path": f"/image/v2/images/{image['id']}/file"})
            if discard is None or this["elapsed"] < discard["elapsed"]:
                discard = this
            glance.delete(f"/v2/images/{image['id']}")
        os.unlink(src)
        up_cpu, down_cpu, by_thread = up["cpu"], down["cpu"], up["threads"]

        gib = size / 1024 ** 3
        up_rate = size / MIB / up["elapsed"]
        down_rate = size / MIB / down["elapsed"]
        rows.append((f"upload {args.size_mib} MiB (vs cp + fsync {size / MIB / cp_sync:,.0f} "
                     f"MiB/s)", f"{up_rate:,.0f} MiB/s = {cp_sync / up['elapsed']:.2f} of cp; "
                     f"{up_cpu / gib:.2f} CPU-s/GiB", "≥ 0.5 (issue: 0.7) of cp",
                     cp_sync / up["elapsed"] >= 0.5))
        # What the same work would take if the cores were not shared with other loads:
        # the CPU seconds spread over the cores, or the busiest thread if that is longer.
        bound = max(up_cpu / (os.cpu_count() or 1), by_thread[0] if by_thread else 0)
        rows.append(("upload if the cores were ours (CPU-bound estimate)",
                     f"{size / MIB / bound:,.0f} MiB/s = {cp_sync / bound:.2f} of cp",
                     "(reference only)", True))
        rows.append(("upload CPU-s/GiB of its busiest threads",
                     " / ".join(f"{c / gib:.2f}" for c in by_thread[:4]),
                     "(loop, md5, sha512, write)", True))
        # The API's checksum (MD5) and os_hash_value (SHA-512) each run on one core,
        # and together need both: no upload can beat the slower of those two bounds.
        md5, sha = hash_cpu_per_gib("md5"), hash_cpu_per_gib("sha512")
        ceiling = max(md5, sha, (md5 + sha) / (os.cpu_count() or 1)) * gib
        rows.append((f"upload ceiling of its hashes alone (md5 {md5:.2f}, sha512 {sha:.2f} "
                     "CPU-s/GiB)", f"{size / MIB / ceiling:,.0f} MiB/s = "
                     f"{cp_sync / ceiling:.2f} of cp", "(no server can pass it)", True))
        rows.append((f"download {args.size_mib} MiB to a file (vs cp {size / MIB / cp_plain:,.0f} "
                     "MiB/s)",
                     f"{down_rate:,.0f} MiB/s = {cp_plain / down['elapsed']:.2f} of cp; "
                     f"{down_cpu / gib:.2f} CPU-s/GiB (client {down['client_cpu'] / gib:.2f})",
                     "≥ 0.7 of cp",
                     cp_plain / down["elapsed"] >= 0.7))
        rows.append((f"download to a file + fsync (vs cp + fsync {size / MIB / cp_sync:,.0f} "
                     "MiB/s)",
                     f"{size / MIB / down_sync['elapsed']:,.0f} MiB/s = "
                     f"{cp_sync / down_sync['elapsed']:.2f} of cp", "≥ 0.7 of cp",
                     cp_sync / down_sync["elapsed"] >= 0.7))
        rows.append(("download, client discarding the bytes",
                     f"{size / MIB / discard['elapsed']:,.0f} MiB/s = "
                     f"{cp_plain / discard['elapsed']:.2f} of cp", "(the server's side alone)",
                     cp_plain / discard["elapsed"] >= 0.7))
        rows.append(("server RSS idle / peak in upload / in download",
                     f"{idle:.0f} / {up_peak:.0f} / {down_peak:.0f} MB", "+ < 50 MB",
                     max(up_peak, down_peak) - idle < 50))

        existing = len(glance.get("/v2/images", params={"limit": 1000}).json()["images"])
        for i in range(args.images - existing):
            glance.post("/v2/images", json={"name": f"image-{i:04d}", "disk_format": "qcow2",
                                            "container_format": "bare", "visibility": "public",
                                            "os_distro": "cirros", "tags": ["bench"]})
        count = len(glance.get("/v2/images", params={"limit": 1000}).json()["images"])
        member = member_token(server, token)
        for label, path, goal, who in (
                ("default page", "/image/v2/images", 1000, token),
                ("default page, as a project member", "/image/v2/images", 1000, member),
                ("limit=1000", "/image/v2/images?limit=1000", 50, token)):
            cpu0 = server.cpu()
            result = client("load", {"port": server.port, "token": who, "path": path,
                                     "duration": args.duration,
                                     "concurrency": args.concurrency})
            rate = result["ok"] / result["elapsed"]
            cpu_ms = 1000 * (server.cpu() - cpu0) / max(result["ok"], 1)
            bad = f", {result['bad']} errors" if result["bad"] else ""
            rows.append((f"GET /v2/images ({count} images), {label}",
                         f"{rate:,.0f}/s ({cpu_ms:.2f} ms server CPU a request{bad})",
                         f"≥ {goal:,}/s", rate >= goal))
        glance.close()
        server.stop()
    except BaseException:
        if getattr(server, "proc", None) and server.proc.poll() is None:
            server.stop()
        print(open(os.path.join(state, "up.log")).read()[-3000:], file=sys.stderr)
        raise
    finally:
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)

    print(f"pocketstack image bench: file store, {os.cpu_count()} cores, "
          f"list loads at concurrency {args.concurrency} for {args.duration:.0f} s")
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    for name, value, goal, ok in rows:
        print(f"  {name:<{width}}  {value:<{vwidth}}  goal {goal:<26} {'ok' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
