"""Neutron's error types (the ``type`` of a ``NeutronError`` body)."""

from __future__ import annotations

from pocketstack.common import errors


def not_found(kind: str, id: str) -> errors.NotFound:
    names = {"network": "Network", "subnet": "Subnet", "port": "Port", "router": "Router",
             "floatingip": "Floating IP", "security_group": "Security group",
             "security_group_rule": "Security group rule", "subnetpool": "Subnet pool"}
    types = {"network": "NetworkNotFound", "subnet": "SubnetNotFound", "port": "PortNotFound",
             "router": "RouterNotFound", "floatingip": "FloatingIPNotFound",
             "security_group": "SecurityGroupNotFound",
             "security_group_rule": "SecurityGroupRuleNotFound",
             "subnetpool": "SubnetPoolNotFound"}
    if kind == "floatingip":
        message = f"Floating IP {id} could not be found"
    elif kind in ("security_group", "security_group_rule", "subnetpool"):
        message = f"{names[kind]} {id} does not exist"
    else:
        message = f"{names.get(kind, kind)} {id} could not be found."
    return errors.NotFound(message, kind=types.get(kind, "HTTPNotFound"))


def conflict(kind: str, message: str) -> errors.Conflict:
    return errors.Conflict(message, kind=kind)


def bad_request(kind: str, message: str) -> errors.BadRequest:
    return errors.BadRequest(message, kind=kind)


def invalid_input(message: str) -> errors.BadRequest:
    return errors.BadRequest(f"Invalid input for operation: {message}", kind="InvalidInput")


def policy_denied(action: str) -> errors.Forbidden:
    return errors.Forbidden(f"({action}) is disallowed by policy", kind="PolicyNotAuthorized")


def ip_exhausted(network_id: str) -> errors.Conflict:
    return errors.Conflict(f"No more IP addresses available on network {network_id}.",
                           kind="IpAddressGenerationFailure")


def over_quota(resource: str) -> errors.Conflict:
    return errors.Conflict(f"Quota exceeded for resources: ['{resource}'].", kind="OverQuota")
