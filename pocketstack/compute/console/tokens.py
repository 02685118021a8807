"""Console auth tokens: random, expiring after ``[consoleauth] token_ttl``, bound
to one instance and one console type. Only a token's SHA-256 is stored (as
Nova keeps them), so the database never holds a usable token."""

from __future__ import annotations

import hashlib
import secrets
import time

import sqlalchemy as sa

from pocketstack.common.db import utcnow
from pocketstack.compute import models as m

T = m.console_auth_token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleTokens:
    def __init__(self, db, conf):
        self.db = db
        self.conf = conf

    def issue(self, instance_uuid: str, console_type: str, connect: dict) -> str:
        token = secrets.token_urlsafe(32)
        now = int(time.time())

        def txn(s):
            s.execute(T.delete().where(T.c.expires <= now))
            s.execute(T.insert().values(
                token_hash=token_hash(token), console_type=console_type,
                host=connect.get("host") or "", port=connect.get("port"),
                internal_access_path=connect.get("internal_access_path"),
                instance_uuid=instance_uuid, expires=now + self.conf.consoleauth.token_ttl,
                created_at=utcnow()))

        self.db.transaction(txn)
        return token

    def validate(self, token: str) -> dict | None:
        """The token's connection details, or None when unknown or expired."""
        if not token:
            return None
        with self.db.reader() as s:
                found = s.execute(sa.select(T).where(T.c.token_hash == token_hash(token))).first()
        if found is None or found.expires <= time.time():
            return None
        return dict(found._mapping)


def delete_for_instance(s, instance_uuid: str) -> None:
    """In the caller's transaction: the instance's tokens die with it (or its move)."""
    s.execute(T.delete().where(T.c.instance_uuid == instance_uuid))
