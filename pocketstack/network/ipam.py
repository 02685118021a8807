"""IP address management: allocation pools kept as free ranges.

Each subnet's free addresses are the rows of ``network_ip_range``: disjoint
[first, last] ranges (the pools minus the allocated addresses). Taking an
address reads the lowest range with a row lock (``FOR UPDATE``; on SQLite the
write transaction already holds the database lock), shrinks or removes it and
inserts the allocation, whose (subnet, ip) primary key makes a duplicate
impossible even if two requests raced past the range. All of it happens in
the caller's transaction, so a failed request gives everything back.

The cost of an allocation does not depend on how full the subnet is: one
indexed read of the first range, one update, one insert.
"""

from __future__ import annotations

import ipaddress

import sqlalchemy as sa

from pocketstack.network import models

R = models.ip_range
A = models.ip_allocation


def hexip(value: int) -> str:
    return f"{value:032x}"


def network_of(subnet: dict):
    return ipaddress.ip_network(subnet["cidr"])


def default_pools(net, gateway: str | None) -> list[tuple[int, int]]:
    """The whole subnet minus its network address (and broadcast for IPv4) and gateway."""
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
    if net.version == 4 and net.prefixlen >= 31:
        first, last = int(net.network_address), int(net.broadcast_address)
    if first > last:
        return []
    ranges = [(first, last)]
    if gateway is not None:
        ranges = subtract(ranges, int(ipaddress.ip_address(gateway)))
    return ranges


def subtract(ranges: list[tuple[int, int]], ip: int) -> list[tuple[int, int]]:
    out = []
    for first, last in ranges:
        if first <= ip <= last:
            if first < ip:
                out.append((first, ip - 1))
            if ip < last:
                out.append((ip + 1, last))
        else:
            out.append((first, last))
    return out


def pools_to_ints(pools: list[dict]) -> list[tuple[int, int]]:
    return [(int(ipaddress.ip_address(p["start"])), int(ipaddress.ip_address(p["end"])))
            for p in pools]


def in_pools(pools: list[dict], ip: int) -> bool:
    return any(first <= ip <= last for first, last in pools_to_ints(pools))


def rebuild_ranges(s, subnet: dict) -> None:
    """Set the free ranges of a subnet to its pools minus its allocated addresses."""
    sid = subnet["id"]
    s.execute(R.delete().where(R.c.subnet_id == sid))
    taken = sorted(int(ipaddress.ip_address(ip)) for ip in s.execute(
        sa.select(A.c.ip_address).where(A.c.subnet_id == sid)).scalars())
    rows = []
    for first, last in sorted(pools_to_ints(subnet["allocation_pools"])):
        start = first
        for ip in taken:
            if ip < start or ip > last:
                continue
            if start < ip:
                rows.append((start, ip - 1))
            start = ip + 1
        if start <= last:
            rows.append((start, last))
    if rows:
        s.execute(R.insert(), [{"subnet_id": sid, "first_ip": hexip(a), "last_ip": hexip(b)}
                               for a, b in rows])


_FIRST_RANGE = (sa.select(R.c.id, R.c.first_ip, R.c.last_ip)
                .where(R.c.subnet_id == sa.bindparam("subnet_id"))
                .order_by(R.c.first_ip).limit(1).with_for_update())
_DROP_RANGE = R.delete().where(R.c.id == sa.bindparam("range_id"))
_SHRINK_RANGE = R.update().where(R.c.id == sa.bindparam("range_id")).values(
    first_ip=sa.bindparam("new_first"))


def take_any(s, subnet_id: str) -> int | None:
    """Take the lowest free address of a subnet's pools, or None when they are full."""
    params = {"subnet_id": subnet_id}
    row = s.execute(_FIRST_RANGE, params).first()
    if row is None:
        # Under READ COMMITTED a locked row that another transaction removed
        # reads as "nothing": look again with a fresh snapshot before giving up.
        row = s.execute(_FIRST_RANGE, params).first()
        if row is None:
            return None
    ip = int(row.first_ip, 16)
    if row.first_ip == row.last_ip:
        s.execute(_DROP_RANGE, {"range_id": row.id})
    else:
        s.execute(_SHRINK_RANGE, {"range_id": row.id, "new_first": hexip(ip + 1)})
    return ip


def take_specific(s, subnet_id: str, ip: int) -> None:
    """Remove one address from the free ranges (it may lie outside every pool)."""
    h = hexip(ip)
    row = s.execute(sa.select(R.c.id, R.c.first_ip, R.c.last_ip)
                    .where(R.c.subnet_id == subnet_id, R.c.first_ip <= h, R.c.last_ip >= h)
                    .with_for_update()).first()
    if row is None:
        return
    first, last = int(row.first_ip, 16), int(row.last_ip, 16)
    if first == last:
        s.execute(R.delete().where(R.c.id == row.id))
        return
    if first == ip:
        s.execute(R.update().where(R.c.id == row.id).values(first_ip=hexip(ip + 1)))
    elif last == ip:
        s.execute(R.update().where(R.c.id == row.id).values(last_ip=hexip(ip - 1)))
    else:
        s.execute(R.update().where(R.c.id == row.id).values(last_ip=hexip(ip - 1)))
        s.execute(R.insert().values(subnet_id=subnet_id, first_ip=hexip(ip + 1),
                                    last_ip=row.last_ip))


def give_back(s, subnet: dict, ip: int) -> None:
    """Return an address to the free ranges if it lies in a pool (merging neighbours)."""
    if not in_pools(subnet["allocation_pools"], ip):
        return
    sid = subnet["id"]
    before = s.execute(sa.select(R.c.id, R.c.first_ip).where(
        R.c.subnet_id == sid, R.c.last_ip == hexip(ip - 1)).with_for_update()).first()
    after = s.execute(sa.select(R.c.id, R.c.last_ip).where(
        R.c.subnet_id == sid, R.c.first_ip == hexip(ip + 1)).with_for_update()).first()
    # Neighbours only merge inside one pool.
    pool = next(p for p in pools_to_ints(subnet["allocation_pools"]) if p[0] <= ip <= p[1])
    if before is not None and int(before.first_ip, 16) < pool[0]:
        before = None
    if after is not None and int(after.last_ip, 16) > pool[1]:
        after = None
    if before is not None and after is not None:
        s.execute(R.update().where(R.c.id == before.id).values(last_ip=after.last_ip))
        s.execute(R.delete().where(R.c.id == after.id))
    elif before is not None:
        s.execute(R.update().where(R.c.id == before.id).values(last_ip=hexip(ip)))
    elif after is not None:
        s.execute(R.update().where(R.c.id == after.id).values(first_ip=hexip(ip)))
    else:
        s.execute(R.insert().values(subnet_id=sid, first_ip=hexip(ip), last_ip=hexip(ip)))


def eui64(cidr: str, mac: str) -> str:
    """The SLAAC address of a MAC in an IPv6 /64."""
    net = ipaddress.ip_network(cidr)
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = octets[:3] + [0xFF, 0xFE] + octets[3:]
    value = 0
    for octet in iid:
        value = (value << 8) | octet
    return str(ipaddress.ip_address(int(net.network_address) | value))


def is_auto_address(subnet: dict) -> bool:
    return subnet["ip_version"] == 6 and subnet["ipv6_address_mode"] in (
        "slaac", "dhcpv6-stateless")
