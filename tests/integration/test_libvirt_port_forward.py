"""Port forwards into a real libvirt NAT network (libvirt 9, iptables-nft): libvirt rejects new
connections into its bridge in LIBVIRT_FWI; port_forward must get through without editing
libvirt's chains, and stay working after libvirt rewrites them on a network restart."""

from __future__ import annotations

import json
import time

import pytest
from libvirt_lab import attach_guest_ns, dhcp_lease, libvirt_host
from netlab import Lab

pytestmark = pytest.mark.slow

UPLINK = "198.51.100.1"   # the hypervisor's address on the upstream link
CLIENT = "198.51.100.2"   # upstream's address
BRIDGE = "virbr7"


@pytest.fixture(scope="module")
def setup():
    lab = Lab(tag="lpf")
    try:
        with libvirt_host(lab) as (host, upstream):
            host.module("libvirt_network", dict(
                name="pfnet", bridge=dict(name=BRIDGE),
                ips=[dict(address="10.20.0.1", prefix=24, dhcp_ranges=[dict(start="10.20.0.100", end="10.20.0.150")])],
            ))
            guest = attach_guest_ns(lab, host, BRIDGE, "g1", "vnet-g1")
            lease = dhcp_lease(lab, guest)
            lab.serve_tcp(guest, 80)
            yield lab, host, host.ns, upstream, guest, lease["ip"]
    finally:
        lab.close()


def forward(lab, hv, backend, destination, **extra):
    args = dict(backend, config=[{"host_port": "8080", "destination": destination, "destination_port": "80",
                                  "in_interface": "uplink"}],
                persist=False, lock_file=str(lab.tmp / "lock"), **extra)
    return lab.module(hv, "port_forward", args)


def restart_network(lab, host, hv, guest):
    host.virsh(["net-destroy", "pfnet"])
    host.virsh(["net-start", "pfnet"])
    # A namespace guest is a veth, which libvirt does not re-attach (the module does, on its own
    # restarts): put it back as a tap of a running domain would be.
    lab.run(hv, ["ip", "link", "set", "vnet-g1", "master", BRIDGE])
    deadline = time.monotonic() + 30  # STP takes the new port through listening and learning
    while time.monotonic() < deadline:
        ports = json.loads(lab.run(hv, ["bridge", "-j", "link", "show", "dev", "vnet-g1"]).stdout or "[]")
        if ports and ports[0].get("state") == "forwarding":
            return
        time.sleep(0.2)
    raise AssertionError("vnet-g1 never reached the forwarding state on %s" % BRIDGE)


@pytest.mark.parametrize("backend", [{"backend": "nftables"}, {"backend": "iptables", "iptables_variant": "nft"}],
                         ids=["nftables", "iptables-nft"])
def test_forward_into_libvirt_nat_network_survives_its_restart(setup, backend):
    lab, host, hv, upstream, guest, guest_ip = setup
    if backend["backend"] == "nftables":
        ignored = forward(lab, hv, backend, guest_ip, coexistence="ignore")
        assert any(e.get("outcome") == "blocked" and "LIBVIRT_FWI" in e["where"] for e in ignored["coexistence"])
        assert lab.connect(upstream, UPLINK, 8080) is None, "baseline: libvirt's reject swallows a plain DNAT"

    result = forward(lab, hv, backend, guest_ip)
    assert {"managers": ["libvirt"]} in result["coexistence"]
    assert lab.connect(upstream, UPLINK, 8080) == "peer=%s" % CLIENT

    libvirt_rules = sorted(line for line in lab.run(hv, ["iptables-nft-save"]).stdout.splitlines() if line.startswith("-A LIBVIRT_"))
    restart_network(lab, host, hv, guest)
    assert lab.connect(upstream, UPLINK, 8080) == "peer=%s" % CLIENT
    after = sorted(line for line in lab.run(hv, ["iptables-nft-save"]).stdout.splitlines() if line.startswith("-A LIBVIRT_"))
    assert after == libvirt_rules, "libvirt's chains are libvirt's: we never edit them"
    assert forward(lab, hv, backend, guest_ip)["changed"] is False
    lab.module(hv, "port_forward", dict(backend, state="deleted", persist=False, lock_file=str(lab.tmp / "lock")))
