"""A server's password (``os-server-password``): the guest posts it, encrypted with
the server's key pair, once to the metadata service (``POST
/openstack/<version>/password``, up to 1020 bytes); its owner reads it and may
clear it (then the guest may post a new one). Kept in the server's system
metadata, as Nova keeps it."""

from __future__ import annotations

import sqlalchemy as sa

from pocketstack.common import errors
from pocketstack.common.db import utcnow
from pocketstack.compute import models as m

MAX_SIZE = 4 * 255
KEY = "password"


def read(inst: dict) -> str:
    return (inst["system_metadata"] or {}).get(KEY) or ""


def _change(db, instance_uuid: str, password: str | None, *, only_if_unset: bool) -> None:
    def txn(s):
        q = sa.select(m.instance.c.system_metadata, m.instance.c.deleted).where(
            m.instance.c.uuid == instance_uuid)
        if db.dialect != "sqlite":
            q = q.with_for_update()
        found = s.execute(q).first()
        if found is None or found.deleted:
            raise errors.NotFound(f"Instance {instance_uuid} could not be found.")
        sysmeta = dict(found.system_metadata or {})
        if only_if_unset and sysmeta.get(KEY):
            raise errors.Conflict("The password is already set.")
        if password is None:
            sysmeta.pop(KEY, None)
        else:
            sysmeta[KEY] = password
        s.execute(m.instance.update().where(m.instance.c.uuid == instance_uuid).values(
            system_metadata=sysmeta, updated_at=utcnow()))

    db.transaction(txn)


def post_from_guest(db, instance_uuid: str, body: bytes) -> None:
    if len(body) > MAX_SIZE:
        raise errors.BadRequest("Request is too large.")
    try:
        password = body.decode()
    except UnicodeDecodeError:
        raise errors.BadRequest("The password must be text (base64).") from None
    _change(db, instance_uuid, password, only_if_unset=True)


def register(api, helpers) -> None:
    policy = helpers.policy

    @api.route("/v2.1/servers/{server_id}/os-server-password", "GET")
    def server_password_show(req):
        inst = helpers.instance(req)
        policy.enforce(req.context, "os_compute_api:os-server-password:show",
                       {"project_id": inst["project_id"]})
        return {"password": read(inst)}

    @api.route("/v2.1/servers/{server_id}/os-server-password", "DELETE", status=204)
    def server_password_clear(req):
        inst = helpers.instance(req)
        policy.enforce(req.context, "os_compute_api:os-server-password:clear",
                       {"project_id": inst["project_id"]})
        _change(helpers.db, inst["uuid"], None, only_if_unset=False)
