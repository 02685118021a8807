"""Password hashes (bcrypt), and the bootstrap admin's password.

Light on imports on purpose: `up` starts hashing the admin's password of a fresh
state directory (~0.25 s at cost 12) before it imports the services, so that the
hash is computed on the second core while they load (bcrypt releases the GIL).
"""

from __future__ import annotations

import os
import secrets
import threading

import bcrypt

from pocketstack.identity.backends import may_block

# bcrypt reads at most 72 bytes; like Keystone (passlib) we hash that prefix.
BCRYPT_MAX = 72


def hash_password(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode()[:BCRYPT_MAX], bcrypt.gensalt(rounds)).decode()


def check_password(password: str, hashed: str | None) -> bool:
    if not hashed:
        return False
    may_block()
    try:
        return bcrypt.checkpw(password.encode()[:BCRYPT_MAX], hashed.encode())
    except ValueError:
        return False


def admin_password(conf) -> str:
    """The configured admin password, else the one generated on first start."""
    if conf.bootstrap.admin_password:
        return conf.bootstrap.admin_password
    path = os.path.join(conf.state_path, "admin-password")
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    os.makedirs(conf.state_path, exist_ok=True)
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


def fingerprint_path(conf) -> str:
    """Written by the bootstrap once it has set the admin's password (see the
    identity service); absent on a fresh state directory."""
    return os.path.join(conf.state_path, "bootstrap-fingerprint")


class PendingHash:
    """A password being hashed in a thread."""

    def __init__(self, password: str, rounds: int):
        self.password = password
        self._hash: str | None = None
        self._thread = threading.Thread(target=self._run, args=(rounds,), daemon=False,
                                        name="identity-admin-hash")
        self._thread.start()

    def _run(self, rounds: int) -> None:
        self._hash = hash_password(self.password, rounds)

    def result(self) -> str | None:
        self._thread.join()
        return self._hash


_pending: dict[str, PendingHash] = {}
_pending_lock = threading.Lock()


def start_admin_hash(conf) -> None:
    """On a fresh state directory, start hashing the admin password for the
    bootstrap (which takes it with ``take_admin_hash``)."""
    if conf.identity.driver == "pam" or os.path.exists(fingerprint_path(conf)):
        return  # (PAM users are read-only: the bootstrap creates no admin)
    with _pending_lock:
        if conf.state_path not in _pending:
            _pending[conf.state_path] = PendingHash(admin_password(conf),
                                                    conf.identity.password_hash_rounds)


def take_admin_hash(conf) -> PendingHash | None:
    """The admin password's hash started for this state directory (now, unless
    ``start_admin_hash`` did earlier), or None if the bootstrap will not need it."""
    start_admin_hash(conf)
    with _pending_lock:
        return _pending.pop(conf.state_path, None)
