"""initial network schema

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

import pocketstack.common.db
import pocketstack.network.models

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_auto_allocated_topology',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('router_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('project_id')
    )
    op.create_table('network_floatingip',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('floating_network_id', sa.String(length=36), nullable=False),
    sa.Column('floating_ip_address', sa.String(length=64), nullable=False),
    sa.Column('floating_port_id', sa.String(length=36), nullable=False),
    sa.Column('port_id', sa.String(length=36), nullable=True),
    sa.Column('fixed_ip_address', sa.String(length=64), nullable=True),
    sa.Column('router_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('tags', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('port_id', 'fixed_ip_address', name='network_fip_fixed_unique')
    )
    with op.batch_alter_table('network_floatingip', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_floatingip_port_id'), ['port_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_floatingip_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_floatingip_router_id'), ['router_id'], unique=False)

    op.create_table('network_network',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('external', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('mtu', sa.Integer(), nullable=False),
    sa.Column('port_security_enabled', sa.Boolean(), nullable=False),
    sa.Column('network_type', sa.String(length=16), nullable=False),
    sa.Column('physical_network', sa.String(length=64), nullable=True),
    sa.Column('segmentation_id', sa.Integer(), nullable=True),
    sa.Column('availability_zone_hints', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('tags', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('network_network', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_network_project_id'), ['project_id'], unique=False)

    op.create_table('network_quota',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('resource', sa.String(length=64), nullable=False),
    sa.Column('hard_limit', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'resource')
    )
    op.create_table('network_router',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('gw_port_id', sa.String(length=36), nullable=True),
    sa.Column('gw_network_id', sa.String(length=36), nullable=True),
    sa.Column('enable_snat', sa.Boolean(), nullable=False),
    sa.Column('routes', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('tags', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('network_router', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_router_project_id'), ['project_id'], unique=False)

    op.create_table('network_security_group',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('stateful', sa.Boolean(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('tags', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('network_security_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_security_group_project_id'), ['project_id'], unique=False)

    op.create_table('network_subnetpool',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('prefixes', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('default_prefixlen', sa.Integer(), nullable=False),
    sa.Column('min_prefixlen', sa.Integer(), nullable=False),
    sa.Column('max_prefixlen', sa.Integer(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('default_quota', sa.Integer(), nullable=True),
    sa.Column('address_scope_id', sa.String(length=36), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('tags', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('network_subnetpool', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_subnetpool_project_id'), ['project_id'], unique=False)

    op.create_table('network_tag',
    sa.Column('resource_id', sa.String(length=36), nullable=False),
    sa.Column('tag', sa.String(length=255), nullable=False),
    sa.PrimaryKeyConstraint('resource_id', 'tag')
    )
    with op.batch_alter_table('network_tag', schema=None) as batch_op:
        batch_op.create_index('network_tag_tag', ['tag'], unique=False)

    op.create_table('network_default_security_group',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['security_group_id'], ['network_security_group.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id')
    )
    op.create_table('network_port',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('mac_address', sa.String(length=32), nullable=False),
    sa.Column('admin_state_up', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('device_id', sa.String(length=255), nullable=False),
    sa.Column('device_owner', sa.String(length=255), nullable=False),
    sa.Column('port_security_enabled', sa.Boolean(), nullable=False),
    sa.Column('security_groups', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('allowed_address_pairs', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('extra_dhcp_opts', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('host_id', sa.String(length=255), nullable=False),
    sa.Column('vnic_type', sa.String(length=64), nullable=False),
    sa.Column('profile', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('vif_type', sa.String(length=64), nullable=False),
    sa.Column('vif_details', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('fixed_ips', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('tags', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network_network.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('network_id', 'mac_address', name='network_port_mac_unique')
    )
    with op.batch_alter_table('network_port', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_port_device_id'), ['device_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_port_device_owner'), ['device_owner'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_port_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_port_project_id'), ['project_id'], unique=False)

    op.create_table('network_security_group_rule',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('ethertype', sa.String(length=8), nullable=False),
    sa.Column('protocol', sa.String(length=40), nullable=True),
    sa.Column('port_range_min', sa.Integer(), nullable=True),
    sa.Column('port_range_max', sa.Integer(), nullable=True),
    sa.Column('remote_ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('remote_group_id', sa.String(length=36), nullable=True),
    sa.Column('fingerprint', sa.String(length=255), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('tags', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['security_group_id'], ['network_security_group.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('security_group_id', 'fingerprint', name='network_sg_rule_unique')
    )
    with op.batch_alter_table('network_security_group_rule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_security_group_rule_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_security_group_rule_security_group_id'), ['security_group_id'], unique=False)

    op.create_table('network_segment',
    sa.Column('network_type', sa.String(length=16), nullable=False),
    sa.Column('physical_network', sa.String(length=64), nullable=False),
    sa.Column('segmentation_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network_network.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('network_type', 'physical_network', 'segmentation_id')
    )
    with op.batch_alter_table('network_segment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_segment_network_id'), ['network_id'], unique=False)

    op.create_table('network_subnet',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('ip_version', sa.Integer(), nullable=False),
    sa.Column('cidr', sa.String(length=64), nullable=False),
    sa.Column('gateway_ip', sa.String(length=64), nullable=True),
    sa.Column('enable_dhcp', sa.Boolean(), nullable=False),
    sa.Column('ipv6_ra_mode', sa.String(length=16), nullable=True),
    sa.Column('ipv6_address_mode', sa.String(length=16), nullable=True),
    sa.Column('allocation_pools', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('dns_nameservers', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('host_routes', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('service_types', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('subnetpool_id', sa.String(length=36), nullable=True),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('tags', pocketstack.network.models.JSONType(), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('revision_number', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['network_id'], ['network_network.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('network_subnet', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_subnet_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_subnet_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_subnet_subnetpool_id'), ['subnetpool_id'], unique=False)

    op.create_table('network_ip_allocation',
    sa.Column('subnet_id', sa.String(length=36), nullable=False),
    sa.Column('ip_address', sa.String(length=64), nullable=False),
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('network_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['network_port.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subnet_id'], ['network_subnet.id'], ),
    sa.PrimaryKeyConstraint('subnet_id', 'ip_address')
    )
    with op.batch_alter_table('network_ip_allocation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_ip_allocation_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_network_ip_allocation_port_id'), ['port_id'], unique=False)

    op.create_table('network_ip_range',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subnet_id', sa.String(length=36), nullable=False),
    sa.Column('first_ip', sa.String(length=32), nullable=False),
    sa.Column('last_ip', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['subnet_id'], ['network_subnet.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('network_ip_range', schema=None) as batch_op:
        batch_op.create_index('network_ip_range_subnet_first', ['subnet_id', 'first_ip'], unique=False)
        batch_op.create_index('network_ip_range_subnet_last', ['subnet_id', 'last_ip'], unique=False)

    op.create_table('network_port_security_group',
    sa.Column('port_id', sa.String(length=36), nullable=False),
    sa.Column('security_group_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['port_id'], ['network_port.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['security_group_id'], ['network_security_group.id'], ),
    sa.PrimaryKeyConstraint('port_id', 'security_group_id')
    )
    with op.batch_alter_table('network_port_security_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_network_port_security_group_security_group_id'), ['security_group_id'], unique=False)

