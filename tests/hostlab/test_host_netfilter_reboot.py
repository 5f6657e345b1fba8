# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ip_forward, masquerade and port_forward, persisted with their defaults, come back after a real
reboot of a Debian 12 and a Debian 13 VM, on the nftables and on the iptables backend: a guest behind the VM
reaches the upstream masqueraded, the upstream reaches the guest's service through the port
forward, and the first converge after the boot changes nothing."""

from __future__ import annotations

import pytest

from hostlab.fixtures import bookworm_image, trixie_image  # noqa: F401  # pylint: disable=unused-import
from hostlab.lab import UPLINK_NET, HostLab
from hostlab.remote import HOST, RemoteLab

pytestmark = pytest.mark.hostlab


def guest(remote):
    """A guest namespace behind the VM on vnet0 (10.20.0.1/24 on the VM's side), routed by it."""
    g0 = remote.ns("g0")
    remote.veth(HOST, "vnet0", g0, "eth0")
    remote.addr(HOST, "vnet0", "10.20.0.1/24")
    remote.addr(g0, "eth0", "10.20.0.11/24")
    remote.route(g0, "default", "via", "10.20.0.1")
    remote.serve_tcp(g0, 7301)
    return g0


def calls(backend):
    return [
        ("ip_forward", dict(ipv4=True)),
        ("masquerade", dict(backend=backend, config=[{"source": "10.20.0.0/24", "out_interface": "eth0"}])),
        ("port_forward", dict(backend=backend, config=[{"host_port": 8080, "destination": "10.20.0.11", "destination_port": 7301,
                                                        "in_interface": "eth0"}])),
    ]


def guest_checks(hostlab, vm, remote, g0):
    address = vm.address
    assert hostlab.connect(address, 8080) == "peer=%s.1" % UPLINK_NET  # upstream -> DNAT -> guest
    assert remote.connect(g0, UPLINK_NET + ".1", 7302, timeout=5) == "peer=%s" % address  # guest -> masquerade -> upstream


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_forwarding_and_nat_survive_a_reboot(request, suite, backend):
    hostlab = HostLab(request.getfixturevalue("%s_image" % suite))
    try:
        vm = hostlab.start(hostlab.add_vm())
        hostlab.serve_tcp(7302)
        remote = RemoteLab(hostlab, vm)
        g0 = guest(remote)
        applied = remote.modules(HOST, calls(backend))
        assert all(result["changed"] for result in applied)
        guest_checks(hostlab, vm, remote, g0)

        hostlab.reboot(vm)
        remote = RemoteLab(hostlab, vm)
        assert remote.run(HOST, ["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
        g0 = guest(remote)  # the guest starts again
        guest_checks(hostlab, vm, remote, g0)
        again = remote.modules(HOST, calls(backend))
        assert [r["changed"] for r in again] == [False, False, False], [r.get("commands") for r in again]
    finally:
        hostlab.close()
