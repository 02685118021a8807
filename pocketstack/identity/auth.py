"""Authentication: turn credentials into tokens and tokens back into who and what."""

from __future__ import annotations

import datetime
import threading
import time

from pocketstack.common import errors
from pocketstack.common.context import RequestContext
from pocketstack.common.db import isotime, utcnow
from pocketstack.identity import core, passwords
from pocketstack.identity.tokens import Payload, TokenFormatter, new_audit_id

AUTH_FAILED = "The request you have made requires authentication."


def _ts(value: float) -> str:
    return isotime(datetime.datetime.fromtimestamp(value, datetime.UTC), micro=True)


class Authenticator:
    def __init__(self, conf, identity: core.IdentityManager, formatter: TokenFormatter):
        self.conf = conf
        self.identity = identity
        self.formatter = formatter
        self._events: list[dict] = []
        self._events_generation = -1
        self._lock = threading.Lock()

    # -- issuing -----------------------------------------------------------

    def issue(self, auth: dict) -> tuple[str, Payload, RequestContext]:
        """Authenticate the ``auth`` body of POST /v3/auth/tokens."""
        identity = auth["identity"]
        methods = identity["methods"]
        if not methods:
            raise errors.BadRequest("At least one authentication method is required.")
        now = time.time()
        expires = now + self.conf.token.expiration
        audit_ids = [new_audit_id()]
        app_cred = None
        parent: Payload | None = None
        if "password" in methods:
            user = self._password_user(identity.get("password") or {})
        elif "token" in methods:
            parent = self._parent_token(identity.get("token") or {})
            user = self.identity.get("user", parent.user_id)
            expires = parent.expires_at
            audit_ids.append(parent.audit_ids[0])
        elif "application_credential" in methods:
            app_cred, user = self._application_credential(
                identity.get("application_credential") or {})
            if app_cred.get("expires_at") is not None:
                expires = min(expires, app_cred["expires_at"].timestamp())
        else:
            raise errors.Unauthorized(AUTH_FAILED)
        self._check_user_enabled(user)
        payload = Payload(user_id=user["id"], methods=list(methods), expires_at=expires,
                          issued_at=now, audit_ids=audit_ids)
        scope = auth.get("scope")
        if app_cred is not None:
            if scope and scope != "unscoped" and "project" not in scope:
                raise errors.Unauthorized("Application credentials cannot request a scope.")
            payload.project_id = app_cred["project_id"]
            payload.application_credential_id = app_cred["id"]
        elif parent is not None and (parent.project_id or parent.domain_id or parent.system):
            if not self.conf.token.allow_rescope_scoped_token and scope:
                raise errors.Forbidden("Rescoping a scoped token is not allowed.")
            if not scope:
                payload.project_id, payload.domain_id, payload.system = (
                    parent.project_id, parent.domain_id, parent.system)
        if app_cred is None:
            self._apply_scope(payload, user, scope)
        ctx = self.context_for(payload)  # proves the scope (roles, enabled) before issuing
        token = self.formatter.encode(payload)
        ctx.auth_token = token
        return token, payload, ctx

    def _password_user(self, password: dict) -> dict:
        spec = password.get("user") or {}
        secret = spec.get("password")
        if not isinstance(secret, str):
            raise errors.BadRequest("Invalid input for field 'identity/password/user/password': "
                                    "a password is required.")
        user = self._find_user(spec)
        if user is None:
            # Spend the same bcrypt time as for a real user: the answer's timing must
            # not tell which user names exist.
            core.backends.may_block()
            passwords.check_password(secret, self._dummy_hash())
            raise errors.Unauthorized(AUTH_FAILED)
        if not self.identity.check_user_password(user, secret):
            raise errors.Unauthorized(AUTH_FAILED)
        return user

    _dummy: str | None = None

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = passwords.hash_password(new_audit_id(),
                                             self.conf.identity.password_hash_rounds)
        return self._dummy

    def _find_user(self, spec: dict) -> dict | None:
        if spec.get("id"):
            return self.identity.find("user", spec["id"])
        name = spec.get("name")
        domain = spec.get("domain") or {}
        if not name or not (domain.get("id") or domain.get("name")):
            raise errors.BadRequest("Expecting to find domain in user. The server could not "
                                    "comply with the request since it is either malformed or "
                                    "otherwise incorrect.")
        domain_id = domain.get("id") or next(
            (d["id"] for d in self.identity.list("domain", {"name": domain["name"]})), None)
        found = self.identity.list("user", {"name": name, "domain_id": domain_id})
        return found[0] if found else None

    def _parent_token(self, token: dict) -> Payload:
        payload = self.formatter.decode(token.get("id", ""))
        if payload is None or self._invalid(payload):
            raise errors.Unauthorized(AUTH_FAILED)
        if payload.application_credential_id:
            raise errors.Forbidden("A token created with an application credential cannot be "
                                   "rescoped.")
        return payload

    def _application_credential(self, spec: dict) -> tuple[dict, dict]:
        secret = spec.get("secret")
        if not isinstance(secret, str):
            raise errors.BadRequest("An application credential secret is required.")
        if spec.get("id"):
            cred = self.identity.find("application_credential", spec["id"])
        else:
            user = self._find_user(spec.get("user") or {})
            found = self.identity.list("application_credential",
                                       {"name": spec.get("name"), "user_id": user["id"]}
                                       ) if user else []
            cred = found[0] if found else None
        if cred is None or not passwords.check_password(secret, cred["secret_hash"]):
            raise errors.Unauthorized(AUTH_FAILED)
        if cred.get("expires_at") and cred["expires_at"] <= utcnow():
            raise errors.Unauthorized(AUTH_FAILED)
        return cred, self.identity.get("user", cred["user_id"])

    def _check_user_enabled(self, user: dict) -> None:
        domain = self.identity.find("domain", user["domain_id"])
        if not user["enabled"] or domain is None or not domain["enabled"]:
            raise errors.Unauthorized(AUTH_FAILED)

    def _apply_scope(self, payload: Payload, user: dict, scope) -> None:
        if scope is None:
            default = user.get("default_project_id")
            if default and self.identity.role_ids_for(user["id"], project_id=default):
                payload.project_id = default
            return
        if scope == "unscoped":
            payload.project_id = payload.domain_id = payload.system = None
            return
        if not isinstance(scope, dict):
            raise errors.BadRequest("Invalid scope.")
        payload.project_id = payload.domain_id = payload.system = None
        if "project" in scope:
            spec = scope["project"] or {}
            if spec.get("id"):
                payload.project_id = spec["id"]
            else:
                domain = spec.get("domain") or {}
                domain_id = domain.get("id") or self._domain_id_by_name(domain.get("name"))
                found = self.identity.list("project", {"name": spec.get("name"),
                                                       "domain_id": domain_id})
                if not found:
                    raise errors.Unauthorized(AUTH_FAILED)
                payload.project_id = found[0]["id"]
        elif "domain" in scope:
            spec = scope["domain"] or {}
            payload.domain_id = spec.get("id") or self._domain_id_by_name(spec.get("name"))
        elif "system" in scope:
            if not (scope["system"] or {}).get("all"):
                raise errors.BadRequest("Only the 'all' system scope exists.")
            payload.system = "all"
        else:
            raise errors.BadRequest("Invalid scope: expected project, domain or system.")

    def _domain_id_by_name(self, name):
        found = self.identity.list("domain", {"name": name}) if name else []
        if not found:
            raise errors.Unauthorized(AUTH_FAILED)
        return found[0]["id"]

    # -- validating --------------------------------------------------------

    def decode(self, token: str) -> Payload:
        payload = self.formatter.decode(token)
        if payload is None or self._invalid(payload):
            raise errors.Unauthorized(AUTH_FAILED)
        return payload

    def _invalid(self, payload: Payload) -> bool:
        if payload.expires_at <= time.time():
            return True
        return self._revoked(payload)

    def _revoked(self, p: Payload) -> bool:
        for event in self._current_events():
            if p.issued_at > event["issued_before"]:
                continue
            if event.get("audit_id") and event["audit_id"] not in p.audit_ids:
                continue
            if event.get("user_id") and event["user_id"] != p.user_id:
                continue
            if event.get("project_id") and event["project_id"] != p.project_id:
                continue
            if event.get("domain_id") and event["domain_id"] not in (
                    p.domain_id, self._user_domain(p.user_id), self._project_domain(p.project_id)):
                continue
            if event.get("role_id"):
                continue  # a deleted role simply drops out of the roles computed below
            return True
        return False

    def _user_domain(self, user_id):
        user = self.identity.find("user", user_id)
        return user and user["domain_id"]

    def _project_domain(self, project_id):
        project = self.identity.find("project", project_id) if project_id else None
        return project and project["domain_id"]

    def _current_events(self) -> list[dict]:
        # The store's version also moves when its cache expires, so revocations made
        # by another process sharing the database are picked up.
        store = self.identity.store("revocation_event")
        generation = (self.identity.generation, store.version("revocation_event"))
        if generation != self._events_generation:
            with self._lock:
                horizon = time.time() - self.conf.token.expiration - 60
                events = []
                for row in self.identity.list("revocation_event"):
                    issued = row["issued_before"].timestamp()
                    if issued < horizon:
                        continue
                    events.append({**row, "issued_before": issued})
                self._events = events
                self._events_generation = generation
        return self._events

    def revoke_token(self, payload: Payload) -> None:
        self.identity.revoke(audit_id=payload.audit_ids[0])

    def context_for(self, payload: Payload, token: str | None = None) -> RequestContext:
        """Resolve a payload into a context; 401 if its user or scope no longer holds."""
        ident = self.identity
        user = ident.find("user", payload.user_id)
        if user is None:
            raise errors.Unauthorized(AUTH_FAILED)
        self._check_user_enabled(user)
        user_domain = ident.get("domain", user["domain_id"])
        ctx = RequestContext(user_id=user["id"], user_name=user["name"],
                             user_domain_id=user_domain["id"], user_domain_name=user_domain["name"],
                             auth_token=token, audit_id=payload.audit_ids[0],
                             expires_at=_ts(payload.expires_at), methods=payload.methods,
                             application_credential_id=payload.application_credential_id)
        role_ids: set[str] = set()
        if payload.project_id:
            project = ident.find("project", payload.project_id)
            domain = project and ident.find("domain", project["domain_id"])
            if not project or not project["enabled"] or not domain or not domain["enabled"]:
                raise errors.Unauthorized(AUTH_FAILED)
            role_ids = ident.role_ids_for(user["id"], project_id=project["id"])
            ctx.project_id, ctx.project_name = project["id"], project["name"]
            ctx.project_domain_id, ctx.project_domain_name = domain["id"], domain["name"]
        elif payload.domain_id:
            domain = ident.find("domain", payload.domain_id)
            if not domain or not domain["enabled"]:
                raise errors.Unauthorized(AUTH_FAILED)
            role_ids = ident.role_ids_for(user["id"], domain_id=domain["id"])
            ctx.domain_id, ctx.domain_name = domain["id"], domain["name"]
        elif payload.system:
            role_ids = ident.role_ids_for(user["id"], system=True)
            ctx.system_scope = payload.system
        if payload.application_credential_id:
            cred = ident.find("application_credential", payload.application_credential_id)
            if cred is None:
                raise errors.Unauthorized(AUTH_FAILED)
            role_ids &= {r["id"] for r in cred["roles"]}
        scoped = payload.project_id or payload.domain_id or payload.system
        if scoped and not role_ids:
            raise errors.Unauthorized(AUTH_FAILED)
        roles = ident.list("role", {"id": list(role_ids)}) if role_ids else []
        ctx.roles = sorted(r["name"] for r in roles)
        ctx.role_refs = [{"id": r["id"], "name": r["name"]} for r in roles]
        return ctx

    def token_body(self, payload: Payload, ctx: RequestContext, *, catalog: bool) -> dict:
        token = {
            "methods": payload.methods,
            "user": {"id": ctx.user_id, "name": ctx.user_name,
                     "domain": {"id": ctx.user_domain_id, "name": ctx.user_domain_name},
                     "password_expires_at": None},
            "audit_ids": payload.audit_ids,
            "expires_at": _ts(payload.expires_at),
            "issued_at": _ts(payload.issued_at),
        }
        if ctx.project_id:
            token["project"] = {"id": ctx.project_id, "name": ctx.project_name,
                                "domain": {"id": ctx.project_domain_id,
                                           "name": ctx.project_domain_name}}
            token["is_domain"] = False
        elif ctx.domain_id:
            token["domain"] = {"id": ctx.domain_id, "name": ctx.domain_name}
        elif ctx.system_scope:
            token["system"] = {ctx.system_scope: True}
        if ctx.project_id or ctx.domain_id or ctx.system_scope:
            token["roles"] = [dict(r) for r in ctx.role_refs]
            if catalog:
                token["catalog"] = self.identity.catalog(ctx.project_id)
        if payload.application_credential_id:
            cred = self.identity.find("application_credential", payload.application_credential_id)
            token["application_credential"] = {
                "id": cred["id"], "name": cred["name"], "restricted": not cred["unrestricted"]}
        return token
