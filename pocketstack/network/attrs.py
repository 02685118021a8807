"""Attribute converters and validators for request bodies (Neutron's rules).

Each converter takes the client's value and returns the stored one, or
raises ``BadRequest`` ("Invalid input for <attr>. Reason: ...").
"""

from __future__ import annotations

import ipaddress
import re
import uuid

from pocketstack.common import errors

MISSING = object()
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                     r"[0-9a-fA-F]{12}$")
MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


class Invalid(Exception):
    """A value a converter rejects; the caller names the attribute."""


def bad_input(attr: str, reason: str) -> errors.BadRequest:
    return errors.BadRequest(f"Invalid input for {attr}. Reason: {reason}.",
                             kind="HTTPBadRequest")


def invalid_input(message: str) -> errors.BadRequest:
    return errors.BadRequest(f"Invalid input for operation: {message}", kind="InvalidInput")


def string(max_len: int = 255, nullable: bool = False):
    def conv(value):
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise Invalid(f"'{value}' is not a valid string")
        if max_len and len(value) > max_len:
            raise Invalid(f"'{value}' exceeds maximum length of {max_len}")
        return value
    return conv


def boolean(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on", "t", "y"):
            return True
        if lowered in ("false", "0", "no", "off", "f", "n"):
            return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise Invalid(f"'{value}' cannot be converted to boolean")


def integer(minimum: int | None = None, maximum: int | None = None, nullable: bool = False):
    def conv(value):
        if value is None and nullable:
            return None
        if isinstance(value, bool):
            raise Invalid(f"'{value}' is not an integer")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise Invalid(f"'{value}' is not an integer") from None
        if isinstance(value, float) and value != number:
            raise Invalid(f"'{value}' is not an integer")
        if minimum is not None and number < minimum:
            raise Invalid(f"'{number}' is too small - must be at least '{minimum}'")
        if maximum is not None and number > maximum:
            raise Invalid(f"'{number}' is too large - must be no larger than '{maximum}'")
        return number
    return conv


def uuid_str(value):
    if not isinstance(value, str) or not UUID_RE.match(value):
        raise Invalid(f"'{value}' is not a valid UUID")
    return str(uuid.UUID(value))


def nullable(conv):
    def wrapped(value):
        return None if value is None else conv(value)
    return wrapped


def one_of(*choices, allow_none: bool = False):
    def conv(value):
        if value is None and allow_none:
            return None
        if value not in choices:
            raise Invalid(f"'{value}' is not in {list(choices)}")
        return value
    return conv


def ip_address(value):
    if not isinstance(value, str):
        raise Invalid(f"'{value}' is not a valid IP address")
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        raise Invalid(f"'{value}' is not a valid IP address") from None
    return str(addr)


def cidr(value, strict: bool = True):
    if not isinstance(value, str):
        raise Invalid(f"'{value}' is not a valid IP subnet")
    text = value.strip()
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise Invalid(f"'{value}' is not a valid IP subnet") from None
    net = iface.network
    if "/" not in text:
        return str(net)
    if strict and iface.ip != net.network_address:
        raise Invalid(f"'{value}' isn't a recognized IP subnet cidr, '{net}' is recommended")
    return str(net)


def loose_cidr(value):
    return cidr(value, strict=False)


def mac_address(value):
    if not isinstance(value, str) or not MAC_RE.match(value):
        raise Invalid(f"'{value}' is not a valid MAC address")
    mac = value.lower().replace("-", ":")
    if mac == "00:00:00:00:00:00" or int(mac[:2], 16) & 1:
        raise Invalid(f"'{value}' is not a valid MAC address")
    return mac


def dict_value(value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"'{value}' is not a dictionary")
    return value


def list_of(item_conv, *, unique: bool = False, nullable_list: bool = True):
    def conv(value):
        if value is None and nullable_list:
            return []
        if not isinstance(value, list):
            raise Invalid(f"'{value}' is not a list")
        items = [item_conv(v) for v in value]
        if unique:
            seen = set()
            for item in items:
                key = repr(item)
                if key in seen:
                    raise Invalid(f"Duplicate items in the list: '{item}'")
                seen.add(key)
        return items
    return conv


def tags(value):
    return list_of(string(255), unique=False)(value)


class Attr:
    """One attribute of a resource: who may set it, how it is converted."""

    __slots__ = ("conv", "post", "put", "default", "required")

    def __init__(self, conv, *, post: bool = True, put: bool = True, default=MISSING,
                 required: bool = False):
        self.conv = conv
        self.post = post
        self.put = put
        self.default = default
        self.required = required


def convert(resource: str, spec: dict[str, Attr], body, *, update: bool = False,
            ignore: tuple[str, ...] = ()) -> dict:
    """Check a request body's resource dict against ``spec``; fill defaults on create."""
    if not isinstance(body, dict) or resource not in body or not isinstance(body[resource], dict):
        raise errors.BadRequest("Resource body required", kind="HTTPBadRequest") \
            if not isinstance(body, dict) or resource not in body else \
            errors.BadRequest(f"Invalid input for {resource}. Reason: not a dictionary.",
                              kind="HTTPBadRequest")
    data = body[resource]
    unknown = [k for k in data if k not in spec and k not in ignore]
    if unknown:
        raise errors.BadRequest(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'",
                                kind="HTTPBadRequest")
    result = {}
    for name, attr in spec.items():
        if name in data:
            if update and not attr.put:
                raise errors.BadRequest(f"Cannot update read-only attribute {name}",
                                        kind="HTTPBadRequest")
            if not update and not attr.post:
                raise errors.BadRequest(f"Attribute '{name}' not allowed in POST",
                                        kind="HTTPBadRequest")
            try:
                result[name] = attr.conv(data[name])
            except Invalid as exc:
                raise bad_input(name, str(exc)) from None
        elif not update:
            if attr.required:
                raise errors.BadRequest(f"Failed to parse request. Required attribute "
                                        f"'{name}' not specified", kind="HTTPBadRequest")
            if attr.default is not MISSING:
                result[name] = attr.default() if callable(attr.default) else attr.default
    for name in ignore:
        if name in data:
            result[name] = data[name]
    return result
