"""Compute API microversions: negotiation and the headers that carry them."""

from __future__ import annotations

import re

from pocketstack.common import errors

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 100)
SERVICE = "compute"
_PATTERN = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


def text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def parse(value: str) -> tuple[int, int]:
    value = value.strip()
    if value.lower() == "latest":
        return MAX_VERSION
    match = _PATTERN.match(value)
    if not match:
        raise errors.BadRequest(f"API Version String {value} is of invalid format. Must "
                                "be of format MajorNum.MinorNum.")
    return int(match.group(1)), int(match.group(2))


def requested(headers) -> tuple[int, int]:
    """The version a request asks for (2.1 when it names none); 406 outside the range."""
    raw = None
    header = headers.get("openstack-api-version")
    if header:
        for item in header.split(","):
            service, _, value = item.strip().partition(" ")
            if service.lower() == SERVICE and value:
                raw = value
    if raw is None:
        raw = headers.get("x-openstack-nova-api-version")
    if raw is None:
        return MIN_VERSION
    version = parse(raw)
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise errors.NotAcceptable(
            f"Version {text(version)} is not supported by the API. Minimum is "
            f"{text(MIN_VERSION)} and maximum is {text(MAX_VERSION)}.")
    return version


def headers_for(version: tuple[int, int]) -> dict[str, str]:
    value = text(version)
    return {"OpenStack-API-Version": f"{SERVICE} {value}",
            "X-OpenStack-Nova-API-Version": value,
            "Vary": "X-OpenStack-Nova-API-Version"}
