"""Helpers the bench scripts share."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time

PIPE_SIZE = 1 << 20


def hash_cpu_per_gib(name: str) -> float:
    """CPU seconds one hash (hashlib ``name``) takes over a GiB on this CPU, from 256 MiB.
    Uploads must compute the hashes the APIs return (Swift's MD5 ETag, Glance's
    checksum and os_hash_value), each on one core: the ceiling no server can pass."""
    import hashlib

    block = os.urandom(4 << 20)
    h = hashlib.new(name, usedforsecurity=False)
    t = time.process_time()
    for _ in range(64):
        h.update(block)
    return (time.process_time() - t) * 4


def splice_body(sock_fd: int, length: int, sink_fd: int) -> int:
    """Move ``length`` bytes of a response body from a socket to ``sink_fd`` (a file,
    or /dev/null) through a pipe, in the kernel: a bench client then costs as little
    as `cp` does, as sendfile makes its uploads cheap. Returns the bytes moved."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    got = 0
    try:
        while got < length:
            n = os.splice(sock_fd, w, min(PIPE_SIZE, length - got))
            if not n:
                break
            got += n
            while n:
                n -= os.splice(r, sink_fd, n)
    finally:
        os.close(r)
        os.close(w)
    return got


def timed_cp(src: str, dst: str, sync: bool) -> float:
    """Seconds `cp` (and, with ``sync``, `sync` of the copy) takes; the copy is then
    removed and everything flushed, so the next measure starts clean."""
    started = time.monotonic()
    subprocess.run(["cp", src, dst], check=True)
    if sync:
        subprocess.run(["sync", dst], check=True)
    elapsed = time.monotonic() - started
    os.unlink(dst)
    subprocess.run(["sync"], check=True)
    return elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UpProcess:
    """`pocketstack up` in a subprocess with its own config file and state directory;
    ``start`` returns once GET ``ready_path`` answers ``ready_status``."""

    def __init__(self, state: str, port: int, config: str, ready_path: str,
                 ready_status: int = 200):
        self.state, self.port = state, port
        self.url = f"http://127.0.0.1:{port}"
        self.ready_path, self.ready_status = ready_path, ready_status
        os.makedirs(state, exist_ok=True)
        self.conf = os.path.join(state, "bench.conf")
        with open(self.conf, "w") as f:
            f.write(config)

    def start(self) -> None:
        import httpx

        self.log = open(os.path.join(self.state, "up.log"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pocketstack", "up", "--config-file", self.conf,
             "--state-path", self.state, "--port", str(self.port), "--no-user-clouds-yaml"],
            stdout=self.log, stderr=subprocess.STDOUT)
        started = time.monotonic()
        while True:
            try:
                if httpx.get(self.url + self.ready_path,
                             timeout=5).status_code == self.ready_status:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() - started > 60:
                raise RuntimeError(open(os.path.join(self.state, "up.log")).read())
            time.sleep(0.01)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.log.close()
