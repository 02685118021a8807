"""Pure logic of the block storage service: microversions and the scheduler."""

from __future__ import annotations

import pytest

from pocketstack.common import errors
from pocketstack.volume import microversions
from pocketstack.volume.scheduler import NoValidBackend, Scheduler


class Headers(dict):
    def get(self, key, default=None):
        return super().get(key.lower(), default)


def test_microversion_parsing():
    assert microversions.parse(Headers()) == (3, 0)
    assert microversions.parse(Headers({"openstack-api-version": "volume 3.27"})) == (3, 27)
    assert microversions.parse(Headers({"openstack-api-version": "compute 2.1, volume 3.44"})
                               ) == (3, 44)
    assert microversions.parse(Headers({"openstack-api-version": "volume latest"})) == \
        microversions.MAX
    assert microversions.parse(Headers({"x-openstack-volume-api-version": "3.5"})) == (3, 5)
    with pytest.raises(errors.NotAcceptable):
        microversions.parse(Headers({"openstack-api-version": "volume 3.999"}))
    with pytest.raises(errors.NotAcceptable):
        microversions.parse(Headers({"openstack-api-version": "volume 2.0"}))
    with pytest.raises(errors.BadRequest):
        microversions.parse(Headers({"openstack-api-version": "volume three"}))


class FakeDriver:
    def __init__(self, pools):
        self._pools = pools

    def pools(self):
        return self._pools


class Be:
    def __init__(self, name, zone="nova", pools=None, thin=True, ratio=20.0, reserved=0):
        self.backend_name = name
        self.availability_zone = zone
        self.driver = FakeDriver(pools or [{"name": "p", "total_capacity_gb": 100,
                                            "free_capacity_gb": 100, "up": True}])
        self.thin = thin
        self.max_over_subscription_ratio = ratio
        self.reserved_percentage = reserved


def test_scheduler_filters_and_weighs():
    backends = {
        "a": Be("a", pools=[{"name": "small", "total_capacity_gb": 10, "free_capacity_gb": 10,
                            "up": True}]),
        "b": Be("b", pools=[{"name": "big", "total_capacity_gb": 100, "free_capacity_gb": 90,
                            "up": True},
                           {"name": "down", "total_capacity_gb": 1000,
                            "free_capacity_gb": 1000, "up": False}]),
        "c": Be("c", zone="az2"),
    }
    used = {("b", "big"): 1990.0}
    sched = Scheduler(backends, lambda b, p: used.get((b, p), 0.0))
    # b#big has 10 GiB of room left (100 * 20 - 1990), a#small 200: a wins
    choice = sched.choose(5, {}, "nova")
    assert (choice.backend, choice.pool) == ("a", "small")
    # the type pins the backend
    assert sched.choose(5, {"volume_backend_name": "b"}, None).pool == "big"
    with pytest.raises(NoValidBackend):
        sched.choose(11, {"volume_backend_name": "b"}, None)
    # zones
    assert sched.choose(1, {}, "az2").backend == "c"
    with pytest.raises(NoValidBackend):
        sched.choose(1, {"volume_backend_name": "a"}, "az2")
    # thick provisioning needs real free space
    thick = {"t": Be("t", thin=False, ratio=1.0,
                     pools=[{"name": "p", "total_capacity_gb": 10, "free_capacity_gb": 2,
                             "up": True}])}
    with pytest.raises(NoValidBackend):
        Scheduler(thick, lambda b, p: 0.0).choose(3, {}, None)
