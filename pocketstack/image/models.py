"""The image service's tables.

An image's additional properties and tags live as JSON on its row (what every
read renders) and, for filtering, one row each in ``image_property`` /
``image_tag``; both are written in the same transaction.
"""

import sqlalchemy as sa

from pocketstack.common.db import JSONType, UTCDateTime

metadata = sa.MetaData()
SCHEMA_HEAD = "0002"

ID = sa.String(36)

image = sa.Table(
    "image_image", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255)),
    sa.Column("disk_format", sa.String(20)),
    sa.Column("container_format", sa.String(20)),
    sa.Column("size", sa.BigInteger),
    sa.Column("virtual_size", sa.BigInteger),
    sa.Column("status", sa.String(30), nullable=False),
    sa.Column("visibility", sa.String(20), nullable=False),
    sa.Column("checksum", sa.String(32)),
    sa.Column("os_hash_algo", sa.String(64)),
    sa.Column("os_hash_value", sa.String(128)),
    sa.Column("min_disk", sa.Integer, nullable=False, default=0),
    sa.Column("min_ram", sa.Integer, nullable=False, default=0),
    sa.Column("protected", sa.Boolean, nullable=False, default=False),
    sa.Column("os_hidden", sa.Boolean, nullable=False, default=False),
    sa.Column("owner", sa.String(255)),
    # Where the data is: "file://<path>" or "objectstore://<container>/<object>".
    sa.Column("location", sa.Text),
    sa.Column("properties", JSONType, nullable=False, default=dict),
    sa.Column("tags", JSONType, nullable=False, default=list),
    # The image as the API shows it (JSON), refreshed on every change: lists send it as is.
    sa.Column("rendered", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_image_image_owner", "owner"),
    sa.Index("ix_image_image_visibility", "visibility", "created_at"),
    # Lists in the default order walk this index newest first and stop at the page's
    # end; it holds every column the visibility filter reads, so rows are only read
    # for the images on the page.
    sa.Index("ix_image_image_list", "created_at", "id", "owner", "visibility", "status",
             "os_hidden"),
)

image_property = sa.Table(
    "image_property", metadata,
    sa.Column("image_id", ID, sa.ForeignKey("image_image.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text),
    sa.Index("ix_image_property_name", "name"),
)

image_tag = sa.Table(
    "image_tag", metadata,
    sa.Column("image_id", ID, sa.ForeignKey("image_image.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("value", sa.String(255), primary_key=True),
    sa.Index("ix_image_tag_value", "value"),
)

image_member = sa.Table(
    "image_member", metadata,
    sa.Column("image_id", ID, sa.ForeignKey("image_image.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("member", sa.String(255), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False, default="pending"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_image_member_member", "member", "status"),
)
