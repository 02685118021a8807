"""The volume scheduler: picks a backend and pool for a new volume.

Filters (as Cinder's filter scheduler does): the pool is up; the
availability zone matches; the volume type's ``volume_backend_name`` extra
spec names the backend; the pool has room — provisioned GiB plus the new
volume within ``max_over_subscription_ratio`` of its capacity, minus
``reserved_percentage``. Weigher: the most unprovisioned room wins.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


class NoValidBackend(Exception):
    pass


@dataclass
class Candidate:
    backend: str
    pool: str
    room_gb: float


class Scheduler:
    def __init__(self, backends: dict, provisioned):
        """``backends``: name -> Backend; ``provisioned(backend, pool)`` -> GiB in use."""
        self.backends = backends
        self.provisioned = provisioned
        self._stats: dict[str, tuple[float, list[dict]]] = {}
        self._lock = threading.Lock()

    def pools(self, backend: str, refresh: bool = False) -> list[dict]:
        """The backend's pools as last reported; the manager refreshes them in the
        background, so choosing never waits on a slow or dead share."""
        cached = self._stats.get(backend)
        if cached is not None and not refresh:
            return cached[1]
        pools = self.backends[backend].driver.pools()
        self._stats[backend] = (time.monotonic(), pools)
        return pools

    def any_down(self) -> bool:
        return any(not p["up"] for _, pools in self._stats.values() for p in pools)

    def refresh(self) -> None:
        for name in list(self.backends):
            self.pools(name, refresh=True)

    def zones(self) -> set[str]:
        return {b.availability_zone for b in self.backends.values()}

    def choose(self, size_gb: int, extra_specs: dict, zone: str | None,
               backend: str | None = None, pool: str | None = None) -> Candidate:
        wanted_name = extra_specs.get("volume_backend_name")
        reasons = []
        candidates = []
        for name, be in self.backends.items():
            if backend is not None and name != backend:
                continue
            if zone and be.availability_zone != zone:
                reasons.append(f"{name}: availability zone {be.availability_zone}")
                continue
            if wanted_name and be.backend_name != wanted_name:
                reasons.append(f"{name}: volume_backend_name {be.backend_name}")
                continue
            for p in self.pools(name):
                if pool is not None and p["name"] != pool:
                    continue
                if not p["up"]:
                    reasons.append(f"{name}#{p['name']}: down")
                    continue
                total = p["total_capacity_gb"]
                usable = total * (1 - be.reserved_percentage / 100.0)
                room = usable * be.max_over_subscription_ratio - self.provisioned(name, p["name"])
                if room < size_gb or (not be.thin and p["free_capacity_gb"] < size_gb):
                    reasons.append(f"{name}#{p['name']}: not enough capacity")
                    continue
                candidates.append(Candidate(name, p["name"], room))
        if not candidates:
            detail = "; ".join(reasons) if reasons else "no backend is configured"
            raise NoValidBackend(f"No valid backend was found. {detail}")
        return max(candidates, key=lambda c: c.room_gb)
