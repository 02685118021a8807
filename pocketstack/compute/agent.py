"""A compute agent process: ``python -m pocketstack.compute.agent --config-file f``.

It needs only ``[DEFAULT] transport_url`` (RabbitMQ), ``host`` and the
driver's options; it never reads ``[database]`` and opens no database: all
state comes from, and goes to, the conductor over the bus. ``[fake] hosts =
N`` runs N simulated hosts (``<host_prefix>1..N``) in this one process;
with ``hosts = 0`` it runs one agent named ``[DEFAULT] host``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from pocketstack import config
from pocketstack.common import rpc


def agent_hosts(conf) -> list[str]:
    if conf.fake.hosts:
        return [f"{conf.fake.host_prefix}{i + 1}" for i in range(conf.fake.hosts)]
    return [conf.host]


def run(conf, stop: threading.Event) -> None:
    from pocketstack.compute.manager import ComputeManager

    transport = rpc.get_transport(conf)
    agents = [ComputeManager(conf, host, transport) for host in agent_hosts(conf)]
    for agent in agents:
        agent.start()
    print(f"compute agents up: {', '.join(a.host for a in agents)}", flush=True)
    stop.wait()
    for agent in agents:
        agent.stop()
    rpc.release_transport(conf)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pocketstack-compute-agent")
    parser.add_argument("--config-file", action="append", default=[])
    args = parser.parse_args(argv)
    conf = config.load(args.config_file)
    logging.basicConfig(level=logging.DEBUG if conf.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return serve(conf)


def serve(conf) -> int:
    if not conf.transport_url:
        print("[DEFAULT] transport_url must name the message bus the conductor listens on "
              "(e.g. rabbit://guest:guest@127.0.0.1:5672/)", flush=True)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(conf, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
