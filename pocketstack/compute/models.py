"""Compute's tables (only the conductor and the API process read them).

Per-server data that is always shown with the server (metadata, tags, the
flavor it was built with, its network info, its fault) lives in JSON columns
of the instance row: a page of ``/servers/detail`` is one query.
"""

import json

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from pocketstack.common.db import UTCDateTime

try:  # several times faster than json on the rows a server list decodes
    import orjson

    loads, _dumps = orjson.loads, orjson.dumps
except ImportError:  # pragma: no cover
    orjson = None
    loads, _dumps = json.loads, (lambda v: json.dumps(v, separators=(",", ":")))


class JSONType(TypeDecorator):
    """A JSON document kept as text (the same storage as common.db.JSONType)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        out = _dumps(value)
        return out.decode() if isinstance(out, bytes) else out

    def process_result_value(self, value, dialect):
        return None if value is None else loads(value)

metadata = sa.MetaData()
SCHEMA_HEAD = "0002"


def _table(name, *columns, **kw):
    return sa.Table(f"compute_{name}", metadata, *columns, **kw)


UUID = sa.String(36)
ID = sa.String(64)

flavor = _table(
    "flavor",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flavorid", sa.String(255), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("memory_mb", sa.Integer, nullable=False),
    sa.Column("vcpus", sa.Integer, nullable=False),
    sa.Column("root_gb", sa.Integer, nullable=False, default=0),
    sa.Column("ephemeral_gb", sa.Integer, nullable=False, default=0),
    sa.Column("swap", sa.Integer, nullable=False, default=0),
    sa.Column("rxtx_factor", sa.Float, nullable=False, default=1.0),
    sa.Column("is_public", sa.Boolean, nullable=False, default=True),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("description", sa.Text),
    sa.Column("extra_specs", JSONType, nullable=False, default=dict),
    sa.Column("created_at", UTCDateTime),
)

flavor_access = _table(
    "flavor_access",
    sa.Column("flavorid", sa.String(255), nullable=False),
    sa.Column("project_id", ID, nullable=False),
    sa.PrimaryKeyConstraint("flavorid", "project_id"),
)

keypair = _table(
    "keypair",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("fingerprint", sa.String(255)),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("type", sa.String(16), nullable=False, default="ssh"),
    sa.Column("created_at", UTCDateTime),
    sa.UniqueConstraint("user_id", "name"),
)

instance = _table(
    "instance",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uuid", UUID, nullable=False, unique=True),
    sa.Column("display_name", sa.String(255)),
    sa.Column("description", sa.Text),
    sa.Column("project_id", ID, nullable=False, index=True),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("hostname", sa.String(255)),
    sa.Column("image_ref", sa.String(255)),
    sa.Column("flavor", JSONType, nullable=False),
    sa.Column("old_flavor", JSONType),
    sa.Column("new_flavor", JSONType),
    sa.Column("vcpus", sa.Integer, nullable=False, default=0),
    sa.Column("memory_mb", sa.Integer, nullable=False, default=0),
    sa.Column("root_gb", sa.Integer, nullable=False, default=0),
    sa.Column("vm_state", sa.String(32), nullable=False),
    sa.Column("task_state", sa.String(64)),
    sa.Column("power_state", sa.Integer, nullable=False, default=0),
    sa.Column("host", sa.String(255), index=True),
    sa.Column("node", sa.String(255)),
    sa.Column("old_host", sa.String(255)),
    sa.Column("availability_zone", sa.String(255)),
    sa.Column("pinned_az", sa.String(255)),
    sa.Column("key_name", sa.String(255)),
    sa.Column("key_data", sa.Text),
    sa.Column("user_data", sa.Text),
    sa.Column("meta", JSONType, nullable=False, default=dict),
    sa.Column("system_metadata", JSONType, nullable=False, default=dict),
    sa.Column("tags", JSONType, nullable=False, default=list),
    sa.Column("security_groups", JSONType, nullable=False, default=list),
    sa.Column("network_info", JSONType, nullable=False, default=list),
    sa.Column("block_devices", JSONType, nullable=False, default=list),
    sa.Column("request_spec", JSONType, nullable=False, default=dict),
    sa.Column("fault", JSONType),
    sa.Column("access_ip_v4", sa.String(64)),
    sa.Column("access_ip_v6", sa.String(64)),
    sa.Column("config_drive", sa.String(255), nullable=False, default=""),
    sa.Column("locked", sa.Boolean, nullable=False, default=False),
    sa.Column("locked_by", sa.String(16)),
    sa.Column("locked_reason", sa.Text),
    sa.Column("launch_index", sa.Integer, nullable=False, default=0),
    sa.Column("reservation_id", sa.String(64)),
    sa.Column("root_device_name", sa.String(255)),
    sa.Column("progress", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("updated_at", UTCDateTime),
    sa.Column("launched_at", UTCDateTime),
    sa.Column("terminated_at", UTCDateTime),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("deleted_at", UTCDateTime),
    sa.Index("compute_instance_project_deleted", "project_id", "deleted"),
)

instance_action = _table(
    "instance_action",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("instance_uuid", UUID, nullable=False, index=True),
    sa.Column("action", sa.String(255), nullable=False),
    sa.Column("request_id", sa.String(255), nullable=False),
    sa.Column("user_id", ID),
    sa.Column("project_id", ID),
    sa.Column("start_time", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime),
    sa.Column("message", sa.Text),
    sa.Column("events", JSONType, nullable=False, default=list),
)

aggregate = _table(
    "aggregate",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uuid", UUID, nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("meta", JSONType, nullable=False, default=dict),
    sa.Column("created_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime),
)

aggregate_host = _table(
    "aggregate_host",
    sa.Column("aggregate_id", sa.Integer, sa.ForeignKey("compute_aggregate.id",
                                                          ondelete="CASCADE"), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.PrimaryKeyConstraint("aggregate_id", "host"),
)

service = _table(
    "service",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uuid", UUID, nullable=False, unique=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("binary", sa.String(255), nullable=False),
    sa.Column("topic", sa.String(255)),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("disabled_reason", sa.String(255)),
    sa.Column("forced_down", sa.Boolean, nullable=False, default=False),
    sa.Column("version", sa.Integer, nullable=False, default=0),
    sa.Column("last_seen_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime),
    sa.UniqueConstraint("host", "binary"),
)

compute_node = _table(
    "node",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uuid", UUID, nullable=False, unique=True),
    sa.Column("host", sa.String(255), nullable=False, unique=True),
    sa.Column("hypervisor_hostname", sa.String(255), nullable=False),
    sa.Column("hypervisor_type", sa.String(64), nullable=False, default="fake"),
    sa.Column("hypervisor_version", sa.Integer, nullable=False, default=1000),
    sa.Column("host_ip", sa.String(64)),
    sa.Column("vcpus", sa.Integer, nullable=False),
    sa.Column("memory_mb", sa.Integer, nullable=False),
    sa.Column("local_gb", sa.Integer, nullable=False),
    sa.Column("vcpus_used", sa.Integer, nullable=False, default=0),
    sa.Column("memory_mb_used", sa.Integer, nullable=False, default=0),
    sa.Column("local_gb_used", sa.Integer, nullable=False, default=0),
    sa.Column("running_vms", sa.Integer, nullable=False, default=0),
    sa.Column("cpu_info", JSONType, nullable=False, default=dict),
    sa.Column("updated_at", UTCDateTime),
)

server_group = _table(
    "server_group",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uuid", UUID, nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("project_id", ID, nullable=False, index=True),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("policy", sa.String(64), nullable=False),
    sa.Column("rules", JSONType, nullable=False, default=dict),
    sa.Column("created_at", UTCDateTime),
)

server_group_member = _table(
    "server_group_member",
    sa.Column("group_id", sa.Integer, sa.ForeignKey("compute_server_group.id",
                                                      ondelete="CASCADE"), nullable=False),
    sa.Column("instance_uuid", UUID, nullable=False),
    sa.PrimaryKeyConstraint("group_id", "instance_uuid"),
)

quota = _table(
    "quota",
    sa.Column("project_id", ID, nullable=False),
    sa.Column("resource", sa.String(64), nullable=False),
    sa.Column("hard_limit", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("project_id", "resource"),
)

# Quota classes: the "default" class supplies every project's defaults.
quota_class = _table(
    "quota_class",
    sa.Column("class_name", sa.String(255), nullable=False),
    sa.Column("resource", sa.String(64), nullable=False),
    sa.Column("hard_limit", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("class_name", "resource"),
)

# Remote console tokens: only their SHA-256 is kept; they die with the instance.
console_auth_token = _table(
    "console_auth_token",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("console_type", sa.String(32), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer),
    sa.Column("internal_access_path", sa.String(512)),
    sa.Column("instance_uuid", UUID, nullable=False, index=True),
    sa.Column("expires", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

migration = _table(
    "migration",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("uuid", UUID, nullable=False, unique=True),
    sa.Column("instance_uuid", UUID, nullable=False, index=True),
    sa.Column("migration_type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("source_compute", sa.String(255)),
    sa.Column("dest_compute", sa.String(255)),
    sa.Column("old_flavor_id", sa.Integer),
    sa.Column("new_flavor_id", sa.Integer),
    sa.Column("project_id", ID),
    sa.Column("user_id", ID),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime),
)

# One row per project, locked while a project's usage is counted and changed.
project_lock = _table(
    "project_lock",
    sa.Column("project_id", ID, primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False, default=0),
)
