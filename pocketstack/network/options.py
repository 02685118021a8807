"""Networking options, with Neutron's section and option names."""

from oslo_config import cfg


def register(conf: cfg.ConfigOpts) -> None:
    conf.register_opts([
        cfg.StrOpt("base_mac", default="fa:16:3e:00:00:00",
                   help="Base MAC address; the bytes that are 00 are generated."),
        cfg.IntOpt("global_physnet_mtu", default=1500,
                   help="MTU of the underlying physical network."),
        cfg.IntOpt("max_fixed_ips_per_port", default=5),
        cfg.IntOpt("mac_generation_retries", default=16),
    ])
    conf.register_opts([
        cfg.ListOpt("tenant_network_types", default=["vxlan"],
                    help="Network types given to tenant networks, in order of preference."),
        cfg.ListOpt("type_drivers", default=["local", "flat", "vlan", "vxlan"]),
        cfg.IntOpt("path_mtu", default=0),
    ], group="ml2")
    conf.register_opts([
        cfg.ListOpt("vni_ranges", default=["1:1000"],
                    help="<vni_min>:<vni_max> ranges of VXLAN VNIs for tenant networks."),
    ], group="ml2_type_vxlan")
    conf.register_opts([
        cfg.ListOpt("network_vlan_ranges", default=["physnet1:1000:2999"],
                    help="<physical_network>[:<vlan_min>:<vlan_max>] entries."),
    ], group="ml2_type_vlan")
    conf.register_opts([
        cfg.ListOpt("flat_networks", default=["*"],
                    help="Physical networks flat networks may use ('*' any)."),
    ], group="ml2_type_flat")
    conf.register_opts([
        cfg.IntOpt("default_quota", default=-1),
        cfg.IntOpt("quota_network", default=100),
        cfg.IntOpt("quota_subnet", default=100),
        cfg.IntOpt("quota_port", default=500),
        cfg.IntOpt("quota_router", default=10),
        cfg.IntOpt("quota_floatingip", default=50),
        cfg.IntOpt("quota_security_group", default=10),
        cfg.IntOpt("quota_security_group_rule", default=100),
        cfg.IntOpt("quota_subnetpool", default=-1),
    ], group="quotas")
    conf.register_opts([
        cfg.StrOpt("l2_driver", default="noop",
                   help="Data-plane driver: noop, linuxbridge or openvswitch."),
        cfg.IntOpt("pagination_max_limit", default=-1,
                   help="Largest page a list returns (-1: no limit)."),
        cfg.StrOpt("default_external_network", default=None,
                   help="External network auto-allocated topologies use (else is_default)."),
        cfg.StrOpt("auto_allocated_cidr", default="10.0.0.0/24"),
    ], group="network")
