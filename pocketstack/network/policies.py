"""Networking's default policy (Neutron's rule names for the attributes
only an admin may set). Ownership and visibility are enforced in the
manager; these rules cover what operators usually override."""

from pocketstack.common.policy import RuleDefault

ADMIN = "rule:context_is_admin"

RULES = [
    RuleDefault("admin_only", ADMIN),
    RuleDefault("create_network", "rule:admin_or_owner"),
    RuleDefault("update_network", "rule:admin_or_owner"),
    *[RuleDefault(f"{action}_network:{attr}", ADMIN)
      for action in ("create", "update")
      for attr in ("shared", "router:external", "is_default", "provider:network_type",
                   "provider:physical_network", "provider:segmentation_id", "segments")],
    *[RuleDefault(f"{action}_port:{attr}", ADMIN)
      for action in ("create", "update")
      for attr in ("binding:host_id", "binding:profile")],
    RuleDefault("create_port:binding:vnic_type", "rule:admin_or_owner"),
    RuleDefault("update_port:binding:vnic_type", "rule:admin_or_owner"),
    RuleDefault("create_floatingip:floating_ip_address", ADMIN),
    RuleDefault("create_subnetpool:shared", ADMIN),
    RuleDefault("create_subnetpool:is_default", ADMIN),
    RuleDefault("update_subnetpool:is_default", ADMIN),
]
