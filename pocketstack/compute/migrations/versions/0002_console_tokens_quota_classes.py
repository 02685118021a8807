"""remote console tokens and quota classes

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import pocketstack.common.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('compute_quota_class',
    sa.Column('class_name', sa.String(length=255), nullable=False),
    sa.Column('resource', sa.String(length=64), nullable=False),
    sa.Column('hard_limit', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('class_name', 'resource')
    )
    op.create_table('compute_console_auth_token',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('console_type', sa.String(length=32), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=True),
    sa.Column('internal_access_path', sa.String(length=512), nullable=True),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.Column('expires', sa.Integer(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index(op.f('ix_compute_console_auth_token_instance_uuid'),
                    'compute_console_auth_token', ['instance_uuid'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_compute_console_auth_token_instance_uuid'),
                  table_name='compute_console_auth_token')
    op.drop_table('compute_console_auth_token')
    op.drop_table('compute_quota_class')
