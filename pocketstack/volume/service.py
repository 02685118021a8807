"""The block storage service (Cinder v3): wiring, backends and its catalog entry."""

from __future__ import annotations

import asyncio
import re

from pocketstack.common.db import Database
from pocketstack.common.policy import Policy
from pocketstack.common.service import Service
from pocketstack.volume import api, manager, models, policies

# /v3/<project_id>/... (URLs before 3.67 carry the project): served as /v3/...
_PROJECT_IN_PATH = re.compile(r"^/v3/([0-9a-fA-F]{32}|[0-9a-fA-F-]{36})(/|$)")


class ProjectPathMiddleware:
    """Accept Cinder's ``/v3/{project_id}/...`` URLs as well as the project-less ones."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path = scope["path"]
            root = scope.get("root_path", "")
            inner = path[len(root):] if root and path.startswith(root) else path
            match = _PROJECT_IN_PATH.match(inner)
            if match:
                rest = "/v3" + inner[match.end(1):]
                scope = dict(scope, path=(root + rest) if path.startswith(root) else rest,
                             raw_path=((root + rest) if path.startswith(root) else rest)
                             .encode())
        await self.app(scope, receive, send)


class VolumeService(Service):
    name = "volume"
    service_type = "block-storage"
    catalog_name = "cinderv3"
    prefix = "/volume"
    endpoint_suffix = "/v3"

    def __init__(self, cloud):
        super().__init__(cloud)
        conf = self.conf
        self.db = Database(conf, "volume", models.metadata,
                           migrations="pocketstack.volume:migrations", head=models.SCHEMA_HEAD)
        self.policy = Policy(conf, "volume", policies.RULES)
        self.manager = manager.VolumeManager(conf, self.db, cloud)

    def app(self):
        return ProjectPathMiddleware(api.build(self).app())

    def start(self) -> None:
        self.db.sync()
        self.manager.start()
        compute = self.cloud.services.get("compute")
        if compute is not None:
            from pocketstack.volume.compute_api import ComputeVolumeAPI

            compute.volume_api = ComputeVolumeAPI(self.manager)

    async def started(self) -> None:
        self.manager.loop = asyncio.get_running_loop()

    def stop(self) -> None:
        self.manager.stop()
        self.db.dispose()
