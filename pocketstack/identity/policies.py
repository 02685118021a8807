"""Identity's default policy (Keystone's rule names).

Personas: a cloud admin (admin on a project or the system) does anything;
a domain admin (admin on a domain-scoped token) manages users, groups,
projects and grants of its own domain; everyone reads themselves.
"""

from pocketstack.common.policy import RuleDefault

CLOUD_ADMIN = "cloud_admin:True"
DOMAIN_ADMIN = "role:admin and domain_id:%(target.domain_id)s"
ADMIN = f"{CLOUD_ADMIN} or ({DOMAIN_ADMIN})"
OWNER = "user_id:%(target.user_id)s"


def _rules(names: list[str], rule: str) -> list[RuleDefault]:
    return [RuleDefault(f"identity:{n}", rule) for n in names]


RULES = [
    RuleDefault("cloud_admin", CLOUD_ADMIN),
    *_rules(["get_domain"], f"{ADMIN} or domain_id:%(target.domain_id)s "
                            "or project_domain_id:%(target.domain_id)s"),
    *_rules(["list_domains", "create_domain", "update_domain", "delete_domain",
             "create_region", "update_region", "delete_region",
             "create_service", "update_service", "delete_service",
             "create_endpoint", "update_endpoint", "delete_endpoint",
             "create_role", "update_role", "delete_role",
             "create_implied_role", "delete_implied_role", "list_role_inference_rules",
             "create_system_grant", "revoke_system_grant"], CLOUD_ADMIN),
    *_rules(["list_roles", "get_role", "list_implied_roles", "get_implied_role",
             "check_implied_role"], f"{ADMIN} or role:reader and system_scope:all"),
    *_rules(["list_regions", "get_region", "list_services", "get_service",
             "list_endpoints", "get_endpoint"], "@"),
    *_rules(["get_project"], f"{ADMIN} or project_id:%(target.project_id)s"),
    *_rules(["list_projects", "create_project", "update_project", "delete_project",
             "create_project_tag", "update_project_tags", "delete_project_tag",
             "delete_project_tags"], ADMIN),
    *_rules(["list_project_tags", "get_project_tag"],
            f"{ADMIN} or project_id:%(target.project_id)s"),
    *_rules(["list_user_projects"], f"{ADMIN} or {OWNER}"),
    *_rules(["get_user"], f"{ADMIN} or {OWNER}"),
    *_rules(["list_users", "create_user", "update_user", "delete_user",
             "list_groups", "get_group", "create_group", "update_group", "delete_group",
             "list_users_in_group", "add_user_to_group", "remove_user_from_group",
             "check_user_in_group"], ADMIN),
    *_rules(["list_groups_for_user"], f"{ADMIN} or {OWNER}"),
    *_rules(["check_grant", "list_grants", "create_grant", "revoke_grant"], ADMIN),
    *_rules(["list_system_grants"], f"{CLOUD_ADMIN} or {OWNER}"),
    *_rules(["list_role_assignments"], f"{ADMIN} or {OWNER}"),
    *_rules(["validate_token", "check_token", "revoke_token"],
            f"{CLOUD_ADMIN} or role:service or user_id:%(target.token.user_id)s"),
    *_rules(["list_credentials", "get_credential", "create_credential", "update_credential",
             "delete_credential"], f"{CLOUD_ADMIN} or {OWNER}"),
    *_rules(["list_application_credentials", "get_application_credential",
             "create_application_credential", "delete_application_credential",
             "list_access_rules", "get_access_rule", "delete_access_rule",
             "ec2_list_credentials", "ec2_get_credential", "ec2_create_credential",
             "ec2_delete_credential"],
            f"{CLOUD_ADMIN} or {OWNER}"),
]
