"""Identity's business rules: users, groups, domains, projects, roles,
assignments and the catalog, over the configured drivers."""

from __future__ import annotations

import hmac
import threading
import uuid
from collections.abc import Iterable

from pocketstack.common import errors
from pocketstack.common.db import utcnow
from pocketstack.identity import backends, models
from pocketstack.identity.passwords import check_password, hash_password

GLOBAL = models.GLOBAL
SYSTEM_TARGET = "system"

# Columns a client may set; anything else it sends goes to ``extra``.
ATTRIBUTES = {
    "user": {"name", "domain_id", "enabled", "default_project_id", "description", "options"},
    "group": {"name", "domain_id", "description"},
    "domain": {"name", "enabled", "description"},
    "project": {"name", "domain_id", "parent_id", "enabled", "description", "tags", "options"},
    "role": {"name", "domain_id", "description", "options"},
    "region": {"id", "description", "parent_region_id"},
    "service": {"type", "name", "description", "enabled"},
    "endpoint": {"service_id", "interface", "url", "region_id", "enabled"},
    "credential": {"user_id", "project_id", "type", "blob"},
}
NOT_FOUND_NAMES = {"user": "user", "group": "group", "domain": "domain", "project": "project",
                   "role": "role", "region": "region", "service": "service",
                   "endpoint": "endpoint", "credential": "credential",
                   "application_credential": "application credential"}


def new_id() -> str:
    return uuid.uuid4().hex


def split_extra(kind: str, body: dict) -> tuple[dict, dict]:
    known = ATTRIBUTES[kind]
    columns = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known and k not in ("id", "links")}
    return columns, extra


class IdentityManager:
    """The whole identity data model. Token issue and validation live in auth.py."""

    def __init__(self, conf, database):
        self.conf = conf
        shared = {"database": database}
        self.stores = {area: backends.load(area, getattr(conf, area).driver, conf, shared)
                       for area in ("identity", "resource", "assignment", "catalog")}
        cred_driver = conf.identity.driver if conf.identity.driver == "kvs" else "sql"
        self.stores["credential"] = backends.load("credential", cred_driver, conf, shared)
        # Reads are cached (token validation must not hit the database); one cache
        # per driver instance, dropped per kind on every write.
        ttl = conf.identity.cache_time
        cached: dict[int, backends.CachedStore] = {}
        for area, store in list(self.stores.items()):
            self.stores[area] = cached.setdefault(id(store), backends.CachedStore(
                store, ttl, enabled=store.cacheable))
        self._store_of = {kind: self.stores[area]
                          for area, kinds in backends.AREAS.items() for kind in kinds}
        # Bumped on every change that can alter what a token carries; token caches
        # compare it to drop stale entries.
        self.generation = 0
        self._gen_lock = threading.Lock()
        self._catalogs: dict[tuple, list[dict]] = {}
        self._known_password: tuple[str, str | None, str] | None = None

    def bump(self) -> None:
        with self._gen_lock:
            self.generation += 1

    def store(self, kind: str) -> backends.Store:
        return self._store_of[kind]

    # -- generic helpers ---------------------------------------------------

    def get(self, kind: str, id: str) -> dict:
        row = self.store(kind).get(kind, id) if id else None
        if row is None:
            raise errors.NotFound(f"Could not find {NOT_FOUND_NAMES[kind]}: {id}.")
        return row

    def find(self, kind: str, id: str) -> dict | None:
        return self.store(kind).get(kind, id) if id else None

    def list(self, kind: str, filters: dict | None = None) -> list[dict]:
        return self.store(kind).list(kind, filters)

    def _writable(self, kind: str) -> backends.Store:
        store = self.store(kind)
        if store.read_only:
            raise errors.NotImplementedYet(f"The {kind} backend is read-only.")
        return store

    def _create(self, kind: str, body: dict, **fixed) -> dict:
        columns, extra = split_extra(kind, body)
        row = {"id": body.get("id") or new_id(), **columns, **fixed, "extra": extra}
        return self._writable(kind).create(kind, row)

    def _update(self, kind: str, id: str, body: dict) -> dict:
        current = self.get(kind, id)
        columns, extra = split_extra(kind, body)
        changes = dict(columns)
        if extra:
            changes["extra"] = {**current.get("extra", {}), **extra}
        if not changes:
            return current
        updated = self._writable(kind).update(kind, id, changes)
        self.bump()
        return updated

    # -- domains -----------------------------------------------------------

    def create_domain(self, body: dict) -> dict:
        return self._create("domain", body)

    def update_domain(self, id: str, body: dict) -> dict:
        row = self._update("domain", id, body)
        if body.get("enabled") is False:
            self.revoke(domain_id=id)
        return row

    def delete_domain(self, id: str) -> None:
        domain = self.get("domain", id)
        if domain["enabled"]:
            raise errors.Forbidden("Cannot delete a domain that is enabled, please disable it "
                                   "first.")
        if id == self.conf.identity.default_domain_id:
            raise errors.Forbidden("Cannot delete the default domain.")
        for project in self.list("project", {"domain_id": id}):
            self._delete_project_row(project["id"])
        for user in self.list("user", {"domain_id": id}):
            self.delete_user(user["id"])
        for group in self.list("group", {"domain_id": id}):
            self.delete_group(group["id"])
        for role in self.list("role", {"domain_id": id}):
            self.delete_role(role["id"])
        self.store("assignment").delete("assignment", {"target_id": id})
        self.store("domain").delete("domain", {"id": id})
        self.revoke(domain_id=id)

    def domain_by_name(self, name: str) -> dict:
        found = self.list("domain", {"name": name})
        if not found:
            raise errors.NotFound(f"Could not find domain: {name}.")
        return found[0]

    # -- projects ----------------------------------------------------------

    def create_project(self, body: dict) -> dict:
        body = dict(body)
        parent_id = body.get("parent_id")
        if parent_id:
            parent = self.get("project", parent_id)
            domain_id = body.setdefault("domain_id", parent["domain_id"])
            if domain_id != parent["domain_id"]:
                raise errors.BadRequest("Cannot create project, the parent "
                                        f"({parent_id}) belongs to a different domain.")
        else:
            body.setdefault("domain_id", self.conf.identity.default_domain_id)
        self.get("domain", body["domain_id"])
        body["tags"] = _unique_tags(body.get("tags", []))
        return self._create("project", body)

    def update_project(self, id: str, body: dict) -> dict:
        current = self.get("project", id)
        if "domain_id" in body and body["domain_id"] != current["domain_id"]:
            raise errors.BadRequest("Update of `domain_id` is not allowed.")
        if "parent_id" in body and body["parent_id"] != current["parent_id"]:
            raise errors.BadRequest("Update of `parent_id` is not allowed.")
        if "tags" in body:
            body = {**body, "tags": _unique_tags(body["tags"])}
        row = self._update("project", id, body)
        if body.get("enabled") is False:
            self.revoke(project_id=id)
        return row

    def delete_project(self, id: str) -> None:
        self.get("project", id)
        if self.list("project", {"parent_id": id}):
            raise errors.Forbidden(f"Cannot delete project {id}: it has child projects; "
                                   "delete them first.")
        self._delete_project_row(id)

    def _delete_project_row(self, id: str) -> None:
        self.store("assignment").delete("assignment", {"target_id": id})
        self.store("project").delete("project", {"id": id})
        self.revoke(project_id=id)

    def project_by_name(self, name: str, domain_id: str) -> dict:
        found = self.list("project", {"name": name, "domain_id": domain_id})
        if not found:
            raise errors.NotFound(f"Could not find project: {name}.")
        return found[0]

    def ancestors(self, project: dict) -> list[dict]:
        chain = []
        seen = {project["id"]}
        parent_id = project.get("parent_id")
        while parent_id and parent_id not in seen:
            seen.add(parent_id)
            parent = self.find("project", parent_id)
            if parent is None:
                break
            chain.append(parent)
            parent_id = parent.get("parent_id")
        return chain

    def subtree(self, project_id: str) -> list[dict]:
        result, frontier = [], [project_id]
        while frontier:
            children = self.list("project", {"parent_id": frontier})
            result.extend(children)
            frontier = [c["id"] for c in children]
        return result

    def set_project_tags(self, id: str, tags: list[str]) -> dict:
        return self._update("project", id, {"tags": tags})

    # -- users and groups --------------------------------------------------

    def create_user(self, body: dict, *, password_hash: str | None = None) -> dict:
        """``password_hash``: the bcrypt hash of ``body["password"]`` if already known."""
        body = dict(body)
        password = body.pop("password", None)
        body.setdefault("domain_id", self.conf.identity.default_domain_id)
        body.setdefault("enabled", True)
        self.get("domain", body["domain_id"])
        if body.get("default_project_id"):
            self.get("project", body["default_project_id"])
        fixed = {"created_at": utcnow()}
        if password is not None and password_hash is not None:
            fixed.update(password_hash=password_hash, password_created_at=utcnow())
        elif password is not None:
            fixed.update(self._password_columns(password))
        return self._create("user", body, **fixed)

    def _password_columns(self, password: str) -> dict:
        if len(password) > self.conf.identity.max_password_length:
            raise errors.BadRequest("Password is too long.")
        return {"password_hash": hash_password(password, self.conf.identity.password_hash_rounds),
                "password_created_at": utcnow()}

    def update_user(self, id: str, body: dict) -> dict:
        body = dict(body)
        current = self.get("user", id)
        if "domain_id" in body and body["domain_id"] != current["domain_id"]:
            raise errors.BadRequest("Update of `domain_id` is not allowed.")
        password = body.pop("password", None)
        row = self._update("user", id, body)
        if password is not None:
            row = self._writable("user").update("user", id, self._password_columns(password))
            self.revoke(user_id=id)
        if body.get("enabled") is False:
            self.revoke(user_id=id)
        return row

    def change_password(self, id: str, original: str, password: str) -> None:
        user = self.get("user", id)
        if not self.check_user_password(user, original):
            raise errors.Unauthorized("The request you have made requires authentication.")
        self._writable("user").update("user", id, self._password_columns(password))
        self.revoke(user_id=id)

    def remember_password(self, user: dict, password: str) -> None:
        """``password`` is known to match ``user``'s stored hash: the bootstrap's admin,
        whose password the cloud holds anyway (configured or generated), and which the
        bootstrap hashed or checked. Checking it against that hash again would spend
        bcrypt time (~0.25 s, e.g. on the first token after `up`) to learn nothing; any
        other password, or a changed hash, still goes through bcrypt."""
        self._known_password = (user["id"], user.get("password_hash"), password)

    def _is_known_password(self, user: dict, password: str) -> bool:
        known = self._known_password
        return (known is not None and known[0] == user["id"] and known[1]
                and known[1] == user.get("password_hash")
                and hmac.compare_digest(known[2].encode(), password.encode()))

    def check_user_password(self, user: dict, password: str) -> bool:
        store = self.store("user")
        verdict = store.authenticate(user, password)
        if verdict is None:
            return (self._is_known_password(user, password)
                    or check_password(password, user.get("password_hash")))
        if verdict and getattr(store, "tenant_per_user", False):
            self.ensure_tenant(user)
        return verdict

    def ensure_tenant(self, user: dict) -> None:
        """One user = one tenant (PAM): a project named as the user, where the user is
        a member (the configured admin user an admin, also of the system)."""
        name = user["name"]
        project = self.find("project", name) or next(iter(
            self.list("project", {"name": name, "domain_id": user["domain_id"]})), None)
        if project is None:
            try:
                project = self.create_project({"id": name, "name": name,
                                               "domain_id": user["domain_id"],
                                               "description": f"Tenant of {name}"})
            except errors.Conflict:
                project = self.find("project", name)
        roles = ["member"]
        if name == self.conf.pam.admin_user:
            roles.insert(0, "admin")
        for role_name in roles:
            role = self.role_by_name(role_name)
            if not self.check_grant(role["id"], user_id=user["id"], project_id=project["id"]):
                self.grant(role["id"], user_id=user["id"], project_id=project["id"])
            if role_name == "admin" and not self.check_grant(role["id"], user_id=user["id"],
                                                             system=True):
                self.grant(role["id"], user_id=user["id"], system=True)

    def delete_user(self, id: str) -> None:
        self.get("user", id)
        self._writable("user")
        self.store("assignment").delete("assignment", {"actor_id": id})
        self.store("membership").delete("membership", {"user_id": id})
        self.store("credential").delete("credential", {"user_id": id})
        self.store("application_credential").delete("application_credential", {"user_id": id})
        self._writable("user").delete("user", {"id": id})
        self.revoke(user_id=id)

    def user_by_name(self, name: str, domain_id: str) -> dict:
        found = self.list("user", {"name": name, "domain_id": domain_id})
        if not found:
            raise errors.NotFound(f"Could not find user: {name}.")
        return found[0]

    def create_group(self, body: dict) -> dict:
        body = dict(body)
        body.setdefault("domain_id", self.conf.identity.default_domain_id)
        self.get("domain", body["domain_id"])
        return self._create("group", body)

    def delete_group(self, id: str) -> None:
        self.get("group", id)
        self._writable("group")
        members = [m["user_id"] for m in self.list("membership", {"group_id": id})]
        self.store("assignment").delete("assignment", {"actor_id": id})
        self.store("membership").delete("membership", {"group_id": id})
        self._writable("group").delete("group", {"id": id})
        for user_id in members:
            self.revoke(user_id=user_id)

    def add_user_to_group(self, user_id: str, group_id: str) -> None:
        self.get("user", user_id)
        self.get("group", group_id)
        if not self.list("membership", {"user_id": user_id, "group_id": group_id}):
            self._writable("membership").create("membership",
                                                {"user_id": user_id, "group_id": group_id})
        self.bump()

    def remove_user_from_group(self, user_id: str, group_id: str) -> None:
        self.get("user", user_id)
        self.get("group", group_id)
        if not self.store("membership").delete("membership",
                                               {"user_id": user_id, "group_id": group_id}):
            raise errors.NotFound(f"{user_id} is not a member of group {group_id}.")
        self.revoke(user_id=user_id)

    def group_ids(self, user_id: str) -> list[str]:
        return [m["group_id"] for m in self.list("membership", {"user_id": user_id})]

    # -- roles -------------------------------------------------------------

    def create_role(self, body: dict) -> dict:
        body = dict(body)
        if body.get("domain_id"):
            self.get("domain", body["domain_id"])
        else:
            body["domain_id"] = GLOBAL
        return self._create("role", body)

    def delete_role(self, id: str) -> None:
        self.get("role", id)
        self.store("assignment").delete("assignment", {"role_id": id})
        self.store("implied_role").delete("implied_role", {"prior_role_id": id})
        self.store("implied_role").delete("implied_role", {"implied_role_id": id})
        self.store("role").delete("role", {"id": id})
        self.revoke(role_id=id)

    def role_by_name(self, name: str, domain_id: str | None = None) -> dict:
        found = self.list("role", {"name": name, "domain_id": domain_id or GLOBAL})
        if not found:
            raise errors.NotFound(f"Could not find role: {name}.")
        return found[0]

    def create_implied_role(self, prior_id: str, implied_id: str) -> None:
        prior, implied = self.get("role", prior_id), self.get("role", implied_id)
        if prior_id == implied_id or prior_id in self._implied_closure([implied_id]):
            raise errors.Forbidden("Creating this implied role would make a loop.")
        if not self.list("implied_role", {"prior_role_id": prior_id,
                                          "implied_role_id": implied_id}):
            self.store("implied_role").create("implied_role", {"prior_role_id": prior["id"],
                                                               "implied_role_id": implied["id"]})
        self.bump()

    def delete_implied_role(self, prior_id: str, implied_id: str) -> None:
        if not self.store("implied_role").delete("implied_role", {
                "prior_role_id": prior_id, "implied_role_id": implied_id}):
            raise errors.NotFound(f"{prior_id} does not imply {implied_id}.")
        self.bump()

    def _implied_closure(self, role_ids: Iterable[str]) -> set[str]:
        result = set(role_ids)
        frontier = list(result)
        while frontier:
            rows = self.list("implied_role", {"prior_role_id": frontier})
            frontier = [r["implied_role_id"] for r in rows if r["implied_role_id"] not in result]
            result.update(frontier)
        return result

    # -- assignments -------------------------------------------------------

    def grant(self, role_id: str, *, user_id=None, group_id=None, project_id=None,
              domain_id=None, system=False, inherited=False) -> None:
        row = self._assignment_row(role_id, user_id, group_id, project_id, domain_id, system,
                                   inherited)
        if not self.list("assignment", row):
            self.store("assignment").create("assignment", row)
        self.bump()

    def revoke_grant(self, role_id: str, *, user_id=None, group_id=None, project_id=None,
                     domain_id=None, system=False, inherited=False) -> None:
        row = self._assignment_row(role_id, user_id, group_id, project_id, domain_id, system,
                                   inherited)
        if not self.store("assignment").delete("assignment", row):
            raise errors.NotFound(f"Could not find role assignment with role: {role_id}, "
                                  f"{'user' if user_id else 'group'}: {user_id or group_id}, "
                                  f"{'project' if project_id else 'domain'}: "
                                  f"{project_id or domain_id or 'system'}.")
        users = [user_id] if user_id else [
            m["user_id"] for m in self.list("membership", {"group_id": group_id})]
        for uid in users:
            self.revoke(user_id=uid, project_id=project_id, domain_id=domain_id)

    def check_grant(self, role_id: str, **kw) -> bool:
        return bool(self.list("assignment", self._assignment_row(role_id, kw.get("user_id"),
                              kw.get("group_id"), kw.get("project_id"), kw.get("domain_id"),
                              kw.get("system", False), kw.get("inherited", False))))

    def _assignment_row(self, role_id, user_id, group_id, project_id, domain_id, system,
                        inherited) -> dict:
        role = self.get("role", role_id)
        if user_id:
            self.get("user", user_id)
        if group_id:
            self.get("group", group_id)
        actor = "User" if user_id else "Group"
        if project_id:
            project = self.get("project", project_id)
            target, kind = project_id, "Project"
            if role["domain_id"] not in (GLOBAL, project["domain_id"]):
                raise errors.Forbidden("Cannot grant a domain-specific role outside its domain.")
        elif domain_id:
            self.get("domain", domain_id)
            target, kind = domain_id, "Domain"
        elif system:
            target, kind = SYSTEM_TARGET, "System"
        else:
            raise errors.BadRequest("A role assignment needs a project, domain or system.")
        return {"type": actor + kind, "actor_id": user_id or group_id, "target_id": target,
                "role_id": role_id, "inherited": bool(inherited)}

    def role_ids_for(self, user_id: str, *, project_id: str | None = None,
                     domain_id: str | None = None, system: bool = False) -> set[str]:
        """The effective role ids of a user on a scope (groups, inheritance, implied roles)."""
        actors = [user_id, *self.group_ids(user_id)]
        direct: set[str] = set()
        if project_id:
            project = self.find("project", project_id)
            if project is None:
                return set()
            rows = self.list("assignment", {"actor_id": actors, "target_id": project_id,
                                            "inherited": False})
            ancestors = [p["id"] for p in self.ancestors(project)]
            rows += self.list("assignment", {"actor_id": actors, "inherited": True,
                                             "target_id": [project["domain_id"], *ancestors]})
        elif domain_id:
            rows = self.list("assignment", {"actor_id": actors, "target_id": domain_id,
                                            "inherited": False})
            rows = [r for r in rows if r["type"].endswith("Domain")]
        elif system:
            rows = self.list("assignment", {"actor_id": actors, "target_id": SYSTEM_TARGET})
        else:
            return set()
        direct = {r["role_id"] for r in rows}
        return self._implied_closure(direct) if direct else direct

    def roles_for(self, user_id: str, **scope) -> list[dict]:
        ids = self.role_ids_for(user_id, **scope)
        return self.list("role", {"id": list(ids)}) if ids else []

    def projects_for_user(self, user_id: str) -> list[dict]:
        actors = [user_id, *self.group_ids(user_id)]
        rows = self.list("assignment", {"actor_id": actors})
        ids = {r["target_id"] for r in rows if r["type"].endswith("Project")}
        domain_ids = {r["target_id"] for r in rows if r["type"].endswith("Domain") and r["inherited"]}
        projects = self.list("project", {"id": list(ids)}) if ids else []
        inherited_parents = {r["target_id"] for r in rows
                             if r["type"].endswith("Project") and r["inherited"]}
        for parent in inherited_parents:
            projects += self.subtree(parent)
        if domain_ids:
            projects += self.list("project", {"domain_id": list(domain_ids)})
        unique = {p["id"]: p for p in projects}
        return [p for p in unique.values() if p["enabled"]]

    def domains_for_user(self, user_id: str) -> list[dict]:
        actors = [user_id, *self.group_ids(user_id)]
        rows = self.list("assignment", {"actor_id": actors, "inherited": False})
        ids = {r["target_id"] for r in rows if r["type"].endswith("Domain")}
        return [d for d in self.list("domain", {"id": list(ids)}) if d["enabled"]] if ids else []

    # -- catalog -----------------------------------------------------------

    def create_region(self, body: dict) -> dict:
        if body.get("parent_region_id"):
            self.get("region", body["parent_region_id"])
        row = self._create("region", body)
        self.bump()
        return row

    def create_service(self, body: dict) -> dict:
        body = {"enabled": True, **body}
        row = self._create("service", body)
        self.bump()
        return row

    def create_endpoint(self, body: dict) -> dict:
        self.get("service", body.get("service_id"))
        if body.get("region_id") and self.find("region", body["region_id"]) is None:
            self._create("region", {"id": body["region_id"]})
        row = self._create("endpoint", {"enabled": True, **body})
        self.bump()
        return row

    def delete(self, kind: str, id: str) -> None:
        self.get(kind, id)
        if kind == "service":
            self.store("endpoint").delete("endpoint", {"service_id": id})
        if kind == "region":
            if self.list("region", {"parent_region_id": id}):
                raise errors.Forbidden("Cannot delete a region that has child regions.")
        self._writable(kind).delete(kind, {"id": id})
        self.bump()

    def update(self, kind: str, id: str, body: dict) -> dict:
        return self._update(kind, id, body)

    def catalog(self, project_id: str | None = None) -> list[dict]:
        """The service catalog as tokens carry it (treat the result as read-only)."""
        key = (project_id, self.store("service").version("service"),
               self.store("endpoint").version("endpoint"))
        if None in key[1:]:
            return self._catalog(project_id)
        found = self._catalogs.get(key)
        if found is None:
            found = self._catalog(project_id)
            if len(self._catalogs) >= 1000:
                self._catalogs.clear()
            self._catalogs[key] = found
        return found

    def _catalog(self, project_id: str | None) -> list[dict]:
        services = [s for s in self.list("service") if s["enabled"]]
        endpoints = [e for e in self.list("endpoint") if e["enabled"]]
        substitutions = {"project_id": project_id or "", "tenant_id": project_id or ""}
        result = []
        for svc in services:
            eps = []
            for ep in endpoints:
                if ep["service_id"] != svc["id"]:
                    continue
                url = substitute(ep["url"], substitutions)
                if url is None:
                    continue
                eps.append({"id": ep["id"], "interface": ep["interface"],
                            "region": ep["region_id"], "region_id": ep["region_id"], "url": url})
            result.append({"id": svc["id"], "type": svc["type"], "name": svc["name"] or "",
                           "endpoints": eps})
        return result

    # -- revocation --------------------------------------------------------

    def revoke(self, **match) -> None:
        """Record that tokens matching ``match`` issued until now are invalid."""
        event = {k: v for k, v in match.items() if v is not None}
        now = utcnow()
        row = {"id": new_id(), **event, "issued_before": now, "revoked_at": now}
        self.store("revocation_event").create("revocation_event", row)
        self.bump()


def substitute(url: str, values: dict) -> str | None:
    """Fill $(project_id)s / %(tenant_id)s; None if a needed value is missing."""
    for key, value in values.items():
        for pattern in (f"$({key})s", f"%({key})s"):
            if pattern in url:
                if not value:
                    return None
                url = url.replace(pattern, value)
    return url


def _unique_tags(tags: list[str]) -> list[str]:
    seen = []
    for tag in tags:
        if tag not in seen:
            seen.append(tag)
    return seen
