"""Networking's tables (SQLAlchemy Core), all prefixed ``network_``.

IPAM keeps, per subnet, the free parts of its allocation pools as ranges
(``network_ip_range``: first/last as 32-digit hex so they sort and compare as
text on every engine) and the taken addresses (``network_ip_allocation``,
unique per subnet). Both change in the transaction that creates or deletes a
port, so a rolled-back request gives back everything it took.
"""

import json

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from pocketstack.common.db import UTCDateTime

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is optional
    orjson = None


class JSONType(TypeDecorator):
    """JSON kept as text; empty lists/dicts (most of them) skip the parser."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not value:
            return "[]" if isinstance(value, list) else "{}"
        if orjson is not None:
            return orjson.dumps(value).decode()
        return json.dumps(value, separators=(",", ":"))

    def process_result_value(self, value, dialect):
        return json_value(value)


_loads = orjson.loads if orjson is not None else json.loads


def json_value(value):
    if value is None:
        return None
    if value == "[]":
        return []
    if value == "{}":
        return {}
    return _loads(value)

metadata = sa.MetaData()
SCHEMA_HEAD = "0001"

ID = sa.String(36)
PROJECT = sa.String(64)


def _table(name, *columns, **kw):
    return sa.Table(f"network_{name}", metadata, *columns, **kw)


def _standard():
    return [
        sa.Column("description", sa.String(255), nullable=False, default=""),
        sa.Column("tags", JSONType, nullable=False, default=list),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("revision_number", sa.Integer, nullable=False, default=0),
    ]


network = _table(
    "network",
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False, default=""),
    sa.Column("admin_state_up", sa.Boolean, nullable=False, default=True),
    sa.Column("status", sa.String(16), nullable=False, default="ACTIVE"),
    sa.Column("shared", sa.Boolean, nullable=False, default=False),
    sa.Column("external", sa.Boolean, nullable=False, default=False),
    sa.Column("is_default", sa.Boolean, nullable=False, default=False),
    sa.Column("mtu", sa.Integer, nullable=False),
    sa.Column("port_security_enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("network_type", sa.String(16), nullable=False),
    sa.Column("physical_network", sa.String(64)),
    sa.Column("segmentation_id", sa.Integer),
    sa.Column("availability_zone_hints", JSONType, nullable=False, default=list),
    *_standard(),
)

# One row per allocated segment: (type, physnet, id) is unique, so two
# networks never get the same VNI/VLAN (flat networks use id 0).
segment = _table(
    "segment",
    sa.Column("network_type", sa.String(16), primary_key=True),
    sa.Column("physical_network", sa.String(64), primary_key=True),
    sa.Column("segmentation_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("network_id", ID, sa.ForeignKey("network_network.id", ondelete="CASCADE"),
              nullable=False, index=True),
)

subnetpool = _table(
    "subnetpool",
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False, default=""),
    sa.Column("ip_version", sa.Integer, nullable=False),
    sa.Column("prefixes", JSONType, nullable=False),
    sa.Column("default_prefixlen", sa.Integer, nullable=False),
    sa.Column("min_prefixlen", sa.Integer, nullable=False),
    sa.Column("max_prefixlen", sa.Integer, nullable=False),
    sa.Column("shared", sa.Boolean, nullable=False, default=False),
    sa.Column("is_default", sa.Boolean, nullable=False, default=False),
    sa.Column("default_quota", sa.Integer),
    sa.Column("address_scope_id", ID),
    *_standard(),
)

subnet = _table(
    "subnet",
    sa.Column("id", ID, primary_key=True),
    sa.Column("network_id", ID, sa.ForeignKey("network_network.id"), nullable=False,
              index=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False, default=""),
    sa.Column("ip_version", sa.Integer, nullable=False),
    sa.Column("cidr", sa.String(64), nullable=False),
    sa.Column("gateway_ip", sa.String(64)),
    sa.Column("enable_dhcp", sa.Boolean, nullable=False, default=True),
    sa.Column("ipv6_ra_mode", sa.String(16)),
    sa.Column("ipv6_address_mode", sa.String(16)),
    sa.Column("allocation_pools", JSONType, nullable=False, default=list),
    sa.Column("dns_nameservers", JSONType, nullable=False, default=list),
    sa.Column("host_routes", JSONType, nullable=False, default=list),
    sa.Column("service_types", JSONType, nullable=False, default=list),
    sa.Column("subnetpool_id", ID, index=True),
    *_standard(),
)

# Free addresses of a subnet's pools: [first, last] as 32-digit hex.
ip_range = _table(
    "ip_range",
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subnet_id", ID, sa.ForeignKey("network_subnet.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("first_ip", sa.String(32), nullable=False),
    sa.Column("last_ip", sa.String(32), nullable=False),
    sa.Index("network_ip_range_subnet_first", "subnet_id", "first_ip"),
    sa.Index("network_ip_range_subnet_last", "subnet_id", "last_ip"),
)

port = _table(
    "port",
    sa.Column("id", ID, primary_key=True),
    sa.Column("network_id", ID, sa.ForeignKey("network_network.id"), nullable=False,
              index=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False, default=""),
    sa.Column("mac_address", sa.String(32), nullable=False),
    sa.Column("admin_state_up", sa.Boolean, nullable=False, default=True),
    sa.Column("status", sa.String(16), nullable=False, default="DOWN"),
    sa.Column("device_id", sa.String(255), nullable=False, default="", index=True),
    sa.Column("device_owner", sa.String(255), nullable=False, default="", index=True),
    sa.Column("port_security_enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("security_groups", JSONType, nullable=False, default=list),
    sa.Column("allowed_address_pairs", JSONType, nullable=False, default=list),
    sa.Column("extra_dhcp_opts", JSONType, nullable=False, default=list),
    sa.Column("host_id", sa.String(255), nullable=False, default=""),
    sa.Column("vnic_type", sa.String(64), nullable=False, default="normal"),
    sa.Column("profile", JSONType, nullable=False, default=dict),
    sa.Column("vif_type", sa.String(64), nullable=False, default="unbound"),
    sa.Column("vif_details", JSONType, nullable=False, default=dict),
    sa.Column("fixed_ips", JSONType, nullable=False, default=list),
    *_standard(),
    sa.UniqueConstraint("network_id", "mac_address", name="network_port_mac_unique"),
)

ip_allocation = _table(
    "ip_allocation",
    sa.Column("subnet_id", ID, sa.ForeignKey("network_subnet.id"), primary_key=True),
    sa.Column("ip_address", sa.String(64), primary_key=True),
    sa.Column("port_id", ID, sa.ForeignKey("network_port.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("network_id", ID, nullable=False, index=True),
)

security_group = _table(
    "security_group",
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False, default=""),
    sa.Column("stateful", sa.Boolean, nullable=False, default=True),
    *_standard(),
)

# The one `default` group of each project (the primary key makes it one).
default_security_group = _table(
    "default_security_group",
    sa.Column("project_id", PROJECT, primary_key=True),
    sa.Column("security_group_id", ID,
              sa.ForeignKey("network_security_group.id", ondelete="CASCADE"), nullable=False),
)

security_group_rule = _table(
    "security_group_rule",
    sa.Column("id", ID, primary_key=True),
    sa.Column("security_group_id", ID,
              sa.ForeignKey("network_security_group.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("ethertype", sa.String(8), nullable=False),
    sa.Column("protocol", sa.String(40)),
    sa.Column("port_range_min", sa.Integer),
    sa.Column("port_range_max", sa.Integer),
    sa.Column("remote_ip_prefix", sa.String(64)),
    sa.Column("remote_group_id", ID),
    # A canonical form of what the rule matches: duplicates collide here.
    sa.Column("fingerprint", sa.String(255), nullable=False),
    *_standard(),
    sa.UniqueConstraint("security_group_id", "fingerprint", name="network_sg_rule_unique"),
)

# Which ports use which groups (for "group in use" checks).
port_security_group = _table(
    "port_security_group",
    sa.Column("port_id", ID, sa.ForeignKey("network_port.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("security_group_id", ID, sa.ForeignKey("network_security_group.id"),
              primary_key=True, index=True),
)

router = _table(
    "router",
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False, default=""),
    sa.Column("admin_state_up", sa.Boolean, nullable=False, default=True),
    sa.Column("status", sa.String(16), nullable=False, default="ACTIVE"),
    sa.Column("gw_port_id", ID),
    sa.Column("gw_network_id", ID),
    sa.Column("enable_snat", sa.Boolean, nullable=False, default=True),
    sa.Column("routes", JSONType, nullable=False, default=list),
    *_standard(),
)

floatingip = _table(
    "floatingip",
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", PROJECT, nullable=False, index=True),
    sa.Column("floating_network_id", ID, nullable=False),
    sa.Column("floating_ip_address", sa.String(64), nullable=False),
    sa.Column("floating_port_id", ID, nullable=False),
    sa.Column("port_id", ID, index=True),
    sa.Column("fixed_ip_address", sa.String(64)),
    sa.Column("router_id", ID, index=True),
    sa.Column("status", sa.String(16), nullable=False, default="DOWN"),
    *_standard(),
    sa.UniqueConstraint("port_id", "fixed_ip_address", name="network_fip_fixed_unique"),
)

quota = _table(
    "quota",
    sa.Column("project_id", PROJECT, primary_key=True),
    sa.Column("resource", sa.String(64), primary_key=True),
    sa.Column("hard_limit", sa.Integer, nullable=False),
)

auto_allocated_topology = _table(
    "auto_allocated_topology",
    sa.Column("project_id", PROJECT, primary_key=True),
    sa.Column("network_id", ID, nullable=False),
    sa.Column("router_id", ID),
)

# Tags of every resource kind, for ``tags=``/``not-tags=`` filters (the
# resource row keeps its own list for rendering).
tag = _table(
    "tag",
    sa.Column("resource_id", ID, primary_key=True),
    sa.Column("tag", sa.String(255), primary_key=True),
    sa.Index("network_tag_tag", "tag"),
)
