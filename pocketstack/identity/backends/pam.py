"""PAM driver: the host's system accounts are the users (read-only).

Passwords are checked by PAM (python-pam) with the service ``[pam] service``.
As in Keystone's old PAM backend, a user's id is their login name, and each
user has one tenant: a project of the same name (id = name) in the default
domain, created with a ``member`` grant the first time they log in; the
``[pam] admin_user`` (root) also gets ``admin`` on it and on the system.
Accounts shown are root and the regular ones (uid >= 1000, not nobody).
"""

from __future__ import annotations

import pwd

from pocketstack.identity.backends.base import Store

UID_MIN = 1000
NOBODY = 65534


class PamStore(Store):
    read_only = True
    tenant_per_user = True
    cacheable = False

    def __init__(self, conf):
        self.conf = conf
        self.service = conf.pam.service
        self.admin_user = conf.pam.admin_user
        self.domain_id = conf.identity.default_domain_id

    def _visible(self, entry: pwd.struct_passwd) -> bool:
        return entry.pw_uid == 0 or entry.pw_name == self.admin_user or (
            entry.pw_uid >= UID_MIN and entry.pw_uid != NOBODY)

    def _user(self, entry: pwd.struct_passwd) -> dict:
        name = entry.pw_name
        return {"id": name, "name": name, "domain_id": self.domain_id, "enabled": True,
                "password_hash": None, "password_created_at": None,
                "default_project_id": name, "description": None, "options": {},
                "created_at": None, "extra": {}}

    def _lookup(self, name) -> dict | None:
        if not isinstance(name, str) or not name:
            return None
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return self._user(entry) if self._visible(entry) else None

    def get(self, kind, id):
        return self._lookup(id) if kind == "user" else None

    def list(self, kind, filters=None):
        if kind != "user":
            return []  # no groups or memberships from PAM
        filters = dict(filters or {})
        wanted = filters.get("id", filters.get("name"))
        if isinstance(wanted, str):
            rows = [r for r in [self._lookup(wanted)] if r]
        else:
            rows = [self._user(e) for e in pwd.getpwall() if self._visible(e)]
        return [r for r in rows if _matches(r, filters)]

    def authenticate(self, user: dict, password: str) -> bool:
        import pam

        if not password:
            return False
        return bool(pam.pam().authenticate(user["name"], password, service=self.service))

    def create(self, kind, row):  # pragma: no cover - guarded by read_only
        raise NotImplementedError

    def update(self, kind, id, changes):  # pragma: no cover
        raise NotImplementedError

    def delete(self, kind, filters):
        return 0


def _matches(row: dict, filters: dict) -> bool:
    for key, value in filters.items():
        if isinstance(value, (list, tuple, set, frozenset)):
            if row.get(key) not in value:
                return False
        elif row.get(key) != value:
            return False
    return True


def create(area, conf, shared):
    store = shared.get("pam")
    if store is None:
        store = shared["pam"] = PamStore(conf)
    return store
