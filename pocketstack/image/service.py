"""The image service (Glance v2): wiring, store choice and its catalog entry."""

from __future__ import annotations

import asyncio
import os

from pocketstack.common.db import Database
from pocketstack.common.policy import Policy
from pocketstack.common.service import Service
from pocketstack.image import api, core, models, policies
from pocketstack.image.stores.base import Store
from pocketstack.image.stores.file import FileStore


class ImageService(Service):
    name = "image"
    service_type = "image"
    catalog_name = "glance"
    prefix = "/image"
    endpoint_suffix = ""

    def __init__(self, cloud):
        super().__init__(cloud)
        conf = self.conf
        self.db = Database(conf, "image", models.metadata,
                           migrations="pocketstack.image:migrations", head=models.SCHEMA_HEAD)
        self.policy = Policy(conf, "image", policies.RULES)
        staging = conf.node_staging_uri or "file://" + os.path.join(conf.state_path,
                                                                      "images-staging")
        self.manager = core.ImageManager(conf, self.db, self.make_store(), self.policy,
                                         staging.removeprefix("file://"))

    def make_store(self) -> Store:
        opts = self.conf.glance_store
        if opts.default_store == "objectstore":
            from pocketstack.image.stores.objectstore import ObjectStore

            return ObjectStore(self.cloud, opts.objectstore_container)
        return FileStore(opts.filesystem_store_datadir
                         or os.path.join(self.conf.state_path, "images"))

    def app(self):
        return api.build(self).app()

    def start(self) -> None:
        self.db.sync()
        self.manager.recover()

    async def started(self) -> None:
        store = self.manager.store
        if hasattr(store, "loop"):  # the objectstore store deletes from worker threads
            store.loop = asyncio.get_running_loop()

    def stop(self) -> None:
        self.db.dispose()
