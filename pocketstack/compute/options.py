"""Compute options, with nova.conf's section and option names."""

from oslo_config import cfg

DEFAULT_FILTERS = [
    "ComputeFilter", "AvailabilityZoneFilter", "ComputeCapabilitiesFilter",
    "ImagePropertiesFilter", "ServerGroupAntiAffinityFilter", "ServerGroupAffinityFilter",
    "AggregateInstanceExtraSpecsFilter", "RamFilter", "DiskFilter", "CoreFilter",
]


def _register(conf: cfg.ConfigOpts, opts: list, group: str | None = None) -> None:
    """Register, tolerating an option another service registered already."""
    for opt in opts:
        try:
            conf.register_opt(opt, group=group)
        except cfg.DuplicateOptError:
            pass


def default_zone(conf: cfg.ConfigOpts) -> str:
    """Zone of hosts that no aggregate puts in a zone (``[DEFAULT]
    default_availability_zone``, shared with block storage; "nova" when unset)."""
    try:
        return conf.default_availability_zone or "nova"
    except cfg.NoSuchOptError:
        return "nova"


def register(conf: cfg.ConfigOpts) -> None:
    _register(conf, [
        cfg.StrOpt("compute_driver", default="fake",
                   help="Hypervisor driver of the compute agents: 'fake' (a simulated "
                        "hypervisor), or a module:Class implementing "
                        "pocketstack.compute.virt.base.ComputeDriver."),
        cfg.FloatOpt("cpu_allocation_ratio", default=16.0,
                     help="Virtual CPUs per physical CPU the scheduler allows."),
        cfg.FloatOpt("ram_allocation_ratio", default=1.5,
                     help="Virtual RAM per physical RAM the scheduler allows."),
        cfg.FloatOpt("disk_allocation_ratio", default=1.0,
                     help="Virtual disk per physical disk the scheduler allows."),
        cfg.IntOpt("reserved_host_memory_mb", default=512),
        cfg.IntOpt("reserved_host_disk_mb", default=0),
        cfg.StrOpt("firewall_driver", default="nova.virt.firewall.NoopFirewallDriver",
                   help="Kept for nova.conf compatibility. Security groups are always "
                        "enforced by the networking service, so compute only accepts the "
                        "no-op driver; any other value is logged and ignored."),
        cfg.StrOpt("security_group_api", default="neutron", choices=["neutron", "nova"],
                   help="Kept for nova.conf compatibility: security groups always come "
                        "from the networking service ('nova' is treated as 'neutron')."),
        cfg.StrOpt("transport_url", default=None, secret=True,
                   help="Message bus: unset for the in-process bus, rabbit://user:pass@"
                        "host:port/ for RabbitMQ."),
        cfg.StrOpt("control_exchange", default="pocketstack",
                   help="Exchange (and queue name prefix) on RabbitMQ; clouds sharing a "
                        "broker use different ones."),
        cfg.StrOpt("default_schedule_zone", default=None,
                   help="Zone a server lands in when the request names none."),
        cfg.StrOpt("internal_service_availability_zone", default="internal"),
        cfg.IntOpt("report_interval", default=10,
                   help="Seconds between a compute agent's heartbeats."),
        cfg.IntOpt("service_down_time", default=60,
                   help="Seconds without a heartbeat after which a service is down."),
        cfg.IntOpt("max_user_data_size", default=65535,
                   help="Largest base64 user data accepted, in bytes."),
        cfg.BoolOpt("create_default_flavors", default=True,
                    help="Create devstack's m1.* flavors at first start."),
        cfg.IntOpt("osapi_max_limit", default=1000,
                   help="Most items a list call returns in one page."),
        cfg.StrOpt("instance_name_template", default="instance-%08x"),
        cfg.IntOpt("max_concurrent_builds", default=10,
                   help="Builds an agent runs at the same time."),
    ])
    _register(conf, [
        cfg.BoolOpt("use_local", default=True,
                    help="Run the conductor in the API process (the all-in-one); the "
                         "compute agents always reach it over the bus."),
        cfg.StrOpt("topic", default="conductor"),
        cfg.IntOpt("workers", default=4, help="Threads handling conductor messages."),
    ], "conductor")
    conf.register_opts([
        cfg.BoolOpt("enable", default=False,
                    help="Cells are not used: one cell holds every host (cells v1 off)."),
        cfg.StrOpt("name", default="nova"),
    ], "cells")
    conf.register_opts([
        cfg.StrOpt("driver", default=None,
                   help="Bare-metal support is not provided; setting a driver is refused "
                        "at start-up."),
    ], "baremetal")
    conf.register_opts([
        cfg.IntOpt("token_ttl", default=600, min=0,
                   help="Seconds a remote console token is valid."),
    ], "consoleauth")
    _register(conf, [
        cfg.IntOpt("max_attempts", default=3, min=1,
                   deprecated_opts=[cfg.DeprecatedOpt("scheduler_max_attempts",
                                                      group="DEFAULT")],
                   help="Hosts a server's build is tried on before it goes to ERROR "
                        "(a failed spawn is rescheduled to another host)."),
    ], "scheduler")
    conf.register_opts([
        cfg.StrOpt("attestation_server", default=None,
                   help="Trusted compute pools: with a server set, hosts are trusted when "
                        "listed in attestation_trusted_hosts (no attestation protocol)."),
        cfg.ListOpt("attestation_trusted_hosts", default=[],
                    help="Hosts reported trusted for flavors asking trust:trusted_host."),
    ], "trusted_computing")
    conf.register_opts([
        cfg.ListOpt("enabled_filters", default=DEFAULT_FILTERS),
        cfg.ListOpt("weight_classes", default=["RAMWeigher"]),
        cfg.FloatOpt("ram_weight_multiplier", default=1.0,
                     help="Positive spreads servers over hosts, negative stacks them."),
        cfg.IntOpt("host_subset_size", default=1),
    ], "filter_scheduler")
    conf.register_opts([
        cfg.IntOpt("hosts", default=1, min=0,
                   help="Simulated compute hosts run in the cloud process (fake-1..N)."),
        cfg.StrOpt("host_prefix", default="fake-"),
        cfg.IntOpt("vcpus", default=8, help="vCPUs of each fake host."),
        cfg.IntOpt("memory_mb", default=16384, help="RAM of each fake host in MiB."),
        cfg.IntOpt("local_gb", default=200, help="Disk of each fake host in GiB."),
        cfg.FloatOpt("boot_delay", default=0.0,
                     help="Seconds a fake spawn takes (0: immediate)."),
        cfg.ListOpt("fail_hosts", default=[],
                    help="Fake hosts whose spawns fail (tests of the failure path)."),
    ], "fake")
    conf.register_opts([
        cfg.StrOpt("metadata_proxy_shared_secret", default="", secret=True,
                   help="Secret the metadata proxy signs X-Instance-ID with (HMAC-SHA256)."),
        cfg.BoolOpt("service_metadata_proxy", default=True),
    ], "neutron")
    conf.register_opts([
        cfg.IntOpt("instances", default=10),
        cfg.IntOpt("cores", default=20),
        cfg.IntOpt("ram", default=51200),
        cfg.IntOpt("metadata_items", default=128),
        cfg.IntOpt("key_pairs", default=100),
        cfg.IntOpt("server_groups", default=10),
        cfg.IntOpt("server_group_members", default=10),
        cfg.IntOpt("injected_files", default=5),
        cfg.IntOpt("injected_file_content_bytes", default=10240),
        cfg.IntOpt("injected_file_path_length", default=255),
    ], "quota")
