"""The data-plane driver interface of the networking service.

The networking service (API + manager + database) is the control plane. A
driver turns its desired state into a host's data plane: bridges, Open
vSwitch flows, namespaces, dnsmasq, iptables. ``[network] l2_driver`` picks
one: ``noop`` (nothing on the host; the default and what tests use),
``linuxbridge`` or ``openvswitch`` (the data-plane issue).

How the manager calls a driver
------------------------------

* Every ``*_created`` / ``*_updated`` / ``*_deleted`` hook runs **after** the
  database transaction committed, with the resource rendered as the API
  returns it (plain dicts, the same field names as Networking v2.0: e.g. a
  port has ``id``, ``network_id``, ``mac_address``, ``fixed_ips``,
  ``security_groups``, ``binding:host_id``...). Hooks must be idempotent and
  quick: a driver that has slow work queues it and returns. An exception in a
  hook is logged and never undoes the API call; the driver converges later
  (``resync``).
* ``bind_port`` runs **before** the port is stored, when a port gets a
  ``binding:host_id`` (compute binds a port to the host it boots the server
  on). It returns a :class:`PortBinding`: the ``vif_type`` and
  ``vif_details`` compute's virt driver needs to plug the VIF (e.g. ``ovs``
  with ``{"bridge_name": "br-int"}``, ``bridge`` with the bridge name), and
  the port status to store. Returning ``None`` means "cannot bind on that
  host" and the port gets ``binding:vif_type = binding_failed``. It runs
  inside the port's database transaction: keep it pure (no host commands, no
  calls back into the manager).
* ``resync(state)`` is called at start (and may be called at any time) with
  everything the data plane should contain; a reconciling driver makes the
  host match it.
* ``network`` dicts carry the segment: ``provider:network_type`` (flat, vlan,
  vxlan, local), ``provider:physical_network``, ``provider:segmentation_id``.
* Router interfaces are ports with ``device_owner`` ``network:router_interface``
  (gateway: ``network:router_gateway``) and ``device_id`` = router id; the
  hooks ``router_interface_added/removed`` name both. A router's
  ``external_gateway_info`` and ``routes`` come with ``router_updated``.
* Floating IPs: ``floatingip_updated`` carries ``port_id`` /
  ``fixed_ip_address`` / ``router_id`` (all None when disassociated).
* Security groups: ``security_group_updated`` is called with the group and
  its ``security_group_rules`` whenever a rule is added or removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PortBinding:
    vif_type: str
    vif_details: dict = field(default_factory=dict)
    status: str = "DOWN"  # what the port's status becomes once bound


class NetworkDriver:
    """Base class: every hook does nothing; drivers override what they use."""

    name = "base"

    def __init__(self, conf):
        self.conf = conf

    # lifecycle
    def start(self, manager) -> None:
        """Called once the service started; ``manager`` is the NetworkManager."""

    def stop(self) -> None:
        pass

    def resync(self, state: dict) -> None:
        """``state``: {"networks", "subnets", "ports", "routers", "floatingips",
        "security_groups"} lists, each item as the API renders it."""

    # port binding
    def bind_port(self, port: dict, network: dict, host: str) -> PortBinding | None:
        raise NotImplementedError

    def port_unbound(self, port: dict, host: str) -> None:
        """A port left ``host`` (its binding:host_id was cleared or changed)."""

    # networks, subnets, ports
    def network_created(self, network: dict) -> None: ...
    def network_updated(self, network: dict) -> None: ...
    def network_deleted(self, network: dict) -> None: ...
    def subnet_created(self, subnet: dict, network: dict) -> None: ...
    def subnet_updated(self, subnet: dict, network: dict) -> None: ...
    def subnet_deleted(self, subnet: dict, network: dict) -> None: ...
    def port_created(self, port: dict, network: dict) -> None: ...
    def port_updated(self, port: dict, network: dict) -> None: ...
    def port_deleted(self, port: dict, network: dict) -> None: ...

    # routers and floating IPs
    def router_created(self, router: dict) -> None: ...
    def router_updated(self, router: dict) -> None: ...
    def router_deleted(self, router: dict) -> None: ...
    def router_interface_added(self, router: dict, port: dict) -> None: ...
    def router_interface_removed(self, router: dict, port: dict) -> None: ...
    def floatingip_created(self, floatingip: dict) -> None: ...
    def floatingip_updated(self, floatingip: dict) -> None: ...
    def floatingip_deleted(self, floatingip: dict) -> None: ...

    # security groups
    def security_group_created(self, group: dict) -> None: ...
    def security_group_updated(self, group: dict) -> None: ...
    def security_group_deleted(self, group: dict) -> None: ...
