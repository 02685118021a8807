"""The object storage index: what listings, counts and container settings need.

Object bytes and their metadata live on the file system (see ``storage``);
these tables index them so listings are keyset scans and counts are exact.
Names are stored as UTF-8 bytes so every engine orders them as Swift does
(byte order), whatever its collation.
"""

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from pocketstack.common.db import JSONType

metadata = sa.MetaData()
SCHEMA_HEAD = "0001"


class Name(TypeDecorator):
    """A str in Python, its UTF-8 bytes in the database (byte-ordered everywhere)."""

    impl = sa.LargeBinary
    cache_ok = True

    def __init__(self, length: int):
        super().__init__()
        self.length = length

    def load_dialect_impl(self, dialect):
        # dialect modules imported here: postgresql's costs ~0.1 s at start-up on SQLite
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            return dialect.type_descriptor(mysql.VARBINARY(self.length))
        if dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            return dialect.type_descriptor(postgresql.BYTEA())
        return dialect.type_descriptor(sa.LargeBinary())

    def process_bind_param(self, value, dialect):
        return None if value is None else value.encode("utf-8", "surrogateescape")

    def process_result_value(self, value, dialect):
        return None if value is None else bytes(value).decode("utf-8", "surrogateescape")


account = sa.Table(
    "objectstore_account", metadata,
    sa.Column("account", sa.String(128), primary_key=True),
    sa.Column("timestamp", sa.String(20), nullable=False),
    sa.Column("meta", JSONType, nullable=False, default=dict),
)

container = sa.Table(
    "objectstore_container", metadata,
    sa.Column("account", sa.String(128), primary_key=True),
    sa.Column("name", Name(256), primary_key=True),
    sa.Column("timestamp", sa.String(20), nullable=False),
    sa.Column("put_timestamp", sa.String(20), nullable=False),
    sa.Column("object_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("bytes_used", sa.BigInteger, nullable=False, default=0),
    sa.Column("meta", JSONType, nullable=False, default=dict),
)

object_ = sa.Table(
    "objectstore_object", metadata,
    sa.Column("account", sa.String(128), primary_key=True),
    sa.Column("container", Name(256), primary_key=True),
    sa.Column("name", Name(1024), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("content_type", sa.String(256), nullable=False),
    sa.Column("timestamp", sa.String(20), nullable=False),
    sa.Column("delete_at", sa.BigInteger, nullable=True),
    sa.Index("ix_objectstore_object_delete_at", "delete_at"),
)
