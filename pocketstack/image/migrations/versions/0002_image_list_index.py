"""image lists walk one index holding every column they filter on

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('image_image', schema=None) as batch_op:
        batch_op.drop_index('ix_image_image_created')
        batch_op.create_index('ix_image_image_list', ['created_at', 'id', 'owner', 'visibility',
                                                      'status', 'os_hidden'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('image_image', schema=None) as batch_op:
        batch_op.drop_index('ix_image_image_list')
        batch_op.create_index('ix_image_image_created', ['created_at', 'id'], unique=False)
