"""Object storage bench: big-object throughput vs cp, server memory, small-object rates.

    python3 bench/objectstore.py [--size-mib 1024] [--rss-size-mib 2048] [--small 4000]
                                 [--direct-io]

Starts a cloud (identity + objectstore) in a separate process with its state on
the same disk as the `cp` baseline, then from this process:

1. 1 GiB object PUT and GET wall-clock throughput, beside `cp` + `sync` of the
   same file in the same run; server CPU seconds per GiB (from /proc).
2. Peak RSS of the server while a 2 GiB object goes in and out, vs idle.
3. 4 KiB objects: PUT and GET per second at concurrency 8 (keep-alive HTTP/1.1).

Figures only, printed beside the goals of ANCHORS.md; never pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

from _common import (  # bench/ is on the path when a script runs
    hash_cpu_per_gib,
    splice_body,
    timed_cp,
)

GIB = 1024 ** 3


def serve(state_path: str, direct_io: bool) -> None:
    """Child process: run the cloud as `pocketstack up` does (uvloop, main thread)."""
    from pocketstack import cloud as cloud_mod
    from pocketstack import config
    from pocketstack.testing import FAST_DEFAULTS

    conf = config.load([], {**FAST_DEFAULTS, "state_path": state_path, "bind_port": 0,
                            "enabled_services": ["identity", "objectstore"],
                            "objectstore.direct_io": direct_io})
    sock = cloud_mod.bind_socket(conf)
    cloud = cloud_mod.Cloud(conf)
    cloud.start()
    server = cloud_mod.Server(cloud, sock)
    print(json.dumps({"url": cloud.public_url, "password": conf.bootstrap.admin_password,
                      "pid": os.getpid()}), flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), setattr(server.server, "should_exit",
                                                               True)), daemon=True).start()
    server.run()
    cloud.stop()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.stop = False

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.01)


def token_and_url(url: str, password: str) -> tuple[str, str]:
    import httpx

    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    r = httpx.post(url + "/identity/v3/auth/tokens", json=body)
    r.raise_for_status()
    project = r.json()["token"]["project"]["id"]
    return r.headers["X-Subject-Token"], f"{url}/object-store/v1/AUTH_{project}"


def _conn(storage: str) -> tuple[socket.socket, str, str]:
    u = urllib.parse.urlsplit(storage)
    sock = socket.create_connection((u.hostname, u.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, u.netloc, u.path


def _read_head(sock: socket.socket) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, rest


def put_file(storage: str, token: str, path: str, src: str) -> None:
    """PUT a file with sendfile (the client costs as little as it can)."""
    sock, host, base = _conn(storage)
    size = os.path.getsize(src)
    sock.sendall((f"PUT {base}/{path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\n"
                  f"Content-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n")
                 .encode())
    with open(src, "rb") as f:
        offset = 0
        while offset < size:
            offset += os.sendfile(sock.fileno(), f.fileno(), offset, size - offset)
    status, _h, _rest = _read_head(sock)
    sock.close()
    assert status == 201, status


def get_file(storage: str, token: str, path: str, dst: str | None) -> int:
    sock, host, base = _conn(storage)
    sock.sendall(f"GET {base}/{path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {token}\r\n\r\n"
                 .encode())
    status, headers, rest = _read_head(sock)
    assert status == 200, status
    length = int(headers["content-length"])
    got = len(rest)
    out = open(dst, "wb") if dst else None
    if out and rest:
        out.write(rest)
        out.flush()
    sink = out.fileno() if out else os.open(os.devnull, os.O_WRONLY)
    try:
        got += splice_body(sock.fileno(), length - got, sink)
    finally:
        if not out:
            os.close(sink)
    if out:
        os.fsync(out.fileno())
        out.close()
    sock.close()
    return got


async def small_objects(storage: str, token: str, count: int, conc: int,
                        pid: int) -> list[tuple[float, float]]:
    u = urllib.parse.urlsplit(storage)
    body = os.urandom(4096)

    async def worker(i: int, method: str, names: list[str]):
        reader, writer = await asyncio.open_connection(u.hostname, u.port)
        for name in names:
            if method == "PUT":
                req = (f"PUT {u.path}/small/{name} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                       f"X-Auth-Token: {token}\r\nContent-Length: 4096\r\n\r\n").encode() + body
            else:
                req = (f"GET {u.path}/small/{name} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                       f"X-Auth-Token: {token}\r\n\r\n").encode()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            assert status in (200, 201), head
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
        writer.close()

    names = [f"o{i:06d}" for i in range(count)]
    shards = [names[i::conc] for i in range(conc)]
    rates = []
    for method in ("PUT", "GET"):
        cpu0 = cpu_seconds(pid)
        t = time.perf_counter()
        await asyncio.gather(*(worker(i, method, shards[i]) for i in range(conc)))
        rates.append((count / (time.perf_counter() - t),
                      (cpu_seconds(pid) - cpu0) / count * 1000))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rss-size-mib", type=int, default=2048)
    parser.add_argument("--small", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    parser.add_argument("--direct-io", action=argparse.BooleanOptionalAction, default=False,
                        help="[objectstore] direct_io: big objects kept out of the page "
                             "cache, as Swift does")
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.direct_io)

    work = tempfile.mkdtemp(prefix="os-bench-", dir=args.dir)
    state = os.path.join(work, "state")
    proc = subprocess.Popen([sys.executable, __file__, "--serve", state]
                            + ["--direct-io" if args.direct_io else "--no-direct-io"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        pid = info["pid"]
        import httpx

        for _ in range(500):
            try:
                httpx.get(info["url"] + "/object-store/info")
                break
            except httpx.HTTPError:
                time.sleep(0.02)
        token, storage = token_and_url(info["url"], info["password"])
        for c in ("big", "small"):
            httpx.put(f"{storage}/{c}", headers={"X-Auth-Token": token}).raise_for_status()

        size = args.size_mib * 1024 * 1024
        src = os.path.join(work, "src.bin")
        with open(src, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(args.size_mib):
                f.write(block)
        subprocess.run(["sync"], check=True)
        print(f"# object storage bench, {args.size_mib} MiB object, work dir on "
              f"{work}, [objectstore] direct_io = {args.direct_io}")

        # Rounds of: cp + sync of the same file on the same disk, then the object PUT,
        # GET to a file (+ fsync) and GET to nowhere (with direct_io, big objects bypass
        # the page cache both ways); medians, as the machine is shared.
        rounds = []
        for _ in range(args.rounds):
            cp_s = timed_cp(src, os.path.join(work, "copy.bin"), sync=True)
            # The same with the source read from disk, as a GET reads a big object.
            with open(src, "rb") as f:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            cold_s = timed_cp(src, os.path.join(work, "copy.bin"), sync=True)

            cpu0 = cpu_seconds(pid)
            t = time.perf_counter()
            put_file(storage, token, "big/one", src)
            put_s = time.perf_counter() - t
            put_cpu = cpu_seconds(pid) - cpu0

            cpu0 = cpu_seconds(pid)
            t = time.perf_counter()
            got = get_file(storage, token, "big/one", os.path.join(work, "got.bin"))
            get_s = time.perf_counter() - t
            get_cpu = cpu_seconds(pid) - cpu0
            assert got == size
            os.unlink(os.path.join(work, "got.bin"))
            subprocess.run(["sync"], check=True)

            cpu0 = cpu_seconds(pid)
            t = time.perf_counter()
            get_file(storage, token, "big/one", None)
            null_s = time.perf_counter() - t
            null_cpu = cpu_seconds(pid) - cpu0
            rounds.append((cp_s, put_s, put_cpu, get_s, get_cpu, null_s, null_cpu, cold_s))
            httpx.delete(f"{storage}/big/one", headers={"X-Auth-Token": token})

        def med(i):
            return statistics.median(r[i] for r in rounds)

        def ratio(i, base=0):
            return statistics.median(r[base] / r[i] for r in rounds)

        gib = size / GIB
        mbps = size / 1e6
        md5_cpu = hash_cpu_per_gib("md5")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
              f"medians of {args.rounds} rounds")
        print(f"cp + sync                 {mbps / med(0):8.0f} MB/s ({med(0):.2f} s)")
        print(f"PUT 1 object              {mbps / med(1):8.0f} MB/s = {ratio(1):.2f} of cp "
              f"(goal >= 0.70); server {med(2) / gib:.2f} CPU-s/GiB (goal <= 1)")
        print(f"  (the ETag alone, MD5 of the body, costs {md5_cpu:.2f} CPU-s/GiB on this CPU: "
              f"at most {1 / md5_cpu * GIB / 1e6:.0f} MB/s)")
        print(f"GET to file + fsync       {mbps / med(3):8.0f} MB/s = {ratio(3):.2f} of cp "
              f"(goal >= 0.70); server {med(4) / gib:.2f} CPU-s/GiB (goal <= 1)")
        print(f"GET to /dev/null         {mbps / med(5):8.0f} MB/s = {ratio(5):.2f} of cp; "
              f"server {med(6) / gib:.2f} CPU-s/GiB")
        print(f"cp + sync, source not cached {mbps / med(7):5.0f} MB/s; GET to file + fsync = "
              f"{ratio(3, 7):.2f} of it, GET to /dev/null = {ratio(5, 7):.2f} of it")
        os.unlink(src)

        # RSS while moving a 2 GiB object.
        rsrc = os.path.join(work, "rss.bin")
        with open(rsrc, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(args.rss_size_mib):
                f.write(block)
        time.sleep(0.5)
        idle = rss_mib(pid)
        sampler = RssSampler(pid)
        sampler.start()
        put_file(storage, token, "big/two", rsrc)
        get_file(storage, token, "big/two", None)
        sampler.stop = True
        sampler.join()
        print(f"server RSS idle {idle:.1f} MiB, peak moving {args.rss_size_mib} MiB "
              f"{sampler.peak:.1f} MiB: +{sampler.peak - idle:.1f} MiB (goal <= +50 MB)")
        httpx.delete(f"{storage}/big/two", headers={"X-Auth-Token": token})
        os.unlink(rsrc)

        (put_rate, put_ms), (get_rate, get_ms) = asyncio.run(
            small_objects(storage, token, args.small, 8, pid))
        print(f"4 KiB objects, c=8        PUT {put_rate:7.0f}/s (goal >= 600), "
              f"{put_ms:.2f} ms CPU each; GET {get_rate:7.0f}/s (goal >= 2000), "
              f"{get_ms:.2f} ms CPU each")
    finally:
        proc.stdin.close()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
