"""The request context: who is calling, in which scope, with which roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


@dataclass
class RequestContext:
    request_id: str = field(default_factory=new_request_id)
    user_id: str | None = None
    user_name: str | None = None
    user_domain_id: str | None = None
    user_domain_name: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    project_domain_name: str | None = None
    domain_id: str | None = None  # set for domain-scoped tokens
    domain_name: str | None = None
    system_scope: str | None = None  # "all" for system-scoped tokens
    roles: list[str] = field(default_factory=list)
    role_refs: list[dict] = field(default_factory=list)  # [{"id", "name"}] of the roles
    auth_token: str | None = None
    audit_id: str | None = None
    expires_at: str | None = None
    methods: list[str] = field(default_factory=list)
    application_credential_id: str | None = None
    catalog: list | None = None
    # True for work the cloud does on its own behalf (agents, bootstrap).
    internal: bool = False

    @property
    def is_admin(self) -> bool:
        """A cloud administrator: the admin role on a project or the system.

        A domain-scoped admin manages only its own domain (identity's policy
        says so explicitly), so it is not a cloud admin."""
        return self.internal or ("admin" in self.roles and self.domain_id is None)

    def policy_values(self) -> dict:
        return {
            "user_id": self.user_id,
            "user_domain_id": self.user_domain_id,
            "project_id": self.project_id,
            "project_domain_id": self.project_domain_id,
            "domain_id": self.domain_id,
            "system_scope": self.system_scope,
            "roles": self.roles,
            "is_admin": self.is_admin,
            "cloud_admin": self.is_admin,
            "is_admin_project": True,
            "service_roles": [],
        }

    @classmethod
    def internal_admin(cls, request_id: str | None = None) -> RequestContext:
        ctx = cls(roles=["admin", "member", "reader"], internal=True, system_scope="all")
        if request_id:
            ctx.request_id = request_id
        return ctx
