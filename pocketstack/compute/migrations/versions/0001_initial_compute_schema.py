"""initial compute schema

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

import pocketstack.common.db
import pocketstack.compute.models

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('compute_aggregate',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('meta', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('uuid')
    )
    op.create_table('compute_flavor',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('flavorid', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=False),
    sa.Column('vcpus', sa.Integer(), nullable=False),
    sa.Column('root_gb', sa.Integer(), nullable=False),
    sa.Column('ephemeral_gb', sa.Integer(), nullable=False),
    sa.Column('swap', sa.Integer(), nullable=False),
    sa.Column('rxtx_factor', sa.Float(), nullable=False),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('extra_specs', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('flavorid'),
    sa.UniqueConstraint('name')
    )
    op.create_table('compute_flavor_access',
    sa.Column('flavorid', sa.String(length=255), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('flavorid', 'project_id')
    )
    op.create_table('compute_instance',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=True),
    sa.Column('image_ref', sa.String(length=255), nullable=True),
    sa.Column('flavor', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('old_flavor', pocketstack.compute.models.JSONType(), nullable=True),
    sa.Column('new_flavor', pocketstack.compute.models.JSONType(), nullable=True),
    sa.Column('vcpus', sa.Integer(), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=False),
    sa.Column('root_gb', sa.Integer(), nullable=False),
    sa.Column('vm_state', sa.String(length=32), nullable=False),
    sa.Column('task_state', sa.String(length=64), nullable=True),
    sa.Column('power_state', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=True),
    sa.Column('node', sa.String(length=255), nullable=True),
    sa.Column('old_host', sa.String(length=255), nullable=True),
    sa.Column('availability_zone', sa.String(length=255), nullable=True),
    sa.Column('pinned_az', sa.String(length=255), nullable=True),
    sa.Column('key_name', sa.String(length=255), nullable=True),
    sa.Column('key_data', sa.Text(), nullable=True),
    sa.Column('user_data', sa.Text(), nullable=True),
    sa.Column('meta', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('system_metadata', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('tags', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('security_groups', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('network_info', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('block_devices', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('request_spec', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('fault', pocketstack.compute.models.JSONType(), nullable=True),
    sa.Column('access_ip_v4', sa.String(length=64), nullable=True),
    sa.Column('access_ip_v6', sa.String(length=64), nullable=True),
    sa.Column('config_drive', sa.String(length=255), nullable=False),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.Column('locked_by', sa.String(length=16), nullable=True),
    sa.Column('locked_reason', sa.Text(), nullable=True),
    sa.Column('launch_index', sa.Integer(), nullable=False),
    sa.Column('reservation_id', sa.String(length=64), nullable=True),
    sa.Column('root_device_name', sa.String(length=255), nullable=True),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.Column('launched_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.Column('terminated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('deleted_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uuid')
    )
    with op.batch_alter_table('compute_instance', schema=None) as batch_op:
        batch_op.create_index('compute_instance_project_deleted', ['project_id', 'deleted'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_instance_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_instance_host'), ['host'], unique=False)
        batch_op.create_index(batch_op.f('ix_compute_instance_project_id'), ['project_id'], unique=False)

    op.create_table('compute_instance_action',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=255), nullable=False),
    sa.Column('request_id', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('start_time', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('events', pocketstack.compute.models.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('compute_instance_action', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_instance_action_instance_uuid'), ['instance_uuid'], unique=False)

    op.create_table('compute_keypair',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=255), nullable=True),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'name')
    )
    op.create_table('compute_migration',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.Column('migration_type', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('source_compute', sa.String(length=255), nullable=True),
    sa.Column('dest_compute', sa.String(length=255), nullable=True),
    sa.Column('old_flavor_id', sa.Integer(), nullable=True),
    sa.Column('new_flavor_id', sa.Integer(), nullable=True),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uuid')
    )
    with op.batch_alter_table('compute_migration', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_migration_instance_uuid'), ['instance_uuid'], unique=False)

    op.create_table('compute_node',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('hypervisor_hostname', sa.String(length=255), nullable=False),
    sa.Column('hypervisor_type', sa.String(length=64), nullable=False),
    sa.Column('hypervisor_version', sa.Integer(), nullable=False),
    sa.Column('host_ip', sa.String(length=64), nullable=True),
    sa.Column('vcpus', sa.Integer(), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=False),
    sa.Column('local_gb', sa.Integer(), nullable=False),
    sa.Column('vcpus_used', sa.Integer(), nullable=False),
    sa.Column('memory_mb_used', sa.Integer(), nullable=False),
    sa.Column('local_gb_used', sa.Integer(), nullable=False),
    sa.Column('running_vms', sa.Integer(), nullable=False),
    sa.Column('cpu_info', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('host'),
    sa.UniqueConstraint('uuid')
    )
    op.create_table('compute_project_lock',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('project_id')
    )
    op.create_table('compute_quota',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('resource', sa.String(length=64), nullable=False),
    sa.Column('hard_limit', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'resource')
    )
    op.create_table('compute_server_group',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('policy', sa.String(length=64), nullable=False),
    sa.Column('rules', pocketstack.compute.models.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('uuid')
    )
    with op.batch_alter_table('compute_server_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compute_server_group_project_id'), ['project_id'], unique=False)

    op.create_table('compute_service',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('binary', sa.String(length=255), nullable=False),
    sa.Column('topic', sa.String(length=255), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('disabled_reason', sa.String(length=255), nullable=True),
    sa.Column('forced_down', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('last_seen_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('host', 'binary'),
    sa.UniqueConstraint('uuid')
    )
    op.create_table('compute_aggregate_host',
    sa.Column('aggregate_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['aggregate_id'], ['compute_aggregate.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('aggregate_id', 'host')
    )
    op.create_table('compute_server_group_member',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('instance_uuid', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['compute_server_group.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'instance_uuid')
    )
