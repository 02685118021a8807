"""Configuration: one oslo.config object per cloud, options grouped by section.

Each service keeps its own options in ``<service>/options.py`` (a ``register``
function); this module owns the shared ``[DEFAULT]`` and ``[database]``
sections and loads everything into a fresh ``ConfigOpts`` so several clouds
can live in one process (the test harness relies on that).
"""

from __future__ import annotations

import importlib
import os

from oslo_config import cfg

SERVICE_OPTION_MODULES = [
    "pocketstack.identity.options",
    "pocketstack.objectstore.options",
    "pocketstack.image.options",
    "pocketstack.network.options",
    "pocketstack.compute.options",
    "pocketstack.volume.options",
]

default_opts = [
    cfg.StrOpt("state_path", default=os.path.expanduser("~/.local/share/pocketstack"),
               help="Directory holding all state: databases, keys, objects, images, volumes."),
    cfg.StrOpt("host", default=os.uname().nodename, help="Name of this host."),
    cfg.HostAddressOpt("bind_host", default="127.0.0.1", help="Address the API listens on."),
    cfg.PortOpt("bind_port", default=8780, help="Port every API is served on (path prefixes)."),
    cfg.StrOpt("public_endpoint", default=None,
               help="Base URL clients use to reach the APIs; defaults to http://bind_host:bind_port."),
    cfg.StrOpt("region_name", default="RegionOne", help="Region the catalog advertises."),
    cfg.ListOpt("enabled_services",
                default=["identity", "objectstore", "image", "network", "compute", "volume"],
                help="Services this process runs."),
    cfg.BoolOpt("debug", default=False, help="Log at DEBUG level."),
    cfg.IntOpt("max_request_body_size", default=114688,
               help="Largest JSON request body accepted, in bytes."),
]

database_opts = [
    cfg.StrOpt("connection", default=None, secret=True,
               help="SQLAlchemy URL. '{service}' in it is replaced by the service name, "
                    "giving each service its own database; without it all services share "
                    "one. Default: a SQLite file per service under state_path."),
    cfg.IntOpt("max_pool_size", default=10, help="Connections kept per service engine."),
    cfg.IntOpt("max_retries", default=10, help="Retries of a transaction on deadlock."),
]

bootstrap_opts = [
    cfg.StrOpt("admin_username", default="admin"),
    cfg.StrOpt("admin_password", default=None, secret=True,
               help="Password of the bootstrap admin; generated and saved in state_path when unset."),
    cfg.StrOpt("admin_project_name", default="admin"),
]


def _register_dataplane_opts(conf: cfg.ConfigOpts) -> None:
    """Options of the data plane (container driver, Linux bridge agents)."""
    for name in ("pocketstack.compute.virt.container", "pocketstack.network.drivers.linuxbridge",
                 "pocketstack.guest.builder", "pocketstack.network.drivers.routing",
                 "pocketstack.network.drivers.openvswitch"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not name.startswith(exc.name or "?"):
                raise
            continue
        module.register_opts(conf)


def register_opts(conf: cfg.ConfigOpts) -> None:
    from pocketstack.common import policy

    conf.register_opts(default_opts)
    policy.register_opts(conf)
    from pocketstack import rootwrap

    rootwrap.register_opts(conf)
    _register_dataplane_opts(conf)
    conf.register_opts(database_opts, group="database")
    conf.register_opts(bootstrap_opts, group="bootstrap")
    for name in SERVICE_OPTION_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not name.startswith(exc.name or "?"):
                raise
            continue
        module.register(conf)


def load(config_files: list[str] | None = None, overrides: dict | None = None,
         args: list[str] | None = None) -> cfg.ConfigOpts:
    """Build a ConfigOpts with every option registered.

    ``overrides`` maps "group.option" (or "option" for DEFAULT) to a value.
    """
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf(args or [], project="pocketstack", default_config_files=config_files or [],
         default_config_dirs=[], validate_default_values=True)
    for key, value in (overrides or {}).items():
        group, _, name = key.rpartition(".")
        conf.set_override(name, value, group=group or None)
    return conf


def public_url(conf: cfg.ConfigOpts) -> str:
    if conf.public_endpoint:
        return conf.public_endpoint.rstrip("/")
    host = conf.bind_host
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{conf.bind_port}"
