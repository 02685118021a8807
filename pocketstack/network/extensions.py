"""The API extensions this service implements (GET /v2.0/extensions).

Clients decide what to send from this list, so it names exactly what the
API layer supports."""

UPDATED = "2013-01-01T10:00:00-00:00"

EXTENSIONS = [
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("auto-allocated-topology", "Auto Allocated Topology Services",
     "Auto Allocated Topology Services."),
    ("availability_zone", "Availability Zone", "The availability zone extension."),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external "
                                "application"),
    ("default-subnetpools", "Default Subnetpools", "Provides ability to mark and use a "
                                                   "subnetpool as the default."),
    ("extra_dhcp_opt", "Neutron Extra DHCP options", "Extra options configuration for DHCP."),
    ("external-net", "Neutron external network", "Adds external network attribute to network "
                                                 "resource."),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("extraroute-atomic", "Atomically add/remove extra routes",
     "Edit extra routes of a router on server side by atomically adding/removing extra "
     "routes"),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode",
     "Extension of the router abstraction for specifying whether SNAT should occur on the "
     "external gateway"),
    ("fip-port-details", "Floating IP Port Details Extension",
     "Add port_details attribute to Floating IP resource"),
    ("network_availability_zone", "Network Availability Zone",
     "Availability zone support for network."),
    ("router_availability_zone", "Router Availability Zone",
     "Availability zone support for router."),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a "
                                                   "network resource."),
    ("network-ip-availability", "Network IP Availability",
     "Provides IP availability data for each network and subnet."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is "
                                         "enabled."),
    ("port-security", "Port Security", "Provides port security"),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id "
                                               "field is enabled."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("qinq", "QinQ", "Provides the qinq attribute (always false here)."),
    ("quotas", "Quota management support", "Expose functions for quotas management per "
                                           "tenant"),
    ("quota_details", "Quota details management support",
     "Expose functions for quotas usage statistics per project"),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 "
                                    "Neutron networks and access to external networks via a "
                                    "NAT gateway."),
    ("security-group", "security-group", "The security groups extension."),
    ("security-groups-remote-address-group", "Remote address group id field for security "
     "group rules", "Adds remote_address_group_id (always null here)."),
    ("security-groups-normalized-cidr", "Normalized CIDR field for security group rules",
     "Add new field with normalized remote_ip_prefix cidr in SG rule"),
    ("stateful-security-group", "Stateful security group", "Indicates if the security group "
                                                          "is stateful or not"),
    ("service-type", "Neutron Service Type Management",
     "API for retrieving service providers for Neutron advanced services"),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("standard-attr-description", "standard-attr-description",
     "Extension to add descriptions to standard attributes"),
    ("standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources."),
    ("standard-attr-tag", "Tag support for resources with standard attribute",
     "Enables to set tag on resources with standard attribute."),
    ("standard-attr-timestamp", "Resource timestamps",
     "Adds created_at and updated_at fields to all Neutron resources that have Neutron "
     "standard attributes."),
    ("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet "
                                               "pool"),
    ("subnet-service-types", "Subnet service types",
     "Provides ability to set the subnet service_types field"),
    ("tag-creation", "Tag support on resource creation",
     "Enables to specify tags on resource creation."),
    ("vlan-transparent", "Vlan Transparency", "Provides Vlan Transparent Networks"),
]


def listing() -> list[dict]:
    return [{"name": name, "alias": alias, "description": desc, "updated": UPDATED,
             "links": []} for alias, name, desc in EXTENSIONS]
