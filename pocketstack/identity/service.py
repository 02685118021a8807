"""The identity service: wiring, bootstrap and its catalog entry."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets

from pocketstack.common import errors
from pocketstack.common.auth import TokenValidator
from pocketstack.common.db import Database
from pocketstack.common.policy import Policy
from pocketstack.common.service import Service
from pocketstack.identity import api, core, models, passwords, policies
from pocketstack.identity.auth import Authenticator
from pocketstack.identity.fernet import KeyRepository
from pocketstack.identity.tokens import TokenFormatter

LOG = logging.getLogger(__name__)

DEFAULT_ROLES = ["admin", "member", "reader", "service"]


class IdentityService(Service):
    name = "identity"
    service_type = "identity"
    catalog_name = "keystone"
    prefix = "/identity"

    def __init__(self, cloud):
        super().__init__(cloud)
        conf = self.conf
        self.db = Database(conf, "identity", models.metadata,
                           migrations="pocketstack.identity:migrations", head=models.SCHEMA_HEAD)
        self.manager = core.IdentityManager(conf, self.db)
        self.keys = KeyRepository(conf.fernet_tokens.key_repository
                                  or os.path.join(conf.state_path, "fernet-keys"),
                                  conf.fernet_tokens.max_active_keys)
        self.authenticator = Authenticator(conf, self.manager, TokenFormatter(self.keys))
        self.policy = Policy(conf, "identity", policies.RULES)
        self.validator = TokenValidator(self._validate, self.generation,
                                        cache_time=conf.token.cache_time,
                                        www_authenticate=self.endpoint_url())
        # On a fresh state directory the admin's password hash (bcrypt, ~0.25 s) is
        # computed in a thread (started by `up` before its imports, else here).
        self._admin_hash = (None if self.manager.store("user").read_only
                            else passwords.take_admin_hash(conf))

    def _admin_password_hash(self, password: str) -> str | None:
        pending = self._admin_hash
        if pending is None or pending.password != password:
            return None
        return pending.result()

    # The bootstrap remembers (salted) which admin password it last set, so that a
    # restart need not check it against the bcrypt hash (~0.25 s of start-up).
    @staticmethod
    def _fingerprint(salt: bytes, password: str, admin: dict) -> str:
        created = str(admin.get("password_created_at"))
        message = "\0".join([admin["id"], admin.get("password_hash") or "", created, password])
        return hmac.new(salt, message.encode(), hashlib.sha256).hexdigest()

    def _fingerprint_matches(self, password: str, admin: dict) -> bool:
        try:
            with open(passwords.fingerprint_path(self.conf)) as f:
                salt_hex, digest = f.read().split()
        except (OSError, ValueError):
            return False
        return hmac.compare_digest(digest, self._fingerprint(bytes.fromhex(salt_hex), password,
                                                             admin))

    def _save_fingerprint(self, password: str, admin: dict) -> None:
        salt = secrets.token_bytes(16)
        path = passwords.fingerprint_path(self.conf)
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{salt.hex()} {self._fingerprint(salt, password, admin)}\n")
        os.replace(path + ".tmp", path)

    def generation(self) -> tuple[int, int]:
        """Changes whenever a validated token may have changed: a revocation, a role or
        catalog change, a key rotation. Token caches compare it."""
        return self.manager.generation, self.authenticator.formatter.key_state()

    def _validate(self, token: str):
        authn = self.authenticator
        return authn.context_for(authn.decode(token), token)

    def app(self):
        return api.build(self).app()

    def start(self) -> None:
        self.db.sync()
        self.keys.setup()
        self.bootstrap()

    def stop(self) -> None:
        if self._admin_hash is not None:
            self._admin_hash.result()  # never leave bcrypt running in a thread at exit
        self.db.dispose()

    # -- bootstrap ---------------------------------------------------------

    def admin_password(self) -> str:
        return passwords.admin_password(self.conf)

    def bootstrap(self) -> None:
        """Idempotently create what `keystone-manage bootstrap` creates, plus the catalog."""
        ident = self.manager
        conf = self.conf
        if ident.store("domain").read_only is False:
            default_id = conf.identity.default_domain_id
            if ident.find("domain", default_id) is None:
                ident.create_domain({"id": default_id, "name": "Default",
                                     "description": "The default domain"})
        roles = {}
        for name in DEFAULT_ROLES:
            found = ident.list("role", {"name": name, "domain_id": core.GLOBAL})
            roles[name] = found[0] if found else ident.create_role({"name": name})
        for prior, implied in (("admin", "member"), ("member", "reader")):
            if not ident.list("implied_role", {"prior_role_id": roles[prior]["id"],
                                               "implied_role_id": roles[implied]["id"]}):
                ident.create_implied_role(roles[prior]["id"], roles[implied]["id"])
        self.bootstrap_catalog()
        if ident.store("user").read_only:
            return
        domain_id = conf.identity.default_domain_id
        projects = {}
        for name in (conf.bootstrap.admin_project_name, "service"):
            found = ident.list("project", {"name": name, "domain_id": domain_id})
            projects[name] = found[0] if found else ident.create_project(
                {"name": name, "domain_id": domain_id})
        password = self.admin_password()
        found = ident.list("user", {"name": conf.bootstrap.admin_username,
                                    "domain_id": domain_id})
        if not found:
            admin = ident.create_user({"name": conf.bootstrap.admin_username,
                                       "domain_id": domain_id, "password": password},
                                      password_hash=self._admin_password_hash(password))
        else:
            admin = found[0]
            if not self._fingerprint_matches(password, admin) and \
                    not ident.check_user_password(admin, password):
                admin = ident.update_user(admin["id"], {"password": password})
        admin = ident.get("user", admin["id"])
        if not self._fingerprint_matches(password, admin):
            self._save_fingerprint(password, admin)
        ident.remember_password(admin, password)
        ident.grant(roles["admin"]["id"], user_id=admin["id"],
                    project_id=projects[conf.bootstrap.admin_project_name]["id"])
        ident.grant(roles["admin"]["id"], user_id=admin["id"], system=True)

    def bootstrap_catalog(self) -> None:
        ident = self.manager
        if self.conf.catalog.driver == "templated":
            from pocketstack.identity.backends import templated

            path = templated.template_path(self.conf)
            if not os.path.exists(path):
                with open(path, "w") as f:
                    f.write(templated.default_template(self.cloud.services.values()))
        if ident.store("service").read_only:
            return
        region = self.conf.region_name
        if ident.find("region", region) is None:
            try:
                ident.create_region({"id": region})
            except errors.Conflict:
                pass
        for svc in self.cloud.services.values():
            found = ident.list("service", {"type": svc.service_type})
            record = found[0] if found else ident.create_service(
                {"type": svc.service_type, "name": svc.catalog_name})
            url = svc.endpoint_url()
            existing = {e["interface"]: e for e in ident.list("endpoint",
                                                               {"service_id": record["id"]})}
            for interface in ("public", "internal", "admin"):
                ep = existing.get(interface)
                if ep is None:
                    ident.create_endpoint({"service_id": record["id"], "interface": interface,
                                           "url": url, "region_id": region})
                elif ep["url"] != url:
                    ident.update("endpoint", ep["id"], {"url": url})
