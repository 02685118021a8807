"""Templated catalog driver: the catalog comes from a file in Keystone's format.

    catalog.RegionOne.identity.publicURL = http://localhost:$(public_port)s/v3
    catalog.RegionOne.identity.name = Identity Service

``$(option)s`` is filled from the configuration ([DEFAULT] options, plus
``public_port``/``admin_port`` = ``bind_port``, ``public_bind_host`` = ``bind_host``
and ``public_url`` = the cloud's base URL). ``$(project_id)s``/``$(tenant_id)s``
are left for the token's scope. The file is read again when it changes; the
catalog is read-only through the API.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading

from pocketstack import config
from pocketstack.identity.backends.base import Store

INTERFACES = {"publicURL": "public", "internalURL": "internal", "adminURL": "admin"}
SCOPE_KEYS = ("project_id", "tenant_id", "user_id")
_VAR = re.compile(r"\$\((\w+)\)s")


def template_path(conf) -> str:
    path = conf.catalog.template_file
    return path if os.path.isabs(path) else os.path.join(conf.state_path, path)


def substitutions(conf) -> dict[str, str]:
    values = {}
    for name in ("state_path", "host", "bind_host", "bind_port", "public_endpoint",
                 "region_name"):
        value = getattr(conf, name, None)
        if value is not None:
            values[name] = str(value)
    values.update(public_port=str(conf.bind_port), admin_port=str(conf.bind_port),
                  public_bind_host=str(conf.bind_host), admin_bind_host=str(conf.bind_host),
                  public_url=config.public_url(conf))
    return values


def parse(text: str, values: dict[str, str]) -> dict[str, dict[str, dict[str, str]]]:
    """{region: {service_type: {key: value}}} from the template text."""
    catalog: dict[str, dict[str, dict[str, str]]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 4 or parts[0] != "catalog":
            raise ValueError(f"catalog template line {number} is not "
                             f"'catalog.<region>.<service>.<key> = <value>': {raw!r}")
        _, region, service, attr = parts
        region = _VAR.sub(lambda m: values.get(m.group(1), m.group(0)), region)
        value = _VAR.sub(lambda m: m.group(0) if m.group(1) in SCOPE_KEYS
                         else values.get(m.group(1), m.group(0)), value.strip())
        catalog.setdefault(region, {}).setdefault(service, {})[attr] = value
    return catalog


def _id(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


class TemplatedStore(Store):
    read_only = True
    cacheable = False

    def __init__(self, conf):
        self.conf = conf
        self.path = template_path(conf)
        self._mtime = None
        self._rows: dict[str, list[dict]] = {"region": [], "service": [], "endpoint": []}
        self._lock = threading.Lock()

    def _load(self) -> dict[str, list[dict]]:
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return {"region": [], "service": [], "endpoint": []}
        if mtime == self._mtime:
            return self._rows
        with self._lock:
            with open(self.path) as f:
                catalog = parse(f.read(), substitutions(self.conf))
            regions, services, endpoints = [], {}, []
            for region, entries in catalog.items():
                regions.append({"id": region, "description": "", "parent_region_id": None,
                                "extra": {}})
                for stype, attrs in entries.items():
                    svc = services.setdefault(stype, {
                        "id": stype, "type": stype, "name": attrs.get("name", stype),
                        "description": attrs.get("description"), "enabled": True,
                        "extra": {}})
                    for key, interface in INTERFACES.items():
                        if key in attrs:
                            endpoints.append({
                                "id": _id(region, stype, interface), "service_id": svc["id"],
                                "interface": interface, "url": attrs[key],
                                "region_id": region, "enabled": True, "extra": {}})
            self._rows = {"region": regions, "service": list(services.values()),
                          "endpoint": endpoints}
            self._mtime = mtime
        return self._rows

    def get(self, kind, id):
        return next((dict(r) for r in self._load()[kind] if r["id"] == id), None)

    def list(self, kind, filters=None):
        rows = self._load()[kind]
        out = []
        for row in rows:
            ok = True
            for key, value in (filters or {}).items():
                if isinstance(value, (list, tuple, set, frozenset)):
                    ok = row.get(key) in value
                else:
                    ok = row.get(key) == value
                if not ok:
                    break
            if ok:
                out.append(dict(row))
        return out

    def create(self, kind, row):  # pragma: no cover - guarded by read_only
        raise NotImplementedError

    def update(self, kind, id, changes):  # pragma: no cover
        raise NotImplementedError

    def delete(self, kind, filters):
        return 0


def default_template(services) -> str:
    """A template listing the cloud's services, written when none exists."""
    lines = ["# Service catalog (Keystone's templated format); $(...)s come from the config.",
             "# Edit freely: pocketstack reads this file again when it changes."]
    for svc in services:
        for key in INTERFACES:
            lines.append(f"catalog.$(region_name)s.{svc.service_type}.{key} = "
                         f"$(public_url)s{svc.prefix}{svc.endpoint_suffix}")
        lines.append(f"catalog.$(region_name)s.{svc.service_type}.name = {svc.catalog_name}")
    return "\n".join(lines) + "\n"


def create(area, conf, shared):
    return TemplatedStore(conf)
