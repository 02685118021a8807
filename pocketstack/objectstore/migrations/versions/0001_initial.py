"""The initial object storage index: accounts, containers, objects (SCHEMA_HEAD "0001").

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

from pocketstack.common.db import JSONType
from pocketstack.objectstore.models import Name

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "objectstore_account",
        sa.Column("account", sa.String(128), primary_key=True),
        sa.Column("timestamp", sa.String(20), nullable=False),
        sa.Column("meta", JSONType(), nullable=False),
    )
    op.create_table(
        "objectstore_container",
        sa.Column("account", sa.String(128), primary_key=True),
        sa.Column("name", Name(256), primary_key=True),
        sa.Column("timestamp", sa.String(20), nullable=False),
        sa.Column("put_timestamp", sa.String(20), nullable=False),
        sa.Column("object_count", sa.BigInteger(), nullable=False),
        sa.Column("bytes_used", sa.BigInteger(), nullable=False),
        sa.Column("meta", JSONType(), nullable=False),
    )
    op.create_table(
        "objectstore_object",
        sa.Column("account", sa.String(128), primary_key=True),
        sa.Column("container", Name(256), primary_key=True),
        sa.Column("name", Name(1024), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(256), nullable=False),
        sa.Column("timestamp", sa.String(20), nullable=False),
        sa.Column("delete_at", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_objectstore_object_delete_at", "objectstore_object", ["delete_at"])


def downgrade() -> None:
    op.drop_index("ix_objectstore_object_delete_at", table_name="objectstore_object")
    op.drop_table("objectstore_object")
    op.drop_table("objectstore_container")
    op.drop_table("objectstore_account")
