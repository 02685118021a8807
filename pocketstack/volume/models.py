"""Block storage tables (Core tables; each row is rendered by views.py)."""

import sqlalchemy as sa

from pocketstack.common.db import JSONType, UTCDateTime

metadata = sa.MetaData()
SCHEMA_HEAD = "0001"

ID = sa.String(36)
PROJECT = sa.String(64)


def _table(name, *columns, **kw):
    return sa.Table(f"volume_{name}", metadata, *columns, **kw)


def _times():
    return [sa.Column("created_at", UTCDateTime, nullable=False),
            sa.Column("updated_at", UTCDateTime)]


volume_type = _table(
    "type",
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.String(255)),
    sa.Column("is_public", sa.Boolean, nullable=False, default=True),
    sa.Column("extra_specs", JSONType, nullable=False, default=dict),
    *_times(),
)

type_access = _table(
    "type_access",
    sa.Column("volume_type_id", ID, primary_key=True),
    sa.Column("project_id", PROJECT, primary_key=True),
)

volume = _table(
    "volume",
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("user_id", sa.String(64)),
    sa.Column("name", sa.String(255)),
    sa.Column("description", sa.String(255)),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("attach_status", sa.String(32), nullable=False, default="detached"),
    sa.Column("migration_status", sa.String(32)),
    sa.Column("availability_zone", sa.String(255)),
    sa.Column("host", sa.String(255)),  # host@backend#pool
    sa.Column("backend", sa.String(255)),
    sa.Column("volume_type_id", ID),
    sa.Column("source_volid", ID),
    sa.Column("snapshot_id", ID),
    sa.Column("backup_id", ID),
    sa.Column("bootable", sa.Boolean, nullable=False, default=False),
    sa.Column("multiattach", sa.Boolean, nullable=False, default=False),
    sa.Column("readonly", sa.Boolean, nullable=False, default=False),
    sa.Column("meta", JSONType, nullable=False, default=dict),
    sa.Column("image_meta", JSONType),
    sa.Column("provider_location", JSONType),  # where the driver keeps it
    sa.Column("task", sa.String(64)),  # what the worker is doing, for messages
    *_times(),
    sa.Index("ix_volume_volume_created", "created_at"),
)

snapshot = _table(
    "snapshot",
    sa.Column("id", ID, primary_key=True),
    sa.Column("volume_id", ID, nullable=False, index=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("user_id", sa.String(64)),
    sa.Column("name", sa.String(255)),
    sa.Column("description", sa.String(255)),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("progress", sa.String(16), nullable=False, default="0%"),
    sa.Column("volume_type_id", ID),
    sa.Column("meta", JSONType, nullable=False, default=dict),
    sa.Column("provider_location", JSONType),
    *_times(),
)

attachment = _table(
    "attachment",
    sa.Column("id", ID, primary_key=True),
    sa.Column("volume_id", ID, nullable=False, index=True),
    sa.Column("project_id", PROJECT, nullable=False),
    sa.Column("instance_uuid", sa.String(36)),
    sa.Column("attached_host", sa.String(255)),
    sa.Column("mountpoint", sa.String(255)),
    sa.Column("attach_status", sa.String(32), nullable=False),
    sa.Column("attach_mode", sa.String(8), nullable=False, default="rw"),
    sa.Column("connector", JSONType),
    sa.Column("connection_info", JSONType),
    sa.Column("attach_time", UTCDateTime),
    sa.Column("detach_time", UTCDateTime),
    *_times(),
)

quota = _table(
    "quota",
    sa.Column("project_id", PROJECT, primary_key=True),
    sa.Column("resource", sa.String(255), primary_key=True),
    sa.Column("hard_limit", sa.Integer, nullable=False),
)

# One row per project, locked (SELECT ... FOR UPDATE) while usage is counted
# and a resource is added, so concurrent creates cannot overrun a quota.
quota_lock = _table(
    "quota_lock",
    sa.Column("project_id", PROJECT, primary_key=True),
)

backup = _table(
    "backup",
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("user_id", sa.String(64)),
    sa.Column("volume_id", ID, nullable=False),
    sa.Column("snapshot_id", ID),
    sa.Column("name", sa.String(255)),
    sa.Column("description", sa.String(255)),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("fail_reason", sa.String(255)),
    sa.Column("container", sa.String(255)),
    sa.Column("availability_zone", sa.String(255)),
    sa.Column("object_count", sa.Integer, nullable=False, default=0),
    sa.Column("is_incremental", sa.Boolean, nullable=False, default=False),
    sa.Column("parent_id", ID),
    sa.Column("meta", JSONType, nullable=False, default=dict),
    sa.Column("service_metadata", JSONType),
    sa.Column("data_timestamp", UTCDateTime),
    *_times(),
)

message = _table(
    "message",
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("request_id", sa.String(64)),
    sa.Column("resource_type", sa.String(32)),
    sa.Column("resource_uuid", ID),
    sa.Column("event_id", sa.String(32)),
    sa.Column("message_level", sa.String(16)),
    sa.Column("user_message", sa.String(255)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime),
)

# Files a failed or interrupted operation left on a backend; the janitor
# removes them once the backend answers again.
cleanup = _table(
    "cleanup",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("backend", sa.String(255), nullable=False),
    sa.Column("location", JSONType, nullable=False),
    sa.Column("reason", sa.String(255)),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
