"""Compute policy defaults (Nova's rule names)."""

from pocketstack.common.policy import RuleDefault

ADMIN = "rule:admin_required"
OWNER = "rule:admin_or_owner"
ANY = "@"

RULES = [
    RuleDefault("os_compute_api:servers:index", ANY),
    RuleDefault("os_compute_api:servers:detail", ANY),
    RuleDefault("os_compute_api:servers:index:get_all_tenants", ADMIN),
    RuleDefault("os_compute_api:servers:show", OWNER),
    RuleDefault("os_compute_api:servers:create", ANY),
    RuleDefault("os_compute_api:servers:create:forced_host", ADMIN),
    RuleDefault("os_compute_api:servers:update", OWNER),
    RuleDefault("os_compute_api:servers:delete", OWNER),
    RuleDefault("os_compute_api:servers:action", OWNER),
    RuleDefault("os_compute_api:servers:migrate", ADMIN),
    RuleDefault("os_compute_api:os-migrate-server:migrate_live", ADMIN),
    RuleDefault("os_compute_api:os-admin-actions:reset_state", ADMIN),
    RuleDefault("os_compute_api:os-lock-server:unlock:unlock_override", ADMIN),
    RuleDefault("os_compute_api:os-flavor-manage:create", ADMIN),
    RuleDefault("os_compute_api:os-flavor-manage:update", ADMIN),
    RuleDefault("os_compute_api:os-flavor-manage:delete", ADMIN),
    RuleDefault("os_compute_api:os-flavor-extra-specs:manage", ADMIN),
    RuleDefault("os_compute_api:os-flavor-access", ADMIN),
    RuleDefault("os_compute_api:os-aggregates", ADMIN),
    RuleDefault("os_compute_api:os-services", ADMIN),
    RuleDefault("os_compute_api:os-hypervisors", ADMIN),
    RuleDefault("os_compute_api:os-availability-zone:detail", ADMIN),
    RuleDefault("os_compute_api:os-quota-sets:update", ADMIN),
    RuleDefault("os_compute_api:os-quota-sets:show", OWNER),
    RuleDefault("os_compute_api:os-simple-tenant-usage:list", ADMIN),
    RuleDefault("os_compute_api:os-simple-tenant-usage:show", OWNER),
    RuleDefault("os_compute_api:os-server-groups:index:all_projects", ADMIN),
    RuleDefault("os_compute_api:os-instance-actions:events", ADMIN),
    RuleDefault("os_compute_api:os-server-diagnostics", ADMIN),
    RuleDefault("os_compute_api:os-keypairs:other_user", ADMIN),
    RuleDefault("os_compute_api:os-migrations:index", ADMIN),
    RuleDefault("os_compute_api:os-remote-consoles", OWNER),
    RuleDefault("os_compute_api:os-console-auth-tokens", ADMIN),
    RuleDefault("os_compute_api:os-evacuate", ADMIN),
    RuleDefault("os_compute_api:os-quota-class-sets:show", ADMIN),
    RuleDefault("os_compute_api:os-quota-class-sets:update", ADMIN),
    RuleDefault("os_compute_api:os-server-password:show", OWNER),
    RuleDefault("os_compute_api:os-server-password:clear", OWNER),
]


def denied(action: str) -> str:
    return f"Policy doesn't allow {action} to be performed."
