"""Privileged host commands, through one filter-driven layer.

Every command the data plane runs as root (ip, bridge, dnsmasq, mount,
losetup, mkfs, qemu-img, kill, the instance launcher, ...) goes through
:class:`RootHelper`. Commands are checked against the filter files in
``rootwrap.d/`` (oslo.rootwrap syntax; oslo.rootwrap does the matching):

- as root, the check runs in this process and the command is executed
  directly (``subprocess`` with an argument list, never a shell);
- otherwise a long-lived privileged helper is started once with
  ``sudo ... python -m pocketstack.rootwrap daemon <rootwrap.conf>`` and
  every command is sent to it over its unix socket (oslo.rootwrap daemon
  mode), so a command costs one round trip, not a sudo + interpreter start.

A command outside the filters is refused (exit code 99) and logged, in both
modes.
"""

from __future__ import annotations

import configparser
import logging
import os
import shlex
import subprocess
import sys
import threading

from oslo_config import cfg

LOG = logging.getLogger(__name__)

FILTERS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rootwrap.d")
DEFAULT_EXEC_DIRS = ["/sbin", "/usr/sbin", "/bin", "/usr/bin", "/usr/local/sbin",
                     "/usr/local/bin"]
RC_UNAUTHORIZED = 99
RC_NOEXECFOUND = 96

opts = [
    cfg.StrOpt("config_file", default=None,
               help="rootwrap.conf (oslo.rootwrap format: filters_path, exec_dirs). "
                    "Default: the filters shipped with pocketstack."),
    cfg.StrOpt("daemon_command", default=None,
               help="Command that starts the privileged helper when the agents do not run "
                    "as root, e.g. 'sudo /usr/bin/python3 -m pocketstack.rootwrap daemon "
                    "/etc/pocketstack/rootwrap.conf'. Default: that command with sudo, "
                    "this interpreter and config_file."),
    cfg.BoolOpt("in_process_when_root", default=True,
                help="When already root, check the filters and run commands in-process "
                     "instead of starting the helper."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(opts, group="rootwrap")


class ProcessExecutionError(Exception):
    def __init__(self, cmd, returncode: int, stdout: str, stderr: str):
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"{shlex.join(self.cmd)} exited {returncode}: {stderr.strip()[:500]}")


class Unauthorized(ProcessExecutionError):
    """The command matched no filter."""


def write_config(path: str, filters_path: list[str] | None = None,
                 exec_dirs: list[str] | None = None) -> str:
    """Write a rootwrap.conf naming our filter directory."""
    parser = configparser.RawConfigParser()
    parser["DEFAULT"] = {
        "filters_path": ",".join(filters_path or [FILTERS_DIR]),
        "exec_dirs": ",".join(exec_dirs or [os.path.dirname(sys.executable)] + DEFAULT_EXEC_DIRS),
        "use_syslog": "False",
        "daemon_timeout": "600",
    }
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        parser.write(f)
    return path


def _read_config(path: str | None):
    from oslo_rootwrap import wrapper

    parser = configparser.RawConfigParser()
    if path:
        if not parser.read(path):
            raise FileNotFoundError(path)
    else:
        parser["DEFAULT"] = {
            "filters_path": FILTERS_DIR,
            "exec_dirs": ",".join([os.path.dirname(sys.executable)] + DEFAULT_EXEC_DIRS),
        }
    return wrapper.RootwrapConfig(parser)


class _InProcess:
    """Filter check here, then run the command directly (we are root)."""

    def __init__(self, config_file: str | None):
        from oslo_rootwrap import wrapper

        self.config = _read_config(config_file)
        self.filters = wrapper.load_filters(self.config.filters_path)

    def execute(self, cmd: list[str], stdin: str | None) -> tuple[int, str, str]:
        from oslo_rootwrap import wrapper

        try:
            match = wrapper.match_filter(self.filters, cmd, self.config.exec_dirs)
        except wrapper.FilterMatchNotExecutable:
            LOG.warning("rootwrap: executable not found for: %s", shlex.join(cmd))
            return RC_NOEXECFOUND, "", ""
        except wrapper.NoFilterMatched:
            LOG.warning("rootwrap: unauthorized command refused: %s (no filter matched)",
                        shlex.join(cmd))
            return RC_UNAUTHORIZED, "", ""
        command = match.get_command(cmd, self.config.exec_dirs)
        proc = subprocess.run(command, input=stdin, capture_output=True, text=True,
                              env=match.get_environment(cmd), close_fds=True,
                              preexec_fn=match.preexec, errors="surrogateescape")
        return proc.returncode, proc.stdout, proc.stderr


class _Daemon:
    """oslo.rootwrap's daemon client: one privileged helper, many commands."""

    def __init__(self, command: list[str]):
        from oslo_rootwrap import client

        self.command = command
        self.client = client.Client(command)

    def execute(self, cmd: list[str], stdin: str | None) -> tuple[int, str, str]:
        rc, out, err = self.client.execute(cmd, stdin)
        if rc == RC_UNAUTHORIZED:
            LOG.warning("rootwrap: unauthorized command refused: %s (no filter matched)",
                        shlex.join(cmd))
        return rc, out, err

    def close(self) -> None:
        try:
            self.client._shutdown(self.client._process, self.client._manager)  # noqa: SLF001
        except Exception:  # noqa: BLE001
            pass


class RootHelper:
    """Runs privileged commands: ``helper.execute("ip", "link", "add", ...)``."""

    def __init__(self, config_file: str | None = None, daemon_command: list[str] | None = None,
                 in_process_when_root: bool = True):
        self.config_file = config_file
        if daemon_command is None:
            daemon_command = ["sudo", "-n", sys.executable, "-m", "pocketstack.rootwrap",
                              "daemon", config_file or _default_conf_path()]
        self.daemon_command = daemon_command
        self.in_process = in_process_when_root and os.geteuid() == 0
        self._backend = None
        self._lock = threading.Lock()

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> RootHelper:
        group = conf.rootwrap
        command = shlex.split(group.daemon_command) if group.daemon_command else None
        return cls(group.config_file, command, group.in_process_when_root)

    def _get(self):
        with self._lock:
            if self._backend is None:
                self._backend = (_InProcess(self.config_file) if self.in_process
                                 else _Daemon(self.daemon_command))
            return self._backend

    def execute(self, *cmd: str, check: bool = True, stdin: str | None = None,
                ok_codes: tuple[int, ...] = (0,)) -> str:
        """Run ``cmd`` as root; returns stdout. Raises ProcessExecutionError
        (``Unauthorized`` when no filter allows it) unless ``check`` is false."""
        argv = [str(a) for a in cmd]
        rc, out, err = self._get().execute(argv, stdin)
        LOG.debug("rootwrap: %s -> %s", shlex.join(argv), rc)
        if rc == RC_UNAUTHORIZED:
            raise Unauthorized(argv, rc, out, err)
        if check and rc not in ok_codes:
            raise ProcessExecutionError(argv, rc, out, err)
        return out

    def run(self, *cmd: str, stdin: str | None = None) -> tuple[int, str, str]:
        """Like execute but never raises for a non-zero exit (still for refusal)."""
        argv = [str(a) for a in cmd]
        rc, out, err = self._get().execute(argv, stdin)
        if rc == RC_UNAUTHORIZED:
            raise Unauthorized(argv, rc, out, err)
        return rc, out, err

    def spawn(self, *cmd: str, stdin=None, stdout=None, stderr=None) -> subprocess.Popen:
        """Start a long-lived privileged process (an instance's launcher) with
        the given standard streams, in its own session. The filters are
        checked the same way: in-process when root, else by a one-shot
        ``sudo ... -m pocketstack.rootwrap <conf> cmd...``."""
        argv = [str(a) for a in cmd]
        if self.in_process:
            backend = self._get()
            from oslo_rootwrap import wrapper

            try:
                match = wrapper.match_filter(backend.filters, argv, backend.config.exec_dirs)
            except (wrapper.NoFilterMatched, wrapper.FilterMatchNotExecutable):
                LOG.warning("rootwrap: unauthorized command refused: %s", shlex.join(argv))
                raise Unauthorized(argv, RC_UNAUTHORIZED, "", "") from None
            command = match.get_command(argv, backend.config.exec_dirs)
            return subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=stderr,
                                    close_fds=True, start_new_session=True,
                                    env=match.get_environment(argv))
        prefix = self.daemon_command[:]
        if "daemon" in prefix:
            prefix.remove("daemon")  # one-shot form of the same command
        return subprocess.Popen(prefix + argv, stdin=stdin, stdout=stdout, stderr=stderr,
                                close_fds=True, start_new_session=True)

    def close(self) -> None:
        with self._lock:
            backend, self._backend = self._backend, None
        if isinstance(backend, _Daemon):
            backend.close()


def _default_conf_path() -> str:
    """The root-owned rootwrap.conf sudo is allowed to run with (see
    etc/rootwrap.conf; ``write_config`` makes one for the shipped filters)."""
    return "/etc/pocketstack/rootwrap.conf"


_helpers: dict[int, RootHelper] = {}
_helpers_lock = threading.Lock()


def get(conf: cfg.ConfigOpts | None = None) -> RootHelper:
    """The process-wide helper for ``conf`` (one daemon per configuration)."""
    key = id(conf)
    with _helpers_lock:
        helper = _helpers.get(key)
        if helper is None:
            if conf is not None and "rootwrap" not in conf:
                register_opts(conf)
            helper = RootHelper.from_conf(conf) if conf is not None else RootHelper()
            _helpers[key] = helper
        return helper
