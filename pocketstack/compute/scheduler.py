"""The filter scheduler: which hosts may take a server, and which of them is best.

Pure functions over ``HostState``s the conductor loads from its database; the
claim that makes a choice stick is the conductor's (an atomic update of the
chosen node's usage), so two schedulers never over-commit a host.

Filters (``[filter_scheduler] enabled_filters``, Nova's names):
ComputeFilter (service enabled and up), AvailabilityZoneFilter,
RamFilter/DiskFilter/CoreFilter (with ``*_allocation_ratio``),
AggregateInstanceExtraSpecsFilter and ComputeCapabilitiesFilter (flavor
extra specs against aggregate metadata / host capabilities),
ImagePropertiesFilter (``architecture``, ``hypervisor_type``),
ServerGroupAffinityFilter / ServerGroupAntiAffinityFilter,
TrustedFilter (``trust:trusted_host``), plus ``force_hosts`` from
``availability_zone=zone:host``. Weighers: RAMWeigher (spread with a
positive multiplier, stack with a negative one).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field


@dataclass
class HostState:
    host: str
    node: str
    vcpus: int
    memory_mb: int
    local_gb: int
    vcpus_used: int
    memory_mb_used: int
    local_gb_used: int
    up: bool
    disabled: bool
    availability_zone: str
    aggregate_metadata: list[dict] = field(default_factory=list)
    hypervisor_type: str = "fake"
    cpu_info: dict = field(default_factory=dict)
    running_vms: int = 0

    def limits(self, conf) -> tuple[float, float, float]:
        return (self.vcpus * conf.cpu_allocation_ratio,
                (self.memory_mb - conf.reserved_host_memory_mb) * conf.ram_allocation_ratio,
                self.local_gb * conf.disk_allocation_ratio)

    def free_ram(self, conf) -> float:
        return self.limits(conf)[1] - self.memory_mb_used


@dataclass
class RequestSpec:
    vcpus: int
    memory_mb: int
    disk_gb: int
    extra_specs: dict
    image_properties: dict
    availability_zone: str | None
    force_host: str | None = None
    group_policy: str | None = None
    soft_policy: str | None = None  # soft-affinity / soft-anti-affinity: a weigher
    group_hosts: set[str] = field(default_factory=set)
    group_max_per_host: int = 1
    group_host_counts: dict[str, int] = field(default_factory=dict)
    ignore_hosts: set[str] = field(default_factory=set)
    same_host: set[str] = field(default_factory=set)
    different_host: set[str] = field(default_factory=set)


def _compute(host, spec, conf):
    return host.up and not host.disabled


def _az(host, spec, conf):
    return spec.availability_zone is None or host.availability_zone == spec.availability_zone


def _ram(host, spec, conf):
    return host.memory_mb_used + spec.memory_mb <= host.limits(conf)[1]


def _disk(host, spec, conf):
    return host.local_gb_used + spec.disk_gb <= host.limits(conf)[2]


def _core(host, spec, conf):
    return host.vcpus_used + spec.vcpus <= host.limits(conf)[0]


OPS = {"=": lambda a, b: _num(a) == _num(b), "==": lambda a, b: _num(a) == _num(b),
       "!=": lambda a, b: _num(a) != _num(b), ">=": lambda a, b: _num(a) >= _num(b),
       "<=": lambda a, b: _num(a) <= _num(b), "s==": operator.eq, "s!=": operator.ne,
       "s<": operator.lt, "s<=": operator.le, "s>": operator.gt, "s>=": operator.ge}


def _num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def match_spec(requirement: str, values: set[str]) -> bool:
    """Nova's extra-spec operators: "<in> x", "<or> a <or> b", ">= 4", "s== x", plain."""
    words = str(requirement).split()
    if not words:
        return any(v == "" for v in values)
    op = words[0]
    if op == "<in>" and len(words) > 1:
        return any(words[1] in v for v in values)
    if op == "<or>":
        choices = {w for w in words if w != "<or>"}
        return bool(values & choices)
    if op == "<all-in>":
        return all(w in values for w in words[1:])
    if op in OPS and len(words) > 1:
        return any(OPS[op](v, words[1]) for v in values)
    return requirement in values


def _aggregate_specs(host, spec, conf):
    for key, wanted in spec.extra_specs.items():
        scope, _, name = key.partition(":")
        if name and scope not in ("aggregate_instance_extra_specs",):
            continue  # other namespaces are for other filters
        if not name:
            name = key
        values = {str(md[name]) for md in host.aggregate_metadata if name in md}
        if not values:
            return False if scope == "aggregate_instance_extra_specs" else True
        if not match_spec(wanted, {v.strip() for val in values for v in val.split(",")}):
            return False
    return True


def _capabilities(host, spec, conf):
    caps = {"hypervisor_type": host.hypervisor_type, "vcpus": str(host.vcpus),
            "memory_mb": str(host.memory_mb), "cpu_info:arch": host.cpu_info.get("arch", "")}
    for key, wanted in spec.extra_specs.items():
        scope, _, name = key.partition(":")
        if scope != "capabilities":
            continue
        if name not in caps or not match_spec(wanted, {caps[name]}):
            return False
    return True


def _image_props(host, spec, conf):
    props = spec.image_properties or {}
    arch = props.get("architecture") or props.get("hw_architecture")
    if arch and arch not in (host.cpu_info.get("arch"), None):
        return False
    hv = props.get("hypervisor_type") or props.get("img_hv_type")
    if hv and hv not in (host.hypervisor_type, "fake"):
        return False
    return True


def _affinity(host, spec, conf):
    if spec.group_policy in ("affinity",) and spec.group_hosts:
        return host.host in spec.group_hosts
    return True


def _anti_affinity(host, spec, conf):
    if spec.group_policy == "anti-affinity":
        return spec.group_host_counts.get(host.host, 0) < spec.group_max_per_host
    return True


def _trusted(host, spec, conf):
    wanted = spec.extra_specs.get("trust:trusted_host")
    if not wanted or not conf.trusted_computing.attestation_server:
        return True
    trusted = host.host in conf.trusted_computing.attestation_trusted_hosts
    return trusted == (wanted == "trusted")


def _same_different(host, spec, conf):
    if spec.same_host and host.host not in spec.same_host:
        return False
    return host.host not in spec.different_host


FILTERS = {
    "ComputeFilter": _compute, "AvailabilityZoneFilter": _az, "RamFilter": _ram,
    "DiskFilter": _disk, "CoreFilter": _core,
    "AggregateInstanceExtraSpecsFilter": _aggregate_specs,
    "ComputeCapabilitiesFilter": _capabilities, "ImagePropertiesFilter": _image_props,
    "ServerGroupAffinityFilter": _affinity, "ServerGroupAntiAffinityFilter": _anti_affinity,
    "TrustedFilter": _trusted, "SameHostFilter": _same_different,
    "DifferentHostFilter": _same_different,
}
# The resource filters always run: claims must never over-commit a host.
ALWAYS = ("ComputeFilter", "RamFilter", "DiskFilter", "CoreFilter")


def filter_hosts(hosts: list[HostState], spec: RequestSpec, conf) -> list[HostState]:
    names = list(dict.fromkeys([*ALWAYS, *conf.filter_scheduler.enabled_filters,
                                "SameHostFilter", "TrustedFilter"]))
    funcs = [FILTERS[n] for n in names if n in FILTERS]
    result = []
    for host in hosts:
        if host.host in spec.ignore_hosts:
            continue
        if spec.force_host is not None:
            # A forced host skips the placement filters, never the capacity ones.
            if host.host != spec.force_host:
                continue
            checks = [FILTERS[n] for n in ALWAYS[1:]]
        else:
            checks = funcs
        if all(f(host, spec, conf) for f in checks):
            result.append(host)
    return result


def weigh_hosts(hosts: list[HostState], spec: RequestSpec, conf) -> list[HostState]:
    """Best first. RAMWeigher: more free RAM is better times the multiplier."""
    multiplier = conf.filter_scheduler.ram_weight_multiplier
    if "RAMWeigher" not in conf.filter_scheduler.weight_classes:
        multiplier = 0.0
    def soft(h: HostState) -> int:
        members = spec.group_host_counts.get(h.host, 0)
        if spec.soft_policy == "soft-anti-affinity":
            return members
        if spec.soft_policy == "soft-affinity":
            return -members
        return 0

    return sorted(hosts, key=lambda h: (soft(h), -(h.free_ram(conf) * multiplier),
                                        h.running_vms, h.host))
