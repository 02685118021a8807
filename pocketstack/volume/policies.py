"""Block storage default policy (Cinder's rule names)."""

from pocketstack.common.policy import RuleDefault

ADMIN = "rule:admin_required"
OWNER = "rule:admin_or_owner"

RULES = [RuleDefault(name, rule) for name, rule in [
    ("volume_extension:types_manage", ADMIN),
    ("volume_extension:types_extra_specs:create", ADMIN),
    ("volume_extension:types_extra_specs:update", ADMIN),
    ("volume_extension:types_extra_specs:delete", ADMIN),
    ("volume_extension:volume_type_access", OWNER),
    ("volume_extension:volume_type_access:addProjectAccess", ADMIN),
    ("volume_extension:volume_type_access:removeProjectAccess", ADMIN),
    ("volume_extension:volume_admin_actions:reset_status", ADMIN),
    ("volume_extension:volume_admin_actions:force_delete", ADMIN),
    ("volume_extension:volume_admin_actions:force_detach", ADMIN),
    ("volume_extension:snapshot_admin_actions:reset_status", ADMIN),
    ("volume_extension:backup_admin_actions:reset_status", ADMIN),
    ("volume_extension:backup_admin_actions:force_delete", ADMIN),
    ("volume_extension:quotas:show", OWNER),
    ("volume_extension:quotas:update", ADMIN),
    ("volume_extension:quotas:delete", ADMIN),
    ("volume_extension:capabilities", ADMIN),
    ("scheduler_extension:scheduler_stats:get_pools", ADMIN),
    ("volume:get_all_admin", ADMIN),
    ("volume:retype", OWNER),
]]
