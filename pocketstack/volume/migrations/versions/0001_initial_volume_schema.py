"""initial volume schema

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

import pocketstack.common.db

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('volume_attachment',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=True),
    sa.Column('attached_host', sa.String(length=255), nullable=True),
    sa.Column('mountpoint', sa.String(length=255), nullable=True),
    sa.Column('attach_status', sa.String(length=32), nullable=False),
    sa.Column('attach_mode', sa.String(length=8), nullable=False),
    sa.Column('connector', pocketstack.common.db.JSONType(), nullable=True),
    sa.Column('connection_info', pocketstack.common.db.JSONType(), nullable=True),
    sa.Column('attach_time', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.Column('detach_time', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volume_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_attachment_volume_id'), ['volume_id'], unique=False)

    op.create_table('volume_backup',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('fail_reason', sa.String(length=255), nullable=True),
    sa.Column('container', sa.String(length=255), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('object_count', sa.Integer(), nullable=False),
    sa.Column('is_incremental', sa.Boolean(), nullable=False),
    sa.Column('parent_id', sa.String(length=36), nullable=True),
    sa.Column('meta', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('service_metadata', pocketstack.common.db.JSONType(), nullable=True),
    sa.Column('data_timestamp', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volume_backup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_backup_project_id'), ['project_id'], unique=False)

    op.create_table('volume_cleanup',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('backend', sa.String(length=255), nullable=False),
    sa.Column('location', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('volume_message',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('resource_type', sa.String(length=32), nullable=True),
    sa.Column('resource_uuid', sa.String(length=36), nullable=True),
    sa.Column('event_id', sa.String(length=32), nullable=True),
    sa.Column('message_level', sa.String(length=16), nullable=True),
    sa.Column('user_message', sa.String(length=255), nullable=True),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('expires_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volume_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_message_project_id'), ['project_id'], unique=False)

    op.create_table('volume_quota',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('resource', sa.String(length=255), nullable=False),
    sa.Column('hard_limit', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'resource')
    )
    op.create_table('volume_quota_lock',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('project_id')
    )
    op.create_table('volume_snapshot',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('volume_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('progress', sa.String(length=16), nullable=False),
    sa.Column('volume_type_id', sa.String(length=36), nullable=True),
    sa.Column('meta', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('provider_location', pocketstack.common.db.JSONType(), nullable=True),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volume_snapshot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_snapshot_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_snapshot_volume_id'), ['volume_id'], unique=False)

    op.create_table('volume_type',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('extra_specs', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('volume_type_access',
    sa.Column('volume_type_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('volume_type_id', 'project_id')
    )
    op.create_table('volume_volume',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('attach_status', sa.String(length=32), nullable=False),
    sa.Column('migration_status', sa.String(length=32), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('backend', sa.String(length=255), nullable=True),
    sa.Column('volume_type_id', sa.String(length=36), nullable=True),
    sa.Column('source_volid', sa.String(length=36), nullable=True),
    sa.Column('snapshot_id', sa.String(length=36), nullable=True),
    sa.Column('backup_id', sa.String(length=36), nullable=True),
    sa.Column('bootable', sa.Boolean(), nullable=False),
    sa.Column('multiattach', sa.Boolean(), nullable=False),
    sa.Column('readonly', sa.Boolean(), nullable=False),
    sa.Column('meta', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('image_meta', pocketstack.common.db.JSONType(), nullable=True),
    sa.Column('provider_location', pocketstack.common.db.JSONType(), nullable=True),
    sa.Column('task', sa.String(length=64), nullable=True),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volume_volume', schema=None) as batch_op:
        batch_op.create_index('ix_volume_volume_created', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_volume_volume_project_id'), ['project_id'], unique=False)

