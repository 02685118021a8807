"""The serial console of a container instance.

The guest's PID 1 gets the slave end of a pseudo-terminal as its stdin,
stdout and stderr, as a kernel's init gets its serial port. A relay process
(root, in the host's namespaces, outside the instance's cgroups so that
freezing the guest or a guest's root cannot touch it) holds the master end:
everything the guest writes is appended to ``console.log`` and sent to the
clients of a unix stream socket (``socket_path``: under /run, as a state
directory's path may be longer than a socket address allows); what a client
sends is typed on the console. The console proxy is such a client. The relay ends
when the guest's last process has closed the terminal.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket

CLIENT_SEND_TIMEOUT = 2.0  # a client that does not read for this long is dropped
SOCKET_DIR = "/run/pocketstack-consoles"


def socket_path(uuid: str) -> str:
    return os.path.join(SOCKET_DIR, f"{uuid}.sock")


def listen(sock_path: str, owner_of: str) -> socket.socket:
    """The console socket, bound before the guest starts (no client can be early);
    owned by the user owning ``owner_of`` (the compute agent's instance directory)."""
    os.makedirs(os.path.dirname(sock_path), mode=0o755, exist_ok=True)
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    st = os.stat(owner_of)
    os.chown(sock_path, st.st_uid, st.st_gid)
    os.chmod(sock_path, 0o600)
    listener.listen(8)
    return listener


def start(master: int, listener: socket.socket, log_path: str) -> None:
    """Run the relay in a daemon process (double fork) and return at once."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # never hold the launcher's pipes open
            os.dup2(devnull, fd)
        keep = sorted({master, listener.fileno()})
        low = 3
        for fd in keep:
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, 65536)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        sock_path = listener.getsockname()
        bound = os.stat(sock_path).st_ino
        serve(master, listener, log_fd)
        with contextlib.suppress(FileNotFoundError):  # unless a new boot's relay took it
            if os.stat(sock_path).st_ino == bound:
                os.unlink(sock_path)
    finally:
        os._exit(0)


def serve(master: int, listener: socket.socket, log_fd: int) -> None:
    sel = selectors.DefaultSelector()
    sel.register(master, selectors.EVENT_READ, "master")
    sel.register(listener, selectors.EVENT_READ, "listener")
    clients: set[socket.socket] = set()

    def drop(client: socket.socket) -> None:
        clients.discard(client)
        sel.unregister(client)
        client.close()

    while True:
        for key, _events in sel.select():
            if key.data == "master":
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every process of the guest is gone
                    data = b""
                if not data:
                    return
                os.write(log_fd, data)
                for client in list(clients):
                    try:
                        client.sendall(data)
                    except OSError:
                        drop(client)
            elif key.data == "listener":
                client, _addr = listener.accept()
                client.settimeout(CLIENT_SEND_TIMEOUT)
                clients.add(client)
                sel.register(client, selectors.EVENT_READ, "client")
            else:
                try:
                    data = key.fileobj.recv(65536)
                except OSError:
                    data = b""
                if data:
                    os.write(master, data)
                else:
                    drop(key.fileobj)
