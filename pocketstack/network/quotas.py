"""Per-project quotas (Neutron's quotas extension, with details)."""

from __future__ import annotations

import sqlalchemy as sa

from pocketstack.common import errors
from pocketstack.network import errors as nerr
from pocketstack.network import models

Q = models.quota

RESOURCES = {
    "network": (models.network, None),
    "subnet": (models.subnet, None),
    "port": (models.port, None),
    "router": (models.router, None),
    "floatingip": (models.floatingip, None),
    "security_group": (models.security_group, None),
    "security_group_rule": (models.security_group_rule, None),
    "subnetpool": (models.subnetpool, None),
}


_LIMIT = sa.select(Q.c.hard_limit).where(Q.c.project_id == sa.bindparam("project_id"),
                                         Q.c.resource == sa.bindparam("resource"))
_COUNTS = {name: sa.select(sa.func.count()).select_from(table).where(
    table.c.project_id == sa.bindparam("project_id")) for name, (table, _) in RESOURCES.items()}


class QuotaMixin:
    def default_quotas(self) -> dict[str, int]:
        q = self.conf.quotas
        return {name: getattr(q, f"quota_{name}", q.default_quota) for name in RESOURCES}

    def _limits(self, s, project_id: str) -> dict[str, int]:
        limits = self.default_quotas()
        for resource, limit in s.execute(sa.select(Q.c.resource, Q.c.hard_limit).where(
                Q.c.project_id == project_id)):
            if resource in limits:
                limits[resource] = limit
        return limits

    def check_quota(self, s, project_id: str, resource: str, wanted: int = 1) -> None:
        """Raise OverQuota if ``wanted`` more ``resource`` would exceed the project's limit.

        Called inside the transaction that inserts the resources."""
        row = s.execute(_LIMIT, {"project_id": project_id, "resource": resource}).first()
        limit = row[0] if row else self.default_quotas()[resource]
        if limit < 0:
            return
        used = s.execute(_COUNTS[resource], {"project_id": project_id}).scalar_one()
        if used + wanted > limit:
            raise nerr.over_quota(resource)

    def get_quota(self, ctx, project_id: str) -> dict:
        if project_id != ctx.project_id and not ctx.is_admin:
            raise nerr.policy_denied("get_quota")
        with self.db.reader() as s:
            return self._limits(s, project_id)

    def list_quotas(self, ctx) -> list[dict]:
        if not ctx.is_admin:
            raise nerr.policy_denied("get_quota")
        with self.db.reader() as s:
            projects = sorted(set(s.execute(sa.select(Q.c.project_id)).scalars()))
            return [{**self._limits(s, p), "project_id": p, "tenant_id": p} for p in projects]

    def quota_details(self, ctx, project_id: str) -> dict:
        limits = self.get_quota(ctx, project_id)
        out = {}
        with self.db.reader() as s:
            for resource, (table, _) in RESOURCES.items():
                used = s.execute(sa.select(sa.func.count()).select_from(table).where(
                    table.c.project_id == project_id)).scalar_one()
                out[resource] = {"limit": limits[resource], "used": used, "reserved": 0}
        return out

    def update_quota(self, ctx, project_id: str, changes: dict) -> dict:
        if not ctx.is_admin:
            raise nerr.policy_denied("update_quota")
        if not isinstance(changes, dict):
            raise errors.BadRequest("Invalid input for quota.", kind="HTTPBadRequest")
        clean = {}
        for key, value in changes.items():
            if key not in RESOURCES:
                if key in ("rbac_policy", "check_limit", "force"):
                    continue
                raise errors.BadRequest(f"Unrecognized attribute(s) '{key}'",
                                        kind="HTTPBadRequest")
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise errors.BadRequest(f"Invalid input for {key}. Reason: '{value}' is not "
                                        "an integer.", kind="HTTPBadRequest") from None
            if number < -1:
                raise errors.BadRequest(f"Invalid input for {key}. Reason: '{number}' is "
                                        "smaller than -1.", kind="HTTPBadRequest")
            clean[key] = number

        def txn(s):
            for resource, limit in clean.items():
                updated = s.execute(Q.update().where(Q.c.project_id == project_id,
                                                     Q.c.resource == resource)
                                    .values(hard_limit=limit)).rowcount
                if not updated:
                    s.execute(Q.insert().values(project_id=project_id, resource=resource,
                                                hard_limit=limit))
            return self._limits(s, project_id)

        return self.run(txn)

    def delete_quota(self, ctx, project_id: str) -> None:
        if not ctx.is_admin:
            raise nerr.policy_denied("delete_quota")
        self.run(lambda s: s.execute(Q.delete().where(Q.c.project_id == project_id)))
