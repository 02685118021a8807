"""Quota classes (``os-quota-class-sets``, admin): named sets of limits. As in Nova,
only the ``default`` class is used: it supplies every project's defaults (a
project's own quotas still win), over the ``[quota]`` options."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from pocketstack.common import errors
from pocketstack.common.http import Request
from pocketstack.common.validation import validate
from pocketstack.compute import models as m

DEFAULT_CLASS = "default"
# Nova's names in the API -> ours (the [quota] options)
API_NAMES = {"injected_file_path_bytes": "injected_file_path_length"}
LEGACY = {"floating_ips": 10, "fixed_ips": -1, "security_groups": 10,
          "security_group_rules": 20}
Q = m.quota_class
QUOTA_RESOURCES = ("instances", "cores", "ram", "metadata_items", "key_pairs", "server_groups",
                   "server_group_members", "injected_files", "injected_file_content_bytes",
                   "injected_file_path_length")


def shown(version: tuple[int, int]) -> list[str]:
    """The resources a quota class set has at a microversion (API names)."""
    names = ["instances", "cores", "ram", "metadata_items", "key_pairs"]
    if version < (2, 57):
        names += ["injected_files", "injected_file_content_bytes", "injected_file_path_bytes"]
    if version < (2, 50):
        names += list(LEGACY)
    else:
        names += ["server_groups", "server_group_members"]
    return names


class QuotaClasses:
    """The classes' limits, with the default class cached in this process (it is
    read at every quota check): writes through this object refresh it at once, writes
    by another API process are seen within ``CACHE_SECONDS``."""

    CACHE_SECONDS = 5.0

    def __init__(self, db, conf):
        self.db = db
        self.conf = conf
        self._default: dict[str, int] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def get(self, class_name: str) -> dict[str, int]:
        with self.db.reader() as s:
            return dict(s.execute(sa.select(Q.c.resource, Q.c.hard_limit).where(
                Q.c.class_name == class_name)).all())

    def defaults(self) -> dict[str, int]:
        """Project defaults: ``[quota]`` options overridden by the default class."""
        cached = self._default
        if cached is None or time.monotonic() - self._read_at > self.CACHE_SECONDS:
            read_at = time.monotonic()
            cached = {r: getattr(self.conf.quota, r) for r in QUOTA_RESOURCES}
            cached.update(self.get(DEFAULT_CLASS))
            with self._lock:
                self._default, self._read_at = cached, read_at
        return dict(cached)

    def update(self, class_name: str, values: dict[str, int]) -> None:
        def txn(s):
            for resource, limit in values.items():
                if not s.execute(Q.update().where(
                        Q.c.class_name == class_name, Q.c.resource == resource).values(
                        hard_limit=limit)).rowcount:
                    s.execute(Q.insert().values(class_name=class_name, resource=resource,
                                                hard_limit=limit))

        self.db.transaction(txn)
        with self._lock:
            self._default = None

    def view(self, class_name: str, version: tuple[int, int]) -> dict[str, int]:
        stored = self.get(class_name)
        defaults = self.defaults()
        out = {}
        for name in shown(version):
            ours = API_NAMES.get(name, name)
            out[name] = stored.get(ours, defaults.get(ours, LEGACY.get(name, -1)))
        return out


UPDATE_SCHEMA = {
    "type": "object",
    "properties": {"quota_class_set": {
        "type": "object",
        "patternProperties": {r"^[a-z_]+$": {"type": ["integer", "string"]}},
        "additionalProperties": False}},
    "required": ["quota_class_set"], "additionalProperties": False,
}


def register(api, service) -> None:
    classes = service.conductor.quota_classes
    policy = service.policy

    @api.route("/v2.1/os-quota-class-sets/{class_name}", "GET")
    def quota_class_show(req: Request):
        policy.enforce(req.context, "os_compute_api:os-quota-class-sets:show")
        name = req.path_params["class_name"]
        return {"quota_class_set": {"id": name, **classes.view(name, req.state["version"])}}

    @api.route("/v2.1/os-quota-class-sets/{class_name}", "PUT")
    def quota_class_update(req: Request):
        from pocketstack.compute.api_resources import _int

        policy.enforce(req.context, "os_compute_api:os-quota-class-sets:update")
        name = req.path_params["class_name"]
        if not 1 <= len(name) <= 255:
            raise errors.BadRequest("quota_class_name has a length between 1 and 255.")
        version = req.state["version"]
        body = validate(UPDATE_SCHEMA, req.json())["quota_class_set"]
        allowed = shown(version)
        values = {}
        for key, value in body.items():
            if key not in allowed:
                raise errors.BadRequest(f"Bad key(s) {key} in quota_class_set")
            values[API_NAMES.get(key, key)] = _int(value, key, -1)
        classes.update(name, values)
        return {"quota_class_set": classes.view(name, version)}
