"""Data-plane agents: level-triggered reconcilers of one host.

``state.DesiredState`` is what the networking service says the host should
have (fed by the driver's hooks and by full re-syncs); each agent's
``converge(snapshot)`` makes the host match it idempotently and is safe to
run at any time, after a restart included:

- ``l2.L2Agent`` with a back end (``l2.LinuxBridgeBackend``; an Open vSwitch
  back end implements the same ``L2Backend`` methods): a switch per network,
  the segment (VXLAN/flat/VLAN) on it, the ports' tap devices plugged;
- ``dhcp.DhcpAgent``: per network with DHCP, a namespace with the DHCP
  port, dnsmasq serving fixed leases, and the metadata proxy;
- ``metadata.MetadataAgent``: answers the proxies, signs the instance id,
  forwards to compute's metadata service.

An L3 agent (routers, SNAT, floating IPs) plugs its router ports into the
same switches through the back end.
"""
