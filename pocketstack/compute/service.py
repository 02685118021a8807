"""The compute service (Nova): API, conductor, scheduler and compute agents.

How a boot flows (the seed's no-db-compute)::

    POST /compute/v2.1/servers  (api.py: validation, flavor/image/network checks)
      -> Conductor.create_instances  (quota-checked rows, one transaction)
      -> cast conductor "build_instances"  (the bus; the conductor's workers)
      -> Conductor.build_one: scheduler filters/weighers + atomic claim on the
         chosen node, ports created and bound in the networking service,
         volumes attached through block storage
      -> cast compute.<host> "build_and_run_instance"  (manager.ComputeManager)
      -> driver.spawn  (virt/base.py ComputeDriver; virt/fake.py)
      -> call conductor "instance_update"  (ACTIVE, power state, launched_at)

Only the conductor (in this process) touches the database; agents get their
state over the bus and have no database settings (``pocketstack
compute-agent`` runs them elsewhere, with ``[DEFAULT] transport_url``).
Messages are versioned (rpcapi.py). ``[fake] hosts = N`` runs N simulated
hosts in this process. The metadata service is mounted at ``/metadata``.

nova.conf options honoured: ``[DEFAULT] compute_driver``,
``cpu/ram/disk_allocation_ratio``, ``reserved_host_memory_mb``,
``transport_url``, ``control_exchange``, ``default_schedule_zone``,
``report_interval``, ``service_down_time``, ``max_user_data_size``,
``firewall_driver``/``security_group_api`` (security groups are always
the networking service's: other firewall drivers are logged and ignored),
``[conductor] workers``, ``[cells] enable`` (one cell; warned),
``[baremetal] driver`` (refused), ``[trusted_computing]
attestation_server``/``attestation_trusted_hosts`` (TrustedFilter),
``[filter_scheduler] enabled_filters``/``weight_classes``/
``ram_weight_multiplier``, ``[quota]``, ``[neutron]
metadata_proxy_shared_secret``.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

from pocketstack.common import rpc
from pocketstack.common.db import Database, utcnow
from pocketstack.common.policy import Policy
from pocketstack.common.service import Service
from pocketstack.compute import api, models, policies, rpcapi
from pocketstack.compute.conductor import BuildEndpoint, Conductor, ConductorEndpoint

LOG = logging.getLogger(__name__)

# devstack's flavors: (id, name, ram MiB, disk GiB, vcpus)
DEFAULT_FLAVORS = [("1", "m1.tiny", 512, 1, 1), ("2", "m1.small", 2048, 20, 1),
                   ("3", "m1.medium", 4096, 40, 2), ("4", "m1.large", 8192, 80, 4),
                   ("5", "m1.xlarge", 16384, 160, 8), ("42", "m1.nano", 128, 1, 1),
                   ("84", "m1.micro", 192, 1, 1)]


class ComputeService(Service):
    name = "compute"
    service_type = "compute"
    catalog_name = "nova"
    prefix = "/compute"
    endpoint_suffix = "/v2.1"
    extra_prefixes = ("/metadata", "/console")

    def __init__(self, cloud):
        super().__init__(cloud)
        conf = self.conf
        if conf.baremetal.driver:
            raise ValueError("[baremetal] driver is set, but bare-metal hosts are not "
                             "supported; unset it")
        if conf.cells.enable:
            LOG.warning("[cells] enable is set, but cells v1 is not supported: every host "
                        "is in the one cell '%s'", conf.cells.name)
        if conf.firewall_driver and "Noop" not in conf.firewall_driver:
            LOG.warning("[DEFAULT] firewall_driver=%s ignored: security groups are enforced "
                        "by the networking service", conf.firewall_driver)
        self.db = Database(conf, "compute", models.metadata,
                           migrations="pocketstack.compute:migrations", head=models.SCHEMA_HEAD)
        self.transport = rpc.get_transport(conf)
        self.policy = Policy(conf, "compute", policies.RULES, denied=policies.denied)
        self.conductor = Conductor(self)
        self.manager = self.conductor
        self.agents: list = []
        self.rpc_server: rpc.RPCServer | None = None
        self._app = None
        self.volume_api = None  # set by the block storage service (attach hooks)

    def app(self):
        if self._app is None:
            self._app = api.build(self).app()
        return self._app

    def extra_app(self, prefix: str):
        """The metadata service and the console proxy, on their own prefixes of the one
        port."""
        if prefix == "/metadata":
            from pocketstack.compute import metadata

            return metadata.build(self).app()
        from pocketstack.compute.console import proxy

        self.app()  # the console API (and its tokens) first
        return proxy.build(self)

    # -- hooks for block storage ---------------------------------------------

    def volume_hook(self, what: str, *args) -> dict | None:
        """Boot from volume and attach go through the block storage service when it
        registers ``volume_api`` (see pocketstack/compute/volumes.py)."""
        if self.volume_api is not None and hasattr(self.volume_api, what):
            return getattr(self.volume_api, what)(*args)
        return None

    # -- life cycle ------------------------------------------------------------

    def start(self) -> None:
        self.db.sync()
        self.bootstrap()
        self.rpc_server = rpc.RPCServer(
            self.transport, rpcapi.CONDUCTOR_TOPIC, None,
            [ConductorEndpoint(self.conductor), BuildEndpoint(self.conductor)],
            workers=self.conf.conductor.workers)
        self.rpc_server.start()
        self.start_fake_hosts()
        self.conductor.recover()

    def start_fake_hosts(self) -> None:
        from pocketstack.compute.manager import ComputeManager

        conf = self.conf
        hosts = [f"{conf.fake.host_prefix}{i + 1}" for i in range(conf.fake.hosts)]
        threads = []
        for host in hosts:
            agent = ComputeManager(conf, host, self.transport)
            self.agents.append(agent)
            t = threading.Thread(target=agent.start, name=f"start-{host}")
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        if hosts:
            for host in hosts:
                self.conductor.recount_host(host)

    def stop(self) -> None:
        for agent in self.agents:
            agent.stop()
        if self.rpc_server is not None:
            self.rpc_server.stop()
        rpc.release_transport(self.conf)
        self.db.dispose()

    def bootstrap(self) -> None:
        if not self.conf.create_default_flavors:
            return
        with self.db.reader() as s:
            if s.execute(sa.select(models.flavor.c.id).limit(1)).first() is not None:
                return

        def txn(s):
            for flavorid, name, ram, disk, vcpus in DEFAULT_FLAVORS:
                s.execute(models.flavor.insert().values(
                    flavorid=flavorid, name=name, memory_mb=ram, root_gb=disk, vcpus=vcpus,
                    ephemeral_gb=0, swap=0, rxtx_factor=1.0, is_public=True, disabled=False,
                    extra_specs={}, created_at=utcnow()))
        try:
            self.db.transaction(txn)
        except sa.exc.IntegrityError:
            pass
