"""The privileged part of the container driver, run as root through rootwrap.

    python -m pocketstack.compute.virt.launcher start   <instance_dir>  (spec JSON on stdin)
    python -m pocketstack.compute.virt.launcher signal  <instance_dir> TERM|KILL|USR2|...
    python -m pocketstack.compute.virt.launcher freeze|thaw|cleanup|delete <instance_dir>

``start`` makes the instance's cgroups (memory, pids, cpu weight, freezer,
devices; v1 controllers or cgroup v2) under the caller's own cgroup, enters
new mount/PID/UTS/IPC/cgroup namespaces and the instance's named network
namespace, and forks the guest's PID 1: in it, the root is an overlayfs of
the read-only base image (lower) and the instance's own copy-on-write layer
(upper, under ``<instance_dir>/disk``), ``/dev`` is a fresh tmpfs with the
usual nodes plus the attached volumes, the old root is detached
(pivot_root), dangerous capabilities leave the bounding set, and
``/sbin/init`` of the image is executed with the console (a pty served by
:mod:`console_relay`, logged to ``<instance_dir>/console.log``) as its
standard streams. The overlay mount lives only in the instance's mount
namespace, so it goes away with the instance's last process.

Everything it acts on is derived from ``<instance_dir>`` (its last path
element is the instance UUID) and checked: the spec's paths must lie in
the state directory's image cache, names must match strict patterns. Its
own records (pid, cgroups) are kept root-owned in ``<instance_dir>/disk``.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import stat
import sys
import time

from pocketstack.compute.virt import console_relay

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2
SYS_PIVOT_ROOT = 155  # x86_64
PR_CAPBSET_DROP = 24
# capabilities a guest's root does not get: raw devices, modules, clock,
# kernel log, MAC policy, audit, accounting, wake alarms
DROPPED_CAPS = [27, 16, 17, 25, 34, 32, 33, 30, 20, 35, 36, 29]

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NETNS_RE = re.compile(r"^[a-zA-Z0-9][-_.a-zA-Z0-9]{0,62}$")
HOST_RE = re.compile(r"^[a-zA-Z0-9][-.a-zA-Z0-9]{0,62}$")
LOOP_RE = re.compile(r"^/dev/loop[0-9]+$")
VOLNAME_RE = re.compile(r"^vd[b-z]$")
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "freezer", "devices")
DEV_NODES = [  # name, type, major, minor, mode
    ("null", "c", 1, 3, 0o666), ("zero", "c", 1, 5, 0o666), ("full", "c", 1, 7, 0o666),
    ("random", "c", 1, 8, 0o666), ("urandom", "c", 1, 9, 0o666), ("tty", "c", 5, 0, 0o666),
]
DEVICES_ALLOWED = ["c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                   "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"]

libc = ctypes.CDLL(None, use_errno=True)


class LaunchError(Exception):
    pass


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise LaunchError(f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str | None, flags: int = 0,
           data: str | None = None) -> None:
    _check(libc.mount(source.encode(), target.encode(),
                      fstype.encode() if fstype else None, ctypes.c_ulong(flags),
                      data.encode() if data else None), f"mount {target}")


# -- paths and records --------------------------------------------------------

def instance_paths(instance_dir: str) -> dict:
    instance_dir = os.path.abspath(instance_dir)
    uuid = os.path.basename(instance_dir)
    if not UUID_RE.match(uuid) or os.path.basename(os.path.dirname(instance_dir)) != "instances":
        raise LaunchError(f"not an instance directory: {instance_dir}")
    state_path = os.path.dirname(os.path.dirname(instance_dir))
    disk = os.path.join(instance_dir, "disk")
    return {"uuid": uuid, "dir": instance_dir, "state_path": state_path, "disk": disk,
            "upper": os.path.join(disk, "upper"), "work": os.path.join(disk, "work"),
            "root": os.path.join(disk, "root"), "record": os.path.join(disk, "launch.json"),
            "public": os.path.join(instance_dir, "launch.json"),
            "cache": os.path.realpath(os.path.join(state_path, "image-cache"))}


def _read_record(paths: dict) -> dict:
    try:
        with open(paths["record"]) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def _write_record(paths: dict, record: dict) -> None:
    for key, mode in (("record", 0o600), ("public", 0o644)):
        tmp = paths[key] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.chmod(tmp, mode)
        os.replace(tmp, paths[key])


# -- cgroups ------------------------------------------------------------------

def _own_cgroups() -> dict[str, str]:
    """controller -> this process's cgroup path ("" key: the v2 hierarchy)."""
    result = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _id, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(","):
                result[c] = path
    return result


def cgroup_dirs(uuid: str) -> dict[str, str]:
    """Where the instance's cgroups go: ``pocketstack/<uuid>`` at the top of each
    v1 hierarchy we use, or under our own cgroup with cgroup v2 (delegation).
    (v1: not under our own cgroup, whose manager may act on sub-groups it did
    not make.)"""
    dirs = {}
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # pure cgroup v2
        own = _own_cgroups()
        dirs["v2"] = os.path.join("/sys/fs/cgroup" + own.get("", "/").rstrip("/"),
                                  "pocketstack", uuid)
        return dirs
    for c in V1_CONTROLLERS:
        base = f"/sys/fs/cgroup/{c}"
        if os.path.isdir(base):
            dirs[c] = os.path.join(base, "pocketstack", uuid)
    return dirs


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def setup_cgroups(uuid: str, spec: dict) -> dict[str, str]:
    dirs = cgroup_dirs(uuid)
    memory = int(spec.get("memory_mb") or 0) * 1024 * 1024
    pids = int(spec.get("pids_max") or 0)
    weight = max(1, min(int(spec.get("vcpus") or 1), 64))
    for controller, path in dirs.items():
        os.makedirs(path, exist_ok=True)
        if controller == "v2":
            parent = os.path.dirname(path)
            for p in (os.path.dirname(parent), parent):
                try:  # delegate the controllers we use down to our sub-tree
                    _write(os.path.join(p, "cgroup.subtree_control"), "+memory +pids +cpu")
                except OSError:
                    pass
            if memory and os.path.exists(f"{path}/memory.max"):
                _write(f"{path}/memory.max", str(memory))
            if pids and os.path.exists(f"{path}/pids.max"):
                _write(f"{path}/pids.max", str(pids))
            if os.path.exists(f"{path}/cpu.weight"):
                _write(f"{path}/cpu.weight", str(100 * weight))
        elif controller == "memory" and memory:
            _write(f"{path}/memory.limit_in_bytes", str(memory))
        elif controller == "pids" and pids:
            _write(f"{path}/pids.max", str(pids))
        elif controller == "cpu":
            _write(f"{path}/cpu.shares", str(1024 * weight))
        elif controller == "devices":
            _write(f"{path}/devices.deny", "a")
            allowed = DEVICES_ALLOWED + [f"b {os.major(v['rdev'])}:{os.minor(v['rdev'])} rwm"
                                         for v in spec.get("volumes_resolved", [])]
            for rule in allowed:
                _write(f"{path}/devices.allow", rule)
    return dirs


def _join_cgroups(dirs: dict[str, str], pid: int) -> None:
    for path in dirs.values():
        _write(os.path.join(path, "cgroup.procs"), str(pid))


def _cgroup_pids(dirs: dict[str, str]) -> list[int]:
    for path in dirs.values():
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            continue
    return []


def remove_cgroups(dirs: dict[str, str]) -> None:
    for _ in range(50):
        pids = _cgroup_pids(dirs)
        if not pids:
            break
        set_frozen(dirs, False)
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    sys.stderr.write(f"DBG kill {pid} {f.read()[:80]!r} {dirs}\n")
            except OSError:
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
    for path in dirs.values():
        for _ in range(50):
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


def set_frozen(dirs: dict[str, str], frozen: bool) -> None:
    if "v2" in dirs:
        if os.path.exists(f"{dirs['v2']}/cgroup.freeze"):
            _write(f"{dirs['v2']}/cgroup.freeze", "1" if frozen else "0")
    elif "freezer" in dirs and os.path.exists(f"{dirs['freezer']}/freezer.state"):
        _write(f"{dirs['freezer']}/freezer.state", "FROZEN" if frozen else "THAWED")


# -- the spec -----------------------------------------------------------------

def validate_spec(spec: dict, paths: dict) -> dict:
    lower = os.path.realpath(str(spec.get("lower", "")))
    if not lower.startswith(paths["cache"] + os.sep) or not os.path.ismount(lower):
        raise LaunchError(f"lower layer {lower} is not a mounted base image of the cache")
    netns = str(spec.get("netns", ""))
    if not NETNS_RE.match(netns) or not os.path.exists(f"/run/netns/{netns}"):
        raise LaunchError(f"network namespace {netns!r} does not exist")
    hostname = str(spec.get("hostname") or "instance")
    if not HOST_RE.match(hostname):
        hostname = "instance"
    volumes = []
    for vol in spec.get("volumes") or []:
        device, name = str(vol.get("device", "")), str(vol.get("name", ""))
        if not LOOP_RE.match(device) or not VOLNAME_RE.match(name):
            raise LaunchError(f"bad volume {vol!r}")
        st = os.stat(device)
        if not stat.S_ISBLK(st.st_mode):
            raise LaunchError(f"{device} is not a block device")
        volumes.append({"device": device, "name": name, "rdev": st.st_rdev})
    return {"lower": lower, "netns": netns, "hostname": hostname,
            "memory_mb": int(spec.get("memory_mb") or 0), "vcpus": int(spec.get("vcpus") or 1),
            "pids_max": int(spec.get("pids_max") or 0), "volumes_resolved": volumes}


# -- start ----------------------------------------------------------------------

def _alive(record: dict) -> bool:
    pid = record.get("pid")
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return f"/pocketstack/{record['uuid']}" in f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False


def _prepare_root(spec: dict, paths: dict) -> None:
    """In the child, inside the new mount namespace: build and enter the root."""
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    root = paths["root"]
    _mount("overlay", root, "overlay", 0,
           f"lowerdir={spec['lower']},upperdir={paths['upper']},workdir={paths['work']}")
    dev = os.path.join(root, "dev")
    os.makedirs(dev, exist_ok=True)
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=0755,size=64k")
    for name, _kind, major, minor, mode in DEV_NODES:
        os.mknod(os.path.join(dev, name), stat.S_IFCHR | mode, os.makedev(major, minor))
        os.chmod(os.path.join(dev, name), mode)
    for vol in spec["volumes_resolved"]:
        os.mknod(os.path.join(dev, vol["name"]), stat.S_IFBLK | 0o660, vol["rdev"])
    os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    for d in ("pts", "shm"):
        os.makedirs(os.path.join(dev, d), exist_ok=True)
    for link, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, link))
    os.chdir(root)
    _check(libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "detach the host root")
    os.chdir("/")


def start(paths: dict, spec: dict) -> int:
    record = _read_record(paths)
    if record and _alive(record):
        return record["pid"]  # already running: idempotent
    os.makedirs(paths["disk"], mode=0o700, exist_ok=True)
    os.chmod(paths["disk"], 0o700)
    for d in ("upper", "work", "root"):
        os.makedirs(paths[d], exist_ok=True)
    # the console: a pty whose master the relay (outside the guest) holds
    master, slave = os.openpty()
    listener = console_relay.listen(console_relay.socket_path(paths["uuid"]), paths["dir"])
    console_relay.start(master, listener, os.path.join(paths["dir"], "console.log"))
    os.close(master)
    listener.close()
    dirs = setup_cgroups(paths["uuid"], spec)
    set_frozen(dirs, False)
    _join_cgroups(dirs, os.getpid())
    netns_fd = os.open(f"/run/netns/{spec['netns']}", os.O_RDONLY)
    _check(libc.setns(netns_fd, CLONE_NEWNET), "enter the network namespace")
    os.close(netns_fd)
    # the mount namespace is unshared by the child alone: its pivot_root must
    # not move this process's root too
    flags = CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID
    if os.path.exists("/proc/self/ns/cgroup"):
        flags |= CLONE_NEWCGROUP
    _check(libc.unshare(flags), "unshare")
    hostname = spec["hostname"].encode()
    _check(libc.sethostname(hostname, len(hostname)), "sethostname")
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # PID 1 of the instance
        os.close(read_end)
        try:
            _check(libc.unshare(CLONE_NEWNS), "unshare the mount namespace")
            _prepare_root(spec, paths)
            for cap in DROPPED_CAPS:
                libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
            for fd in (0, 1, 2):  # the console is PID 1's standard streams
                os.dup2(slave, fd)
            os.closerange(3, write_end)
            os.closerange(write_end + 1, 65536)
            os.execve("/sbin/init", ["init"], {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TERM": "vt100", "HOME": "/root",
                "container": "pocketstack"})
        except BaseException as exc:  # noqa: BLE001
            os.write(write_end, f"{exc}".encode()[:1000])
        finally:
            os._exit(127)
    os.close(write_end)
    os.close(slave)
    error = os.read(read_end, 1000)
    os.close(read_end)
    if error:
        os.waitpid(pid, 0)
        remove_cgroups(dirs)
        raise LaunchError(f"starting the instance failed: {error.decode(errors='replace')}")
    with open(f"/proc/{pid}/stat") as f:
        start_time = f.read().rsplit(")", 1)[1].split()[19]
    _write_record(paths, {"uuid": paths["uuid"], "pid": pid, "start_time": start_time,
                          "cgroups": dirs, "netns": spec["netns"], "lower": spec["lower"],
                          "started_at": time.time()})
    return pid


# -- the other actions ------------------------------------------------------------

SIGNALS = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL, "HUP": signal.SIGHUP,
           "USR1": signal.SIGUSR1, "USR2": signal.SIGUSR2, "INT": signal.SIGINT,
           "PWR": signal.SIGPWR}


def send_signal(paths: dict, name: str) -> bool:
    record = _read_record(paths)
    if not _alive(record):
        return False
    os.kill(record["pid"], SIGNALS[name])
    return True


def cleanup(paths: dict) -> None:
    """Kill what is left of the instance and remove its cgroups (keeps the disk)."""
    record = _read_record(paths)
    dirs = record.get("cgroups") or cgroup_dirs(paths["uuid"])
    remove_cgroups(dirs)


def delete(paths: dict) -> None:
    cleanup(paths)
    root = paths["root"]
    for _ in range(3):  # not mounted here, but never delete through a mount
        if os.path.ismount(root):
            libc.umount2(root.encode(), MNT_DETACH)
    shutil.rmtree(paths["disk"], ignore_errors=True)
    for path in (paths["public"], console_relay.socket_path(paths["uuid"])):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: launcher start|signal|freeze|thaw|cleanup|delete <instance_dir> [SIG]",
              file=sys.stderr)
        return 2
    action, instance_dir = argv[0], argv[1]
    try:
        paths = instance_paths(instance_dir)
        if action == "start":
            spec = validate_spec(json.loads(sys.stdin.read() or "{}"), paths)
            sys.stdin.close()
            start(paths, spec)
        elif action == "signal":
            if len(argv) != 3 or argv[2] not in SIGNALS:
                raise LaunchError("signal needs one of " + ", ".join(SIGNALS))
            return 0 if send_signal(paths, argv[2]) else 3
        elif action in ("freeze", "thaw"):
            record = _read_record(paths)
            set_frozen(record.get("cgroups") or cgroup_dirs(paths["uuid"]), action == "freeze")
        elif action == "cleanup":
            cleanup(paths)
        elif action == "delete":
            delete(paths)
        else:
            raise LaunchError(f"unknown action {action}")
    except (LaunchError, OSError, ValueError) as exc:
        print(f"launcher: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
