"""The networking service: wiring, schema and its catalog entry."""

from __future__ import annotations

import logging

from pocketstack.common.db import Database
from pocketstack.common.policy import Policy
from pocketstack.common.service import Service
from pocketstack.network import api, core, drivers, models, policies
from pocketstack.network.drivers import base as _base  # noqa: F401 - drivers.base below

LOG = logging.getLogger(__name__)


class NetworkService(Service):
    name = "network"
    service_type = "network"
    catalog_name = "neutron"
    prefix = "/networking"
    endpoint_suffix = ""

    def __init__(self, cloud):
        super().__init__(cloud)
        conf = self.conf
        self.db = Database(conf, "network", models.metadata,
                           migrations="pocketstack.network:migrations", head=models.SCHEMA_HEAD)
        self.policy = Policy(conf, "network", policies.RULES,
                             denied=lambda action: f"({action}) is disallowed by policy")
        self.driver = drivers.load(conf)
        self.manager = core.NetworkManager(conf, self.db, self.driver, self.policy)

    @property
    def validator(self):
        return self.cloud.services["identity"].validator

    def app(self):
        return api.build(self).app()

    def start(self) -> None:
        self.db.sync()
        self.driver.start(self.manager)
        if type(self.driver).resync is not drivers.base.NetworkDriver.resync:
            self.driver.resync(self.manager.full_state())

    def stop(self) -> None:
        try:
            self.driver.stop()
        finally:
            self.db.dispose()
