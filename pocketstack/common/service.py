"""What every service of the cloud provides to the all-in-one runner."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pocketstack.cloud import Cloud


class Service:
    """A service: its API (mounted at ``prefix``), catalog entries and lifecycle.

    ``start`` runs before the API takes requests (schema sync, bootstrap);
    ``stop`` when the cloud shuts down. Both are synchronous and idempotent.
    """

    name: str = ""  # config/package name, e.g. "network"
    service_type: str = ""  # catalog type, e.g. "network"
    catalog_name: str = ""  # catalog name, e.g. "neutron"
    prefix: str = ""  # URL prefix, e.g. "/networking"
    endpoint_suffix: str = ""  # appended to the prefix in the catalog, e.g. "/v2.1"
    extra_prefixes: tuple[str, ...] = ()  # more URL prefixes it serves (``extra_app``)

    def __init__(self, cloud: Cloud):
        self.cloud = cloud
        self.conf = cloud.conf

    def app(self):
        raise NotImplementedError

    def extra_app(self, prefix: str):
        """The app served at ``prefix``, one of ``extra_prefixes``."""
        raise NotImplementedError

    def start(self) -> None:
        pass

    async def started(self) -> None:
        """Called on the event loop once the server runs (background tasks)."""

    def stop(self) -> None:
        pass

    def endpoint_url(self) -> str:
        return self.cloud.public_url + self.prefix + self.endpoint_suffix
