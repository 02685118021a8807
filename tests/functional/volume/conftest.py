"""Fixtures for the block storage tests: a small cloud, and a real NFS server.

The NFS server is nfs-ganesha (NFSv3, VFS FSAL exporting a temporary
directory) registered with rpcbind. Each server binds its own loopback
address (127.0.0.N, claimed with a lock file so parallel workers never
share one) on fixed ports, so the portmapper's answer (a port) is right for
every server. Servers are stopped with SIGKILL: a clean shutdown would
unregister the ports the other servers rely on.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import missing

NFS_PORT = 20490
MNT_PORT = 20048
LOCK_DIR = "/tmp/pocketstack-test-nfs"


def wait_for(fn, timeout: float = 60.0, interval: float = 0.02, what: str = "condition"):
    """Poll ``fn`` until it returns a true value (a guard against hangs, not a timing test)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def wait_status(get, status: str, timeout: float = 60.0):
    """Poll ``get()`` (an SDK resource fetch) until its status is ``status``."""
    seen = {}

    def check():
        res = get()
        seen["status"] = res.status
        if res.status == status:
            return res
        if res.status.startswith("error") and not status.startswith("error"):
            raise AssertionError(f"{res.id} went to {res.status}")
        return None

    try:
        return wait_for(check, timeout, what=f"status {status}")
    except AssertionError as exc:
        raise AssertionError(f"{exc} (last status {seen.get('status')})") from None


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def ensure_rpcbind() -> None:
    if port_open("127.0.0.1", 111):
        return
    binary = shutil.which("rpcbind") or ("/usr/sbin/rpcbind"
                                         if os.path.exists("/usr/sbin/rpcbind") else None)
    if binary is None:
        missing("rpcbind")
    os.makedirs("/run/rpcbind", exist_ok=True)
    subprocess.run([binary, "-w"], check=False)
    wait_for(lambda: port_open("127.0.0.1", 111), 10, what="rpcbind")


_RUNNING: set = set()


@atexit.register
def _kill_leftovers() -> None:
    """A worker that ends without its fixtures' teardown leaves no server behind."""
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()


class Ganesha:
    """One nfs-ganesha server exporting ``root/export`` on its own loopback address."""

    def __init__(self, root: Path):
        self.root = root
        self.export = root / "export"
        self.export.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.address, self._lock = self._claim_address()
        self.conf = root / "ganesha.conf"
        self.log = root / "ganesha.log"
        (root / "recovery").mkdir(exist_ok=True)
        self.conf.write_text(f"""
NFS_CORE_PARAM {{
  Bind_addr = {self.address};
  NFS_Port = {NFS_PORT};
  MNT_Port = {MNT_PORT};
  NLM_Port = 0;
  Rquota_Port = 0;
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Enable_UDP = false;
  Protocols = 3;
}}
NFSv4 {{ Graceless = true; RecoveryRoot = {root / "recovery"}; }}
NFS_KRB5 {{ Active_krb5 = false; }}
EXPORT {{
  Export_Id = 1;
  Path = {self.export};
  Pseudo = {self.export};
  Access_Type = RW;
  Squash = No_Root_Squash;
  SecType = sys;
  Protocols = 3;
  Transports = TCP;
  FSAL {{ Name = VFS; }}
}}
""")

    @staticmethod
    def _claim_address():
        os.makedirs(LOCK_DIR, exist_ok=True)
        for n in range(10, 250):
            address = f"127.0.0.{n}"
            fd = os.open(os.path.join(LOCK_DIR, address), os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if port_open(address, NFS_PORT):  # a server left running by a killed run
                os.close(fd)
                continue
            return address, fd
        raise RuntimeError("no free loopback address for an NFS server")

    def share(self, name: str | None = None) -> str:
        """A fresh directory of the export, as a share string host:/path."""
        sub = self.export / (name or uuid.uuid4().hex[:12])
        sub.mkdir(parents=True, exist_ok=True)
        return f"{self.address}:{sub}"

    def local(self, share: str) -> Path:
        return Path(share.partition(":")[2])

    def start(self) -> None:
        binary = shutil.which("ganesha.nfsd")
        if binary is None:
            missing("nfs-ganesha (ganesha.nfsd)")
        from pocketstack.volume.drivers.libnfs import NfsClient, NfsError, library

        if library() is None:
            missing("libnfs")
        ensure_rpcbind()
        # servers starting at the same moment race on their rpcbind registration
        # (one of them gives up): starts are serialised across test workers
        os.makedirs(LOCK_DIR, exist_ok=True)
        with open(os.path.join(LOCK_DIR, "starting"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for _attempt in range(3):
                self.proc = subprocess.Popen(
                    [binary, "-F", "-f", str(self.conf), "-L", str(self.log), "-p",
                     str(self.root / "ganesha.pid"), "-N", "NIV_EVENT"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                _RUNNING.add(self.proc)

                def answers():
                    if self.proc.poll() is not None:
                        return "exited"
                    client = NfsClient(self.address, str(self.export), timeout=2)
                    try:
                        client.listdir()
                        return True
                    except NfsError:
                        return False
                    finally:
                        client.close()

                try:
                    started = wait_for(answers, 60, interval=0.05, what="nfs-ganesha")
                except AssertionError:
                    self.kill()
                    raise
                if started is True:
                    return
            raise AssertionError(f"ganesha exited: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """The server dies (SIGKILL: no clean unregistering from rpcbind)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        _RUNNING.discard(self.proc)
        self.proc = None

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def close(self) -> None:
        self.kill()
        os.close(self._lock)


@pytest.fixture(scope="session")
def nfs_server(tmp_path_factory):
    """One NFS server per test worker; each test takes its own share (directory)."""
    server = Ganesha(tmp_path_factory.mktemp("nfs"))
    server.start()
    yield server
    server.close()


@pytest.fixture
def own_nfs_server(tmp_path):
    """An NFS server for one test (it may be stopped and started again)."""
    server = Ganesha(tmp_path / "nfs")
    server.start()
    yield server
    server.close()


def nfs_overrides(tmp_path: Path, shares: list[str], backends=("nfs",), **extra) -> dict:
    path = tmp_path / f"nfs_shares-{uuid.uuid4().hex[:6]}"
    path.write_text("".join(f"{s}\n" for s in shares))
    return {"enabled_services": ["identity", "volume"], "enabled_backends": list(backends),
            "nfs.nfs_shares_config": str(path), "nfs.nfs_client": "libnfs",
            "nfs.nfs_timeout": 10.0, "volume_cleanup_interval": 0.2, **extra}


@pytest.fixture
def volume_cloud(pocketstack_cloud_factory):
    """identity + volume, the default file backend."""
    return pocketstack_cloud_factory(enabled_services=["identity", "volume"],
                                     volume_cleanup_interval=0.2)


def qemu_io(path_or_url: str, command: str) -> str:
    if shutil.which("qemu-io") is None:
        missing("qemu-io")
    proc = subprocess.run(["qemu-io", "-c", command, path_or_url], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def pattern_at(path_or_url: str, offset: int, length: int, byte: int) -> bool:
    out = qemu_io(path_or_url, f"read -P 0x{byte:02x} {offset} {length}")
    return "Pattern verification failed" not in out
