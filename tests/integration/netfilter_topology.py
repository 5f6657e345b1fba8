"""A hypervisor namespace between an upstream namespace and two guests on a bridge.

    upstream (203.0.113.10/24, 198.51.100.10/24)
        | eth0
    hv   eth0 203.0.113.1/24, 198.51.100.1/24   (uplink)
         br0  10.0.0.1/24                       (guest bridge)
        |                 |
    g1 10.0.0.2        g2 10.0.0.3

Guests route through hv; upstream knows no route to 10.0.0.0/24, so anything that reaches it
from a guest got there only through masquerade.
"""

from __future__ import annotations

from dataclasses import dataclass

HV_UPLINK = "203.0.113.1"
UPSTREAM = "203.0.113.10"
UPSTREAM_ALT = "198.51.100.10"
G1 = "10.0.0.2"
G2 = "10.0.0.3"
GATEWAY = "10.0.0.1"


@dataclass
class Topology:
    upstream: str
    hv: str
    g1: str
    g2: str


def build(lab):
    up, hv, g1, g2 = lab.ns("up"), lab.ns("hv"), lab.ns("g1"), lab.ns("g2")
    lab.veth(up, "eth0", hv, "eth0")
    lab.addr(up, "eth0", UPSTREAM + "/24")
    lab.addr(up, "eth0", UPSTREAM_ALT + "/24")
    lab.addr(hv, "eth0", HV_UPLINK + "/24")
    lab.addr(hv, "eth0", "198.51.100.1/24")
    lab.run(hv, ["ip", "link", "add", "br0", "type", "bridge"])
    lab.run(hv, ["ip", "link", "set", "br0", "up"])
    lab.addr(hv, "br0", GATEWAY + "/24")
    for guest, address, port in ((g1, G1, "vg1"), (g2, G2, "vg2")):
        lab.veth(guest, "eth0", hv, port)
        lab.run(hv, ["ip", "link", "set", port, "master", "br0"])
        lab.addr(guest, "eth0", address + "/24")
        lab.route(guest, "default", "via", GATEWAY)
    lab.sysctl(hv, "net.ipv4.ip_forward", 1)
    return Topology(upstream=up, hv=hv, g1=g1, g2=g2)


def persist_args(lab):
    """Persistence into the test's temp dir, never the machine's /etc."""
    return {
        "persist_dir": str(lab.tmp / "persist"),
        "nftables_conf": str(lab.tmp / "nftables.conf"),
        "systemd_unit_dir": str(lab.tmp / "units"),
        "lock_file": str(lab.tmp / "lock"),
    }


BACKENDS = {
    "nftables": {"backend": "nftables"},
    "iptables-nft": {"backend": "iptables", "iptables_variant": "nft"},
    "iptables-legacy": {"backend": "iptables", "iptables_variant": "legacy"},
}


def ruleset(lab, ns):
    """Every rule netfilter holds in ``ns``, both iptables flavours included. Legacy chains are
    listed without counters, and only when they hold rules: merely reading them with
    iptables-legacy-save makes the kernel instantiate empty built-in tables."""
    legacy = "\n".join(
        lab.run(ns, argv, check=False).stdout for argv in (["iptables-legacy-save"], ["ip6tables-legacy-save"])
    )
    rules = [line for line in legacy.splitlines() if line.startswith("-A ")]
    return lab.run(ns, ["nft", "list", "ruleset"]).stdout + "\n".join(rules)
