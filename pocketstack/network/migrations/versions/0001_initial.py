"""Networking's initial schema.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    from pocketstack.network import models

    models.metadata.create_all(op.get_bind())
