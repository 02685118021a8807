"""Security groups enforced on the host.

``iptables.IptablesFirewall`` converges a host (or a network namespace that
plays one) to the security groups of the ports plugged there: one ingress,
one egress and one anti-spoofing chain per port, ``ipset`` sets for
``remote_group_id``, conntrack for state. ``ports_from_state`` turns the
networking service's rendering (ports, groups with their rules) into its
input.
"""

from pocketstack.network.firewall.iptables import (  # noqa: F401
    FirewallPort,
    IptablesFirewall,
    ports_from_state,
)
