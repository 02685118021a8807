"""The object storage service (Swift v1): wiring, capabilities and the expirer."""

from __future__ import annotations

import asyncio
import logging

from pocketstack.common.db import Database
from pocketstack.common.service import Service
from pocketstack.objectstore import api, models
from pocketstack.objectstore.core import ObjectStore

LOG = logging.getLogger(__name__)


class ObjectStoreService(Service):
    name = "objectstore"
    service_type = "object-store"
    catalog_name = "swift"
    prefix = "/object-store"
    endpoint_suffix = "/v1/AUTH_$(project_id)s"

    def __init__(self, cloud):
        super().__init__(cloud)
        self.db = Database(self.conf, "objectstore", models.metadata,
                           migrations="pocketstack.objectstore:migrations",
                           head=models.SCHEMA_HEAD)
        self.store = ObjectStore(self.conf, self.db)
        self._expirer: asyncio.Task | None = None

    @property
    def validator(self):
        return self.cloud.services["identity"].validator

    def app(self):
        return api.build(self).app()

    def start(self) -> None:
        self.db.sync()
        self.store.setup()

    async def started(self) -> None:
        self._expirer = asyncio.get_running_loop().create_task(self._expire_forever())

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(self.conf.objectstore.expirer_interval)
            try:
                await self.store.expire()
            except Exception:
                LOG.exception("object expirer sweep failed")

    def stop(self) -> None:
        if self._expirer is not None:
            self._expirer.cancel()
        self.store.stop()
        self.db.dispose()

    def capabilities(self) -> dict:
        o = self.conf.objectstore
        return {
            "swift": {
                "version": "2.38.0", "max_file_size": o.max_file_size,
                "max_meta_name_length": o.max_meta_name_length,
                "max_meta_value_length": o.max_meta_value_length,
                "max_meta_count": o.max_meta_count,
                "max_meta_overall_size": o.max_meta_overall_size,
                "container_listing_limit": o.container_listing_limit,
                "account_listing_limit": o.account_listing_limit,
                "max_account_name_length": 256, "max_container_name_length": 256,
                "max_object_name_length": 1024,
                "extra_header_count": 0, "allow_account_management": False,
                "account_autocreate": True,
                "valid_api_versions": ["v1"],
                "policies": [{"name": "Policy-0", "aliases": "Policy-0", "default": True}],
            },
            "slo": {"max_manifest_segments": o.max_manifest_segments,
                    "max_manifest_size": o.max_manifest_size, "min_segment_size": 1,
                    "yield_frequency": 10, "allow_async_delete": False},
            "dlo": {"max_segments": o.dlo_max_segments},
            "tempurl": {"methods": list(o.tempurl_methods),
                        "allowed_digests": list(o.tempurl_digests),
                        "incoming_remove_headers": ["x-timestamp"],
                        "incoming_allow_headers": [],
                        "outgoing_remove_headers": ["x-object-meta-*"],
                        "outgoing_allow_headers": ["x-object-meta-public-*"]},
            "formpost": {"allowed_digests": list(o.tempurl_digests)},
            "bulk_delete": {"max_deletes_per_request": o.max_deletes_per_request,
                            "max_failed_deletes": 1000},
            "container_quotas": {},
            "account_quotas": {},
            "versioned_writes": {"allowed_flags": ["x-versions-location",
                                                   "x-history-location"]},
            "keystoneauth": {},
        }
