"""The `pocketstack` command."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time

from pocketstack import config

DEFAULT_CONFIG_FILES = ["/etc/pocketstack/pocketstack.conf"]


def _load(args) -> config.cfg.ConfigOpts:
    files = args.config_file or [f for f in DEFAULT_CONFIG_FILES if os.path.exists(f)]
    if os.environ.get("POCKETSTACK_CONF") and not args.config_file:
        files = [os.environ["POCKETSTACK_CONF"]]
    overrides = {}
    if getattr(args, "state_path", None):
        overrides["state_path"] = os.path.abspath(args.state_path)
    if getattr(args, "port", None) is not None:
        overrides["bind_port"] = args.port
    if getattr(args, "host", None):
        overrides["bind_host"] = args.host
    if getattr(args, "debug", False):
        overrides["debug"] = True
    return config.load(files, overrides)


def _logging(conf) -> None:
    logging.basicConfig(level=logging.DEBUG if conf.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


def cmd_up(args) -> int:
    started = time.monotonic()
    conf = _load(args)
    _logging(conf)
    from pocketstack.identity import passwords

    passwords.start_admin_hash(conf)  # a fresh state's bcrypt overlaps the imports below
    from pocketstack import cloud as cloud_mod
    from pocketstack.clouds_yaml import write_clouds_yaml
    from pocketstack.guest import integration as guest

    sock = cloud_mod.bind_socket(conf)
    cloud = cloud_mod.Cloud(conf)
    server = cloud_mod.Server(cloud, sock, access_log=conf.debug)

    def stop_serving(*_):
        server.server.should_exit = True

    # Identity serves at once; the other services start behind it (guest image:
    # built once, cached, registered in the background; never delays `up`).
    cloud.start_in_background(on_started=lambda: guest.register_in_background(cloud),
                              on_failure=stop_serving)
    paths = write_clouds_yaml(cloud, user_file=not args.no_user_clouds_yaml)
    identity = cloud.services["identity"]
    print(banner(cloud, identity.admin_password(), paths, time.monotonic() - started), flush=True)
    signal.signal(signal.SIGTERM, stop_serving)
    try:
        server.run()
    finally:
        cloud.stop()
    if cloud.start_error is not None:
        raise cloud.start_error
    print("pocketstack stopped.", flush=True)
    return 0


def banner(cloud, password: str, paths: list[str], elapsed: float) -> str:
    services = ", ".join(f"{s.service_type} {s.prefix}" for s in cloud.services.values())
    return "\n".join([
        f"pocketstack is up at {cloud.public_url} ({elapsed:.2f} s)",
        f"  services:   {services}",
        f"  state:      {cloud.conf.state_path}",
        f"  admin:      user 'admin', password '{password}', project 'admin', domain 'Default'",
        f"  clouds.yaml: {', '.join(paths)} (cloud 'pocketstack')",
        "  try:       openstack --os-cloud pocketstack token issue",
        "  stop:      Ctrl-C",
    ])


def cmd_db_sync(args) -> int:
    conf = _load(args)
    _logging(conf)
    from pocketstack.cloud import Cloud

    cloud = Cloud(conf)
    for service in cloud.services.values():
        db = getattr(service, "db", None)
        if db is not None:
            db.sync()
            print(f"{service.name}: schema at {db.current_revision()}")
    cloud.stop()
    return 0


def cmd_network_migrate(args) -> int:
    """Stop the cloud first (its agents would converge back), run this, then set
    ``[network] l2_driver`` to the new back end and start it again."""
    conf = _load(args)
    _logging(conf)
    from pocketstack.cloud import Cloud
    from pocketstack.network.drivers.migrate import migrate_from_service

    cloud = Cloud(conf)
    try:
        service = cloud.services["network"]
        service.db.sync()
        moved = migrate_from_service(service, args.to)
    finally:
        cloud.stop()
    print(f"moved {moved['networks']} networks and {moved['devices']} ports to {args.to}; "
          f"now set [network] l2_driver = {args.to} and start the cloud")
    return 0


def cmd_fernet(args) -> int:
    conf = _load(args)
    from pocketstack.identity.fernet import KeyRepository

    repo = KeyRepository(conf.fernet_tokens.key_repository
                         or os.path.join(conf.state_path, "fernet-keys"),
                         conf.fernet_tokens.max_active_keys)
    if args.action == "setup":
        repo.setup()
        print(f"Fernet keys ready in {repo.path}")
    else:
        repo.setup()
        index = repo.rotate()
        print(f"Rotated: key {index} is now primary in {repo.path}")
    return 0


def cmd_config_sample(args) -> int:
    from pocketstack.config_sample import render

    text = render()
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_image_build(args) -> int:
    """Build the guest image (cached under the state path unless --output)."""
    import json

    from pocketstack.guest import builder

    if args.output:
        info = builder.build(os.path.abspath(args.output), args.format, args.size_mb,
                             debs_dir=args.debs_dir)
    else:
        conf = _load(args)
        path = builder.cached_image(conf.state_path, args.format, args.size_mb,
                                    debs_dir=args.debs_dir or conf.guest_image.debs_dir)
        with open(path + ".json") as f:
            info = json.load(f)
    print(json.dumps(info, indent=1))
    return 0


def cmd_compute_agent(args) -> int:
    """Compute agents without a database: they reach the conductor over the bus."""
    conf = _load(args)
    _logging(conf)
    from pocketstack.compute import agent

    return agent.serve(conf)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pocketstack",
                                description="An OpenStack-compatible cloud in one package.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-file", action="append", help="oslo.config file (repeatable)")
    common.add_argument("--state-path", help="directory holding all state")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", parents=[common], help="start the whole cloud")
    up.add_argument("--port", type=int, help="API port (default 8780)")
    up.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--debug", action="store_true")
    up.add_argument("--no-user-clouds-yaml", action="store_true",
                    help="write clouds.yaml only under the state path")
    up.set_defaults(func=cmd_up)

    manage = sub.add_parser("manage", help="administrative tasks")
    msub = manage.add_subparsers(dest="area", required=True)
    db = msub.add_parser("db", help="database schema")
    dbsub = db.add_subparsers(dest="action", required=True)
    dbsub.add_parser("sync", parents=[common]).set_defaults(func=cmd_db_sync)
    fernet = msub.add_parser("fernet", help="Fernet token keys")
    fsub = fernet.add_subparsers(dest="action", required=True)
    fsub.add_parser("setup", parents=[common]).set_defaults(func=cmd_fernet)
    fsub.add_parser("rotate", parents=[common]).set_defaults(func=cmd_fernet)
    network = msub.add_parser("network", help="the networking data plane of this host")
    nsub = network.add_subparsers(dest="action", required=True)
    migrate = nsub.add_parser("migrate-backend", parents=[common],
                              help="re-plug this host's ports from the configured L2 back end "
                                   "to the other one (instances keep running)")
    migrate.add_argument("--to", required=True, choices=["openvswitch", "linuxbridge"])
    migrate.set_defaults(func=cmd_network_migrate)

    image = sub.add_parser("image", help="the guest image")
    isub = image.add_subparsers(dest="action", required=True)
    build = isub.add_parser("build", parents=[common],
                            help="build the bootable guest image (busybox + dropbear, ext4 "
                                 "root file system) from Debian packages")
    build.add_argument("--output", help="write the image here (default: cached in the state "
                                        "path, where `up` registers it from)")
    build.add_argument("--format", choices=["raw", "qcow2"], default="raw")
    build.add_argument("--size-mb", type=int, default=64)
    build.add_argument("--debs-dir", help="build from these .deb files (no download)")
    build.set_defaults(func=cmd_image_build)

    compute_agent = sub.add_parser(
        "compute-agent", parents=[common],
        help="run this host's compute agent(s) (no database: [DEFAULT] transport_url "
             "names the bus the conductor listens on)")
    compute_agent.set_defaults(func=cmd_compute_agent)

    sample = sub.add_parser("config-sample", help="print a sample configuration file")
    sample.add_argument("--output")
    sample.set_defaults(func=cmd_config_sample)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
