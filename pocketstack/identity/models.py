"""Identity's tables. Each table is one entity kind of the backends' store.

Attributes a client sends that the API does not define are kept in ``extra``
and returned as they came (Keystone's "extras").
"""

import sqlalchemy as sa

from pocketstack.common.db import JSONType
from pocketstack.common.db import UTCDateTime as _UTCDateTime


class UTCDateTime(_UTCDateTime):
    """UTC timestamps with microseconds on every engine (MariaDB's DATETIME drops
    them by default, and revocation compares token issue times to the microsecond)."""

    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql  # not imported at start-up on SQLite

            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())


metadata = sa.MetaData()
SCHEMA_HEAD = "0001"

# Roles without a domain are global; the sentinel keeps (name, domain_id) unique
# on every engine (NULLs are never equal in a unique index).
GLOBAL = "<<null>>"


def _table(name, *columns, **kw):
    return sa.Table(f"identity_{name}", metadata, *columns, **kw)


ID = sa.String(64)

domain = _table(
    "domain",
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("description", sa.Text),
    sa.Column("extra", JSONType, nullable=False, default=dict),
)

project = _table(
    "project",
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("domain_id", ID, nullable=False, index=True),
    sa.Column("parent_id", ID, index=True),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("description", sa.Text),
    sa.Column("tags", JSONType, nullable=False, default=list),
    sa.Column("options", JSONType, nullable=False, default=dict),
    sa.Column("extra", JSONType, nullable=False, default=dict),
    sa.UniqueConstraint("domain_id", "name"),
)

user = _table(
    "user",
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("domain_id", ID, nullable=False, index=True),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("password_created_at", UTCDateTime),
    sa.Column("default_project_id", ID),
    sa.Column("description", sa.Text),
    sa.Column("options", JSONType, nullable=False, default=dict),
    sa.Column("created_at", UTCDateTime),
    sa.Column("extra", JSONType, nullable=False, default=dict),
    sa.UniqueConstraint("domain_id", "name"),
)

group = _table(
    "group",
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("domain_id", ID, nullable=False, index=True),
    sa.Column("description", sa.Text),
    sa.Column("extra", JSONType, nullable=False, default=dict),
    sa.UniqueConstraint("domain_id", "name"),
)

membership = _table(
    "membership",
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("group_id", ID, primary_key=True, index=True),
)

role = _table(
    "role",
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("domain_id", ID, nullable=False, default=GLOBAL),
    sa.Column("description", sa.Text),
    sa.Column("options", JSONType, nullable=False, default=dict),
    sa.Column("extra", JSONType, nullable=False, default=dict),
    sa.UniqueConstraint("name", "domain_id"),
)

implied_role = _table(
    "implied_role",
    sa.Column("prior_role_id", ID, primary_key=True),
    sa.Column("implied_role_id", ID, primary_key=True),
)

# type: UserProject, GroupProject, UserDomain, GroupDomain, UserSystem, GroupSystem
assignment = _table(
    "assignment",
    sa.Column("type", sa.String(16), primary_key=True),
    sa.Column("actor_id", ID, primary_key=True),
    sa.Column("target_id", ID, primary_key=True),
    sa.Column("role_id", ID, primary_key=True, index=True),
    sa.Column("inherited", sa.Boolean, primary_key=True, default=False),
    sa.Index("ix_identity_assignment_actor", "actor_id"),
    sa.Index("ix_identity_assignment_target", "target_id"),
)

region = _table(
    "region",
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("description", sa.Text),
    sa.Column("parent_region_id", sa.String(255)),
    sa.Column("extra", JSONType, nullable=False, default=dict),
)

service = _table(
    "service",
    sa.Column("id", ID, primary_key=True),
    sa.Column("type", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255)),
    sa.Column("description", sa.Text),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("extra", JSONType, nullable=False, default=dict),
)

endpoint = _table(
    "endpoint",
    sa.Column("id", ID, primary_key=True),
    sa.Column("service_id", ID, nullable=False, index=True),
    sa.Column("interface", sa.String(8), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("region_id", sa.String(255)),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("extra", JSONType, nullable=False, default=dict),
)

credential = _table(
    "credential",
    sa.Column("id", ID, primary_key=True),
    sa.Column("user_id", ID, nullable=False, index=True),
    sa.Column("project_id", ID),
    sa.Column("type", sa.String(255), nullable=False),
    sa.Column("blob", sa.Text, nullable=False),
    sa.Column("extra", JSONType, nullable=False, default=dict),
)

application_credential = _table(
    "application_credential",
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("user_id", ID, nullable=False, index=True),
    sa.Column("project_id", ID),
    sa.Column("system", sa.String(16)),
    sa.Column("secret_hash", sa.String(255), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("unrestricted", sa.Boolean, nullable=False, default=False),
    sa.Column("roles", JSONType, nullable=False, default=list),
    sa.Column("access_rules", JSONType, nullable=False, default=list),
    sa.Column("extra", JSONType, nullable=False, default=dict),
    sa.UniqueConstraint("user_id", "name"),
)

revocation_event = _table(
    "revocation_event",
    sa.Column("id", ID, primary_key=True),
    sa.Column("user_id", ID),
    sa.Column("project_id", ID),
    sa.Column("domain_id", ID),
    sa.Column("role_id", ID),
    sa.Column("audit_id", sa.String(32)),
    sa.Column("issued_before", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=False, index=True),
    sa.Column("extra", JSONType, nullable=False, default=dict),
)

KINDS: dict[str, sa.Table] = {
    t.name.removeprefix("identity_"): t for t in metadata.sorted_tables
}
