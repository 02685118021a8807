"""initial image schema

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
    op.create_table('image_image',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('disk_format', sa.String(length=20), nullable=True),
    sa.Column('container_format', sa.String(length=20), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('virtual_size', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('visibility', sa.String(length=20), nullable=False),
    sa.Column('checksum', sa.String(length=32), nullable=True),
    sa.Column('os_hash_algo', sa.String(length=64), nullable=True),
    sa.Column('os_hash_value', sa.String(length=128), nullable=True),
    sa.Column('min_disk', sa.Integer(), nullable=False),
    sa.Column('min_ram', sa.Integer(), nullable=False),
    sa.Column('protected', sa.Boolean(), nullable=False),
    sa.Column('os_hidden', sa.Boolean(), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('location', sa.Text(), nullable=True),
    sa.Column('properties', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('tags', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('rendered', sa.Text(), nullable=True),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('image_image', schema=None) as batch_op:
        batch_op.create_index('ix_image_image_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_image_image_owner', ['owner'], unique=False)
        batch_op.create_index('ix_image_image_visibility', ['visibility', 'created_at'], unique=False)

    op.create_table('image_member',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('member', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pocketstack.common.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image_image.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'member')
    )
    with op.batch_alter_table('image_member', schema=None) as batch_op:
        batch_op.create_index('ix_image_member_member', ['member', 'status'], unique=False)

    op.create_table('image_property',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['image_id'], ['image_image.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'name')
    )
    with op.batch_alter_table('image_property', schema=None) as batch_op:
        batch_op.create_index('ix_image_property_name', ['name'], unique=False)

    op.create_table('image_tag',
    sa.Column('image_id', sa.String(length=36), nullable=False),
    sa.Column('value', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image_image.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('image_id', 'value')
    )
    with op.batch_alter_table('image_tag', schema=None) as batch_op:
        batch_op.create_index('ix_image_tag_value', ['value'], unique=False)

