#!/usr/bin/env python3
"""Identity benchmark: `pocketstack up` in a subprocess, loads from a second process.

    python3 bench/identity.py [--duration 10] [--services identity,...]

Measures, at concurrency 4 with production bcrypt cost (12):
token validation (GET /v3/auth/tokens), token rescope (POST, token method),
password token issue, GET /v3/users with 1000 users; cold start of `up` to a
first token (fresh state and restart); RSS of the server. Prints each figure
beside its goal (../shared/ANCHORS.md). Timings only: never pass/fail.
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
import time

ADMIN_PASSWORD = "bench-admin-password"
USER_PASSWORD = "bench-user-password"
CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")

# -- the load client (runs in its own process: `identity.py --client SPEC`) ----------


async def _worker(host, port, requests, deadline, result):
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    n = len(requests)
    while time.monotonic() < deadline:
        writer.write(requests[i % n])
        i += 1
        head = await reader.readuntil(b"\r\n\r\n")
        match = CONTENT_LENGTH.search(head)
        if match:
            await reader.readexactly(int(match.group(1)))
        status = int(head[9:12])
        result["ok" if 200 <= status < 300 else "bad"] += 1
        if status >= 300 and "first_bad" not in result:
            result["first_bad"] = head[:200].decode(errors="replace")
    writer.close()


def _request(method, path, host, headers=None, body=None) -> bytes:
    data = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def run_client(spec: dict) -> dict:
    host, port = spec["host"], spec["port"]
    requests = [_request(r["method"], r["path"], f"{host}:{port}", r.get("headers"),
                         r.get("body")) for r in spec["requests"]]
    result = {"ok": 0, "bad": 0}

    async def main():
        deadline = time.monotonic() + spec["duration"]
        # Spread the request list over the workers so each connection cycles through it.
        c = spec["concurrency"]
        await asyncio.gather(*[_worker(host, port, requests[i::c] or requests, deadline, result)
                               for i in range(c)])

    started = time.monotonic()
    cpu0 = time.process_time()
    asyncio.run(main())
    result["elapsed"] = time.monotonic() - started
    result["client_cpu"] = time.process_time() - cpu0
    return result


# -- driving the server ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, state: str, port: int, services: list[str] | None):
        self.state, self.port = state, port
        self.conf = os.path.join(state, "bench.conf")
        os.makedirs(state, exist_ok=True)
        with open(self.conf, "w") as f:
            f.write("[DEFAULT]\n")
            if services:
                f.write(f"enabled_services = {','.join(services)}\n")
            f.write(f"\n[bootstrap]\nadmin_password = {ADMIN_PASSWORD}\n")
        self.proc = None
        self.url = f"http://127.0.0.1:{port}/identity"

    def start(self) -> float:
        """Start `pocketstack up`; seconds until a first token is issued."""
        import httpx

        body = password_auth("admin", ADMIN_PASSWORD, {"project": {
            "name": "admin", "domain": {"id": "default"}}})
        # one client for the polls: a new one per attempt costs ~50 ms of CPU (TLS
        # context), taken from the server starting on the same two cores
        client = httpx.Client(timeout=5)
        started = time.monotonic()
        self.log = open(os.path.join(self.state, "up.log"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pocketstack", "up", "--config-file", self.conf,
             "--state-path", self.state, "--port", str(self.port), "--no-user-clouds-yaml"],
            stdout=self.log, stderr=subprocess.STDOUT)
        while True:
            try:
                r = client.post(self.url + "/v3/auth/tokens", json=body)
                if r.status_code == 201:
                    self.start_cpu = self.cpu_seconds()
                    client.close()
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() - started > 60:
                raise RuntimeError(open(os.path.join(self.state, "up.log")).read())
            time.sleep(0.005)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()

    def rss_mb(self) -> tuple[float, float]:
        values = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def password_auth(name, password, scope=None) -> dict:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": "default"}, "password": password}}}}}
    if scope:
        body["auth"]["scope"] = scope
    return body


def token_auth(token, scope) -> dict:
    return {"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                     "scope": scope}}


def drive(server: Server, requests: list[dict], duration: float, concurrency: int) -> dict:
    spec = {"host": "127.0.0.1", "port": server.port, "duration": duration,
            "concurrency": concurrency, "requests": requests}
    cpu0 = server.cpu_seconds()
    proc = subprocess.run([sys.executable, __file__, "--client", json.dumps(spec)],
                          capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout)
    result["server_cpu"] = server.cpu_seconds() - cpu0
    result["rate"] = result["ok"] / result["elapsed"]
    result["cpu_ms"] = 1000 * result["server_cpu"] / max(result["ok"], 1)
    return result


def setup(server: Server, users: int) -> dict:
    import httpx

    c = httpx.Client(base_url=server.url, timeout=120)
    r = c.post("/v3/auth/tokens", json=password_auth("admin", ADMIN_PASSWORD, {"project": {
        "name": "admin", "domain": {"id": "default"}}}))
    admin = r.headers["X-Subject-Token"]
    h = {"X-Auth-Token": admin}
    member = c.get("/v3/roles", params={"name": "member"}, headers=h).json()["roles"][0]["id"]
    projects = [c.post("/v3/projects", json={"project": {"name": f"bench-{i}"}},
                       headers=h).json()["project"]["id"] for i in range(2)]
    user = c.post("/v3/users", json={"user": {"name": "bench-user", "password": USER_PASSWORD,
                                               "default_project_id": projects[0]}},
                  headers=h).json()["user"]["id"]
    for p in projects:
        c.put(f"/v3/projects/{p}/users/{user}/roles/{member}", headers=h)
    existing = len(c.get("/v3/users", headers=h).json()["users"])
    for i in range(users - existing):
        c.post("/v3/users", json={"user": {"name": f"user-{i:05d}", "email": f"u{i}@example.org"}},
               headers=h)
    r = c.post("/v3/auth/tokens", json=password_auth("bench-user", USER_PASSWORD, "unscoped"))
    unscoped = r.headers["X-Subject-Token"]
    subjects = []
    for i in range(20):
        r = c.post("/v3/auth/tokens", json=token_auth(unscoped, {"project": {
            "id": projects[i % 2]}}))
        subjects.append(r.headers["X-Subject-Token"])
    count = len(c.get("/v3/users", headers=h).json()["users"])
    c.close()
    return {"admin": admin, "projects": projects, "unscoped": unscoped, "subjects": subjects,
            "users": count}


def bcrypt_limit() -> tuple[float, float]:
    import bcrypt

    hashed = bcrypt.hashpw(b"x" * 20, bcrypt.gensalt(12))
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(3):
        bcrypt.checkpw(b"x" * 20, hashed)
    one = (time.perf_counter() - started) / 3
    one_cpu = (time.process_time() - cpu) / 3
    return one, (os.cpu_count() or 1) / one, one_cpu


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--client")
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--services", help="comma-separated (default: the whole cloud)")
    p.add_argument("--keep", action="store_true", help="keep the state directory")
    args = p.parse_args()
    if args.client:
        print(json.dumps(run_client(json.loads(args.client))))
        return 0

    services = args.services.split(",") if args.services else None
    state = tempfile.mkdtemp(prefix="pocketstack-bench-")
    server = Server(state, free_port(), services)
    rows = []
    try:
        fresh = server.start()
        fresh_cpu = server.start_cpu
        time.sleep(0.5)
        idle_fresh = server.rss_mb()[0]
        server.stop()
        restart = server.start()
        restart_cpu = server.start_cpu
        time.sleep(0.5)
        idle_rss = server.rss_mb()[0]
        data = setup(server, args.users)
        d, c = args.duration, args.concurrency
        admin = {"X-Auth-Token": data["admin"]}

        validate = drive(server, [{"method": "GET", "path": "/identity/v3/auth/tokens",
                                   "headers": {**admin, "X-Subject-Token": s}}
                                  for s in data["subjects"]], d, c)
        rescope = drive(server, [{"method": "POST", "path": "/identity/v3/auth/tokens",
                                  "body": token_auth(data["unscoped"],
                                                     {"project": {"id": pid}})}
                                 for pid in data["projects"]], d, c)
        issue = drive(server, [{"method": "POST", "path": "/identity/v3/auth/tokens",
                                "body": password_auth("bench-user", USER_PASSWORD, {
                                    "project": {"id": data["projects"][0]}})}], d, c)
        listing = drive(server, [{"method": "GET", "path": "/identity/v3/users",
                                  "headers": admin}], d, c)
        rss, hwm = server.rss_mb()
        hash_time, limit, hash_cpu = bcrypt_limit()

        def row(name, result, goal, ok):
            bad = f", {result['bad']} errors" if result["bad"] else ""
            rows.append((name, f"{result['rate']:,.0f}/s ({result['cpu_ms']:.2f} ms server CPU "
                               f"a request{bad})", goal, ok))

        row("token validation (GET /v3/auth/tokens)", validate, "≥ 2,500/s",
            validate["rate"] >= 2500)
        row("token rescope (POST, token method)", rescope, "≥ 1,500/s", rescope["rate"] >= 1500)
        row("password token issue", issue,
            f"bcrypt limit {limit:.1f}/s ({os.cpu_count()} cores ÷ {hash_time * 1000:.0f} ms; "
            f"a hash is {hash_cpu * 1000:.0f} ms CPU)",
            issue["rate"] >= 0.8 * limit)
        row(f"GET /v3/users ({data['users']} users)", listing, "≥ 100/s", listing["rate"] >= 100)
        rows.append(("cold start to first token (fresh state)",
                     f"{fresh:.2f} s ({fresh_cpu:.2f} s server CPU)", "< 1 s", fresh < 1))
        rows.append(("cold start to first token (restart)",
                     f"{restart:.2f} s ({restart_cpu:.2f} s server CPU)", "< 1 s",
                     restart < 1))
        rows.append(("RSS idle (fresh / restarted)", f"{idle_fresh:.0f} / {idle_rss:.0f} MB",
                     "< 150 MB", max(idle_fresh, idle_rss) < 150))
        rows.append(("RSS after the loads (peak)", f"{rss:.0f} MB ({hwm:.0f} MB)", "< 150 MB",
                     hwm < 150))
        server.stop()
    except BaseException:
        if server.proc and server.proc.poll() is None:
            server.stop()
        print(open(os.path.join(state, "up.log")).read()[-3000:], file=sys.stderr)
        raise
    finally:
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)

    print(f"pocketstack identity bench: concurrency {args.concurrency}, {args.duration:.0f} s "
          f"a load, services: {args.services or 'all'}, {os.cpu_count()} cores, bcrypt cost 12, "
          f"load average {os.getloadavg()[0]:.1f}")
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    for name, value, goal, ok in rows:
        print(f"  {name:<{width}}  {value:<{vwidth}}  goal {goal:<22} {'ok' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
