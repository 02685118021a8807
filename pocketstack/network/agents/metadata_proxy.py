"""The metadata proxy: runs in a network's DHCP namespace on 169.254.169.254:80.

    python -m pocketstack.network.agents.metadata_proxy --network-id=<id>
        --socket=<metadata agent socket> --pid-file=<file> --bind=169.254.169.254:80

Started through rootwrap (as root, to bind port 80 in the namespace); once
bound it drops to the owner of the agent's socket directory and detaches.
Each request goes to the metadata agent over its unix socket with the
caller's address and the network id added (``X-Forwarded-For``,
``X-Neutron-Network-ID``); headers a guest sends under those names, or
``X-Instance-ID*``/``X-Tenant-ID``, are dropped first. It exits by itself
when its pid file is removed (that is how the agent stops it: no signal,
so no privilege needed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

MAX_HEAD = 32 * 1024
MAX_BODY = 64 * 1024
DROP = ("x-forwarded-for", "x-neutron-network-id", "x-neutron-router-id", "x-instance-id",
        "x-instance-id-signature", "x-tenant-id", "connection", "proxy-connection",
        "keep-alive")


async def handle(reader, writer, network_id: str, socket_path: str,
                 router_id: str | None = None) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if len(head) > MAX_HEAD:
            raise ValueError("head too large")
        lines = head.decode("latin-1").split("\r\n")
        request_line = lines[0]
        method, target, _version = request_line.split(" ", 2)
        headers = []
        length = 0
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            lname = name.strip().lower()
            if lname in DROP:
                continue
            if lname == "content-length":
                length = int(value.strip())
                if length > MAX_BODY:
                    raise ValueError("body too large")
            headers.append(f"{name.strip()}: {value.strip()}")
        body = await reader.readexactly(length) if length else b""
        peer = writer.get_extra_info("peername")[0]
        where = (f"X-Neutron-Router-ID: {router_id}" if router_id  # in a router namespace
                 else f"X-Neutron-Network-ID: {network_id}")
        headers += [f"X-Forwarded-For: {peer}", where,
                    "Connection: close"]
        up_reader, up_writer = await asyncio.open_unix_connection(socket_path)
        up_writer.write(f"{method} {target} HTTP/1.1\r\n".encode("latin-1")
                        + "\r\n".join(headers).encode("latin-1") + b"\r\n\r\n" + body)
        await up_writer.drain()
        while True:
            chunk = await up_reader.read(65536)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
        up_writer.close()
    except (TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close"
                     b"\r\n\r\n")
    except OSError:
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")
    finally:
        try:
            await writer.drain()
            writer.close()
        except OSError:
            pass


async def watch(pid_file: str, stop: asyncio.Event) -> None:
    me = str(os.getpid())
    while True:
        await asyncio.sleep(1)
        try:
            with open(pid_file) as f:
                if f.read().strip() != me:
                    break
        except FileNotFoundError:
            break
    stop.set()


async def serve(sock: socket.socket, args) -> None:
    stop = asyncio.Event()
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, args.network_id, args.socket, args.router_id), sock=sock,
        limit=MAX_HEAD)
    watcher = asyncio.create_task(watch(args.pid_file, stop))
    await stop.wait()
    watcher.cancel()
    server.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--network-id")
    where.add_argument("--router-id")  # the L3 agent's proxy: the router's networks
    p.add_argument("--socket", required=True)
    p.add_argument("--pid-file", required=True)
    p.add_argument("--bind", default="169.254.169.254:80")
    args = p.parse_args(argv)
    host, _, port = args.bind.rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(128)
    sock.setblocking(False)
    # drop privileges to the agent's user (the owner of its socket directory)
    owner = os.stat(os.path.dirname(os.path.abspath(args.socket)))
    if os.geteuid() == 0 and owner.st_uid != 0:
        os.setgroups([])
        os.setresgid(owner.st_gid, owner.st_gid, owner.st_gid)
        os.setresuid(owner.st_uid, owner.st_uid, owner.st_uid)
    # detach: the caller (rootwrap) returns once the pid file is written
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    with open(args.pid_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(args.pid_file + ".tmp", args.pid_file)
    asyncio.run(serve(sock, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
