"""Token format: a msgpack payload inside a Fernet token (nothing is stored)."""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field

import msgpack
from cryptography.fernet import InvalidToken

from pocketstack.identity.fernet import KeyRepository

VERSION = 1
METHODS = ["password", "token", "application_credential", "totp", "external"]


@dataclass
class Payload:
    user_id: str
    methods: list[str]
    expires_at: float  # unix time
    issued_at: float
    audit_ids: list[str] = field(default_factory=list)
    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None
    application_credential_id: str | None = None


def new_audit_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def _pack_id(value: str | None):
    """UUID hex ids travel as 16 bytes; anything else as text."""
    if value is None:
        return None
    if len(value) == 32 and value == value.lower():
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    return value


def _unpack_id(value):
    if isinstance(value, bytes):
        return value.hex()
    return value


class TokenFormatter:
    def __init__(self, keys: KeyRepository):
        self.keys = keys
        self._fernet = None
        self._mtime = None

    def _crypto(self):
        mtime = os.stat(self.keys.path).st_mtime_ns
        if self._fernet is None or mtime != self._mtime:
            self._fernet = self.keys.fernet()
            self._mtime = mtime
        return self._fernet

    def key_state(self) -> int:
        """Changes whenever the key repository does (a rotation)."""
        try:
            return os.stat(self.keys.path).st_mtime_ns
        except OSError:
            return 0

    def reload(self) -> None:
        self._fernet = None

    def encode(self, p: Payload) -> str:
        mask = sum(1 << METHODS.index(m) for m in p.methods if m in METHODS)
        scope = (0, None)
        if p.project_id:
            scope = (1, _pack_id(p.project_id))
        elif p.domain_id:
            scope = (2, _pack_id(p.domain_id))
        elif p.system:
            scope = (3, p.system)
        body = [VERSION, _pack_id(p.user_id), mask, scope[0], scope[1], round(p.expires_at, 6),
                round(p.issued_at, 6), [base64.urlsafe_b64decode(a + "==") for a in p.audit_ids],
                _pack_id(p.application_credential_id)]
        token = self._crypto().encrypt(msgpack.packb(body, use_bin_type=True))
        return token.decode().rstrip("=")

    def decode(self, token: str) -> Payload | None:
        """The payload, or None if the token is garbled or signed by an unknown key."""
        if not token or len(token) > 2048:
            return None
        padded = token + "=" * (-len(token) % 4)
        try:
            raw = self._crypto().decrypt(padded.encode())
            body = msgpack.unpackb(raw, raw=False)
        except (InvalidToken, ValueError, TypeError, msgpack.UnpackException):
            return None
        if not isinstance(body, list) or len(body) != 9 or body[0] != VERSION:
            return None
        _, user, mask, scope_kind, scope_id, expires, issued, audits, app_cred = body
        methods = [m for i, m in enumerate(METHODS) if mask & (1 << i)]
        p = Payload(user_id=_unpack_id(user), methods=methods, expires_at=expires,
                    issued_at=issued,
                    audit_ids=[base64.urlsafe_b64encode(a).decode().rstrip("=") for a in audits],
                    application_credential_id=_unpack_id(app_cred))
        if scope_kind == 1:
            p.project_id = _unpack_id(scope_id)
        elif scope_kind == 2:
            p.domain_id = _unpack_id(scope_id)
        elif scope_kind == 3:
            p.system = scope_id
        return p
