"""Block storage microversions: ``OpenStack-API-Version: volume 3.x``.

Only behaviour this service implements is announced; MAX is the newest
version whose every change up to it that matters to our resources is here
(see docs in api.py for the version-gated fields).
"""

from __future__ import annotations

import re

from pocketstack.common import errors

MIN = (3, 0)
MAX = (3, 50)
HEADER = "OpenStack-API-Version"
LEGACY_HEADER = "X-OpenStack-Volume-API-Version"


def text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def parse(headers) -> tuple[int, int]:
    """The requested version (MIN when none is asked for); 400/406 as Cinder answers."""
    raw = None
    value = headers.get(HEADER.lower())
    if value:
        for item in value.split(","):
            parts = item.strip().split()
            if len(parts) == 2 and parts[0].lower() in ("volume", "block-storage"):
                raw = parts[1]
    if raw is None:
        raw = headers.get(LEGACY_HEADER.lower())
    if raw is None:
        return MIN
    if raw.lower() == "latest":
        return MAX
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", raw)
    if not match:
        raise errors.BadRequest(f"API Version String {raw} is of invalid format. Must be of "
                                "format MajorNum.MinorNum.")
    version = (int(match.group(1)), int(match.group(2)))
    if version < MIN or version > MAX:
        raise errors.NotAcceptable(f"Version {raw} is not supported by the API. Minimum is "
                                   f"{text(MIN)} and maximum is {text(MAX)}.")
    return version
