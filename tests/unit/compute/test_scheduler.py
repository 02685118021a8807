"""The filter scheduler and the extra-spec matcher, on plain host states."""

from __future__ import annotations

from types import SimpleNamespace

from pocketstack.compute import scheduler
from pocketstack.compute.options import DEFAULT_FILTERS


def conf(**kw):
    base = dict(cpu_allocation_ratio=2.0, ram_allocation_ratio=1.0, disk_allocation_ratio=1.0,
                reserved_host_memory_mb=0,
                filter_scheduler=SimpleNamespace(enabled_filters=DEFAULT_FILTERS,
                                                 weight_classes=["RAMWeigher"],
                                                 ram_weight_multiplier=1.0),
                trusted_computing=SimpleNamespace(attestation_server=None,
                                                  attestation_trusted_hosts=[]))
    base.update(kw)
    return SimpleNamespace(**base)


def host(name, *, ram_used=0, zone="nova", meta=None, up=True, disabled=False, vcpus_used=0):
    return scheduler.HostState(host=name, node=name, vcpus=4, memory_mb=4096, local_gb=100,
                               vcpus_used=vcpus_used, memory_mb_used=ram_used, local_gb_used=0,
                               up=up, disabled=disabled, availability_zone=zone,
                               aggregate_metadata=meta or [], cpu_info={"arch": "x86_64"})


def spec(**kw):
    base = dict(vcpus=1, memory_mb=512, disk_gb=1, extra_specs={}, image_properties={},
                availability_zone=None)
    base.update(kw)
    return scheduler.RequestSpec(**base)


def names(hosts):
    return [h.host for h in hosts]


def test_capacity_and_ratios():
    c = conf()
    hosts = [host("a", ram_used=3800), host("b", vcpus_used=8), host("c")]
    assert names(scheduler.filter_hosts(hosts, spec(), c)) == ["c"]
    assert names(scheduler.filter_hosts(hosts, spec(), conf(cpu_allocation_ratio=3.0))) == \
        ["b", "c"]


def test_down_disabled_and_zone():
    hosts = [host("a", up=False), host("b", disabled=True), host("c", zone="fast"),
             host("d")]
    assert names(scheduler.filter_hosts(hosts, spec(), conf())) == ["c", "d"]
    assert names(scheduler.filter_hosts(hosts, spec(availability_zone="fast"), conf())) == ["c"]


def test_aggregate_extra_specs():
    hosts = [host("a", meta=[{"ssd": "true"}]), host("b", meta=[{"ssd": "false"}]), host("c")]
    wanted = spec(extra_specs={"aggregate_instance_extra_specs:ssd": "true"})
    assert names(scheduler.filter_hosts(hosts, wanted, conf())) == ["a"]
    assert scheduler.match_spec("<or> a <or> b", {"b"})
    assert scheduler.match_spec(">= 4", {"8"}) and not scheduler.match_spec(">= 4", {"2"})
    assert scheduler.match_spec("<in> fast", {"very-fast"})
    assert scheduler.match_spec("s== x", {"x"})


def test_anti_affinity_and_affinity():
    hosts = [host("a"), host("b")]
    anti = spec(group_policy="anti-affinity", group_host_counts={"a": 1}, group_hosts={"a"})
    assert names(scheduler.filter_hosts(hosts, anti, conf())) == ["b"]
    aff = spec(group_policy="affinity", group_hosts={"a"})
    assert names(scheduler.filter_hosts(hosts, aff, conf())) == ["a"]
    two = spec(group_policy="anti-affinity", group_host_counts={"a": 1},
               group_max_per_host=2)
    assert names(scheduler.filter_hosts(hosts, two, conf())) == ["a", "b"]


def test_forced_host_skips_placement_filters_not_capacity():
    hosts = [host("a", zone="other"), host("b", ram_used=4000)]
    assert names(scheduler.filter_hosts(hosts, spec(force_host="a",
                                                    availability_zone="nova"), conf())) == ["a"]
    assert scheduler.filter_hosts(hosts, spec(force_host="b"), conf()) == []


def test_ram_weigher_spreads_or_stacks():
    hosts = [host("a", ram_used=2000), host("b", ram_used=100)]
    assert names(scheduler.weigh_hosts(hosts, spec(), conf())) == ["b", "a"]
    stack = conf(filter_scheduler=SimpleNamespace(enabled_filters=DEFAULT_FILTERS,
                                                  weight_classes=["RAMWeigher"],
                                                  ram_weight_multiplier=-1.0))
    assert names(scheduler.weigh_hosts(hosts, spec(), stack)) == ["a", "b"]


def test_soft_policies_weigh():
    hosts = [host("a"), host("b", ram_used=1000)]
    soft_anti = spec(soft_policy="soft-anti-affinity", group_host_counts={"a": 2})
    assert names(scheduler.weigh_hosts(hosts, soft_anti, conf())) == ["b", "a"]
    soft_aff = spec(soft_policy="soft-affinity", group_host_counts={"b": 1})
    assert names(scheduler.weigh_hosts(hosts, soft_aff, conf())) == ["b", "a"]
