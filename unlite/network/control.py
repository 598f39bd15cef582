"""``unify-control``: a TCP port of the node forwarded to a TCP port inside an NF.

An NF whose VNF has ``unify-control`` entries gets one more veth, outside the graph and its
steering: ``ctl0`` in its namespace (``169.254.A.B+2/30``) facing ``ul…`` in the node's
(``+1``). One nftables table in the node's namespace, ``ip ul_control``, holds every
forward of every graph and is rewritten in one ``nft -f`` transaction per change:

- prerouting and output: ``fib daddr type local tcp dport HOST dnat to NF:PORT`` — only
  connections to the node's own addresses (from other hosts, and from the node itself,
  127.0.0.1 included: the control veth has ``route_localnet``); a tenant's forward only
  ``ip daddr { ADDR, ... }``, the addresses its UCI section grants for that port (``list
  control 'ADDR:PORT'``): never the WAN's unless granted;
- postrouting: masquerade towards the control veths, so the NF answers over ``ctl0``
  whatever its own routes say.

- input and forward: from a control veth only the replies of forwarded connections pass —
  the NF reaches neither the node's own services (``route_localnet`` would let it talk to
  127.0.0.1) nor, through the node, anything else.

Connections from other hosts are routed, so they need IPv4 forwarding on the interface they
arrive on (on by default on an OpenWrt router; unlite does not switch it on there) and on
the control veth (unlite sets that one, with ``route_localnet``).
"""
from __future__ import annotations

import ipaddress

from .. import names, sh

TABLE = names.NFT_CONTROL_TABLE
NET = ipaddress.ip_network("169.254.0.0/16")
FIRST, SLOTS = 64, 254 * 64       # /30s of 169.254.1.0 - 169.254.254.255 (RFC 3927 §2.1)


def slot_address(slot):
    """(node side, NF side) of a control /30, as CIDR strings."""
    base = int(NET.network_address) + 4 * (FIRST + slot)
    return (f"{ipaddress.ip_address(base + 1)}/30", f"{ipaddress.ip_address(base + 2)}/30")


def free_slot(preferred, used):
    """The first /30 at or after ``preferred`` (a hash) that ``used`` does not hold."""
    for i in range(SLOTS):
        s = (preferred + i) % SLOTS
        if s not in used:
            return s
    return None


def listening(port):
    """Is a TCP socket listening on ``port`` in this namespace (IPv4 or IPv6)?"""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


def apply(forwards):
    """Make the table hold exactly ``forwards``: [(host port, NF address, NF port, node-side
    device, node addresses)], the addresses None for every local one (root's forwards) or
    the list a tenant is granted (empty: the port opens nowhere). No forward, no table."""
    lines = [f"add table ip {TABLE}", f"delete table ip {TABLE}"]
    if forwards:
        lines.append(f'add table ip {TABLE} {{ comment "unlite unify-control"; }}')
        for chain, hook, prio in (("pre", "prerouting", "dstnat"), ("out", "output", "-100")):
            lines.append(f"add chain ip {TABLE} {chain} {{ type nat hook {hook} priority "
                         f"{prio}; policy accept; }}")
            for host, addr, port, _, daddrs in forwards:
                if daddrs is None:
                    to = "fib daddr type local"
                elif daddrs:
                    to = "ip daddr { " + ", ".join(sorted(daddrs)) + " }"
                else:
                    continue
                lines.append(f"add rule ip {TABLE} {chain} {to} tcp dport {host} counter "
                             f"dnat to {addr}:{port}")
        lines.append(f"add chain ip {TABLE} post {{ type nat hook postrouting priority "
                     "srcnat; policy accept; }")
        devs = "{ " + ", ".join(f'"{d}"' for d in sorted({f[3] for f in forwards})) + " }"
        lines.append(f"add rule ip {TABLE} post oifname {devs} masquerade")
        # From an NF's control veth only the replies of forwarded connections come in: the
        # NF reaches neither the node's own services nor, routed, anything beyond it.
        for chain, hook in (("guard_in", "input"), ("guard_fwd", "forward")):
            lines += [f"add chain ip {TABLE} {chain} {{ type filter hook {hook} priority "
                      "filter; policy accept; }",
                      f"add rule ip {TABLE} {chain} iifname {devs} ct status dnat accept",
                      f"add rule ip {TABLE} {chain} iifname {devs} counter drop"]
    sh.nft_apply("\n".join(lines) + "\n")


def remove():
    """Delete the table (cleanup; never raises)."""
    sh.nft_delete_table("ip", TABLE, check=False)
