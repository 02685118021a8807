"""The initial identity schema: every table of models.py at SCHEMA_HEAD "0001".

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import pocketstack.common.db

# Timestamps keep microseconds on MariaDB too.
DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('identity_application_credential',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('system', sa.String(length=16), nullable=True),
    sa.Column('secret_hash', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('expires_at', DATETIME, nullable=True),
    sa.Column('unrestricted', sa.Boolean(), nullable=False),
    sa.Column('roles', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('access_rules', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('extra', pocketstack.common.db.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'name')
    )
    op.create_index(op.f('ix_identity_application_credential_user_id'), 'identity_application_credential', ['user_id'], unique=False)

    op.create_table('identity_assignment',
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('role_id', sa.String(length=64), nullable=False),
    sa.Column('inherited', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('type', 'actor_id', 'target_id', 'role_id', 'inherited')
    )
    op.create_index('ix_identity_assignment_actor', 'identity_assignment', ['actor_id'], unique=False)
    op.create_index(op.f('ix_identity_assignment_role_id'), 'identity_assignment', ['role_id'], unique=False)
    op.create_index('ix_identity_assignment_target', 'identity_assignment', ['target_id'], unique=False)

    op.create_table('identity_credential',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('blob', sa.Text(), nullable=False),
    sa.Column('extra', pocketstack.common.db.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_identity_credential_user_id'), 'identity_credential', ['user_id'], unique=False)

    op.create_table('identity_domain',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('extra', pocketstack.common.db.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('identity_endpoint',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('service_id', sa.String(length=64), nullable=False),
    sa.Column('interface', sa.String(length=8), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('region_id', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', pocketstack.common.db.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_identity_endpoint_service_id'), 'identity_endpoint', ['service_id'], unique=False)

    op.create_table('identity_group',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('extra', pocketstack.common.db.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('domain_id', 'name')
    )
    op.create_index(op.f('ix_identity_group_domain_id'), 'identity_group', ['domain_id'], unique=False)

    op.create_table('identity_implied_role',
    sa.Column('prior_role_id', sa.String(length=64), nullable=False),
    sa.Column('implied_role_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('prior_role_id', 'implied_role_id')
    )
    op.create_table('identity_membership',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'group_id')
    )
    op.create_index(op.f('ix_identity_membership_group_id'), 'identity_membership', ['group_id'], unique=False)

    op.create_table('identity_project',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('parent_id', sa.String(length=64), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('tags', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('options', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('extra', pocketstack.common.db.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('domain_id', 'name')
    )
    op.create_index(op.f('ix_identity_project_domain_id'), 'identity_project', ['domain_id'], unique=False)
    op.create_index(op.f('ix_identity_project_parent_id'), 'identity_project', ['parent_id'], unique=False)

    op.create_table('identity_region',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('parent_region_id', sa.String(length=255), nullable=True),
    sa.Column('extra', pocketstack.common.db.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('identity_revocation_event',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('domain_id', sa.String(length=64), nullable=True),
    sa.Column('role_id', sa.String(length=64), nullable=True),
    sa.Column('audit_id', sa.String(length=32), nullable=True),
    sa.Column('issued_before', DATETIME, nullable=False),
    sa.Column('revoked_at', DATETIME, nullable=False),
    sa.Column('extra', pocketstack.common.db.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_identity_revocation_event_revoked_at'), 'identity_revocation_event', ['revoked_at'], unique=False)

    op.create_table('identity_role',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('options', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('extra', pocketstack.common.db.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'domain_id')
    )
    op.create_table('identity_service',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('extra', pocketstack.common.db.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('identity_user',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('domain_id', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('password_created_at', DATETIME, nullable=True),
    sa.Column('default_project_id', sa.String(length=64), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('options', pocketstack.common.db.JSONType(), nullable=False),
    sa.Column('created_at', DATETIME, nullable=True),
    sa.Column('extra', pocketstack.common.db.JSONType(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('domain_id', 'name')
    )
    op.create_index(op.f('ix_identity_user_domain_id'), 'identity_user', ['domain_id'], unique=False)



def downgrade() -> None:
    op.drop_table('identity_user')
    op.drop_table('identity_service')
    op.drop_table('identity_role')
    op.drop_table('identity_revocation_event')
    op.drop_table('identity_region')
    op.drop_table('identity_project')
    op.drop_table('identity_membership')
    op.drop_table('identity_implied_role')
    op.drop_table('identity_group')
    op.drop_table('identity_endpoint')
    op.drop_table('identity_domain')
    op.drop_table('identity_credential')
    op.drop_table('identity_assignment')
    op.drop_table('identity_application_credential')
