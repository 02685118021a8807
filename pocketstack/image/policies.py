"""The image service's default policy (Glance's rule names, secure-RBAC personas).

Targets carry the image's ``project_id`` (its owner) and, for member calls,
``member_id``. Visibility (who may see an image at all) is not a policy: the
manager answers 404 for images a project cannot see.
"""

from pocketstack.common.policy import RuleDefault

ADMIN = "role:admin"
MEMBER = "role:member and project_id:%(project_id)s"
READER = "role:reader"


def _rules(names: list[str], rule: str) -> list[RuleDefault]:
    return [RuleDefault(n, rule) for n in names]


RULES = [
    *_rules(["add_image"], f"{ADMIN} or {MEMBER}"),
    *_rules(["get_image", "get_images", "download_image", "get_member", "get_members",
             "get_task"], f"{ADMIN} or {READER}"),
    *_rules(["modify_image", "upload_image", "delete_image", "add_member", "delete_member",
             "communitize_image", "deactivate", "reactivate"], f"{ADMIN} or {MEMBER}"),
    *_rules(["modify_member"], f"{ADMIN} or (role:member and project_id:%(member_id)s)"),
    *_rules(["publicize_image", "set_image_owner"], ADMIN),
]
