"""Traffic probes run inside network namespaces (python3 one-liners, so no
tool beyond iproute2 and the interpreter is needed)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import uuid

PYTHON = sys.executable

SERVER = r"""
import socket, sys, threading
family = socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[2], int(sys.argv[1])))
s.listen(64)
name = (sys.argv[3] if len(sys.argv) > 3 else "-").encode()
print("ready", flush=True)
def serve(c, peer):
    f = c.makefile("rwb", buffering=0)
    for line in f:
        address = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
        f.write(b"ok " + address.encode() + b" " + name + b" " + line)
    c.close()
while True:
    c, peer = s.accept()
    threading.Thread(target=serve, args=(c, peer), daemon=True).start()
"""

CLIENT = r"""
import socket, sys
ip, port, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
family = socket.AF_INET6 if ":" in ip else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[4]))
if src:
    s.bind((src, 0))
try:
    s.connect((ip, port))
    s.sendall(b"hello\n")
    print(s.makefile("rb").readline().decode().strip())
except OSError as e:
    print("fail", e)
    sys.exit(1)
"""

# a connection kept open: each line on stdin is sent, each reply printed
SESSION = r"""
import socket, sys
ip, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in ip else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(3)
s.connect((ip, port))
f = s.makefile("rb")
print("connected", flush=True)
for line in sys.stdin:
    try:
        s.sendall(line.encode())
        reply = f.readline().decode().strip()
        print(reply or "closed", flush=True)
    except OSError as e:
        print("fail", e, flush=True)
"""


def in_ns(ns: str | None, *cmd: str) -> list[str]:
    return (["ip", "netns", "exec", ns] if ns else []) + list(cmd)


def sh(ns: str | None, *cmd: str, check: bool = True) -> str:
    proc = subprocess.run(in_ns(ns, *cmd), capture_output=True, text=True)
    if check and proc.returncode:
        raise RuntimeError(f"{cmd} in {ns}: {proc.returncode} {proc.stderr.strip()}")
    return proc.stdout


class TcpServer:
    def __init__(self, ns: str, port: int, bind: str = "0.0.0.0", name: str = "-"):
        self.proc = subprocess.Popen(in_ns(ns, PYTHON, "-u", "-c", SERVER, str(port), bind,
                                           name),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"server in {ns}: {self.proc.stderr.read()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def tcp(ns: str, ip: str, port: int, src: str = "", timeout: float = 2.0) -> str | None:
    """The server's reply ("ok <peer address> <server name> hello"), or None when the
    connection could not be made."""
    proc = subprocess.run(in_ns(ns, PYTHON, "-c", CLIENT, ip, str(port), src, str(timeout)),
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ping(ns: str, ip: str, src: str | None = None, count: int = 1, wait: int = 2) -> bool:
    cmd = ["busybox", "ping", "-c", str(count), "-W", str(wait)]
    if src:
        cmd += ["-I", src]
    return subprocess.run(in_ns(ns, *cmd, ip), capture_output=True).returncode == 0


class Session:
    """A TCP connection held open from ``ns``."""

    def __init__(self, ns: str, ip: str, port: int):
        self.proc = subprocess.Popen(in_ns(ns, PYTHON, "-u", "-c", SESSION, ip, str(port)),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        first = self._line(5)
        if first != "connected":
            self.close()
            raise RuntimeError(f"session: {first} {self.proc.stderr.read()}")

    def _line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return "timeout"
        return self.proc.stdout.readline().strip()

    def exchange(self, text: str = "ping") -> str:
        """The reply to one line, "fail ..." or "closed" when the connection is gone."""
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        return self._line(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def unique(prefix: str = "p9") -> str:
    return prefix + uuid.uuid4().hex[:6]


def netns_list() -> list[str]:
    try:
        return os.listdir("/run/netns")
    except FileNotFoundError:
        return []
