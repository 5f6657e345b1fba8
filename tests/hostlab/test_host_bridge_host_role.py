# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bridge_host role, unmodified, converges a fresh Debian 12 and Debian 13 VM over SSH (its package task
finds iproute2 and nftables installed, facts from the real systemd host), then changes nothing
on the second run; a guest behind the VM's bridge is masqueraded to the upstream and reached
through the port forward."""

from __future__ import annotations

import pytest

from hostlab.fixtures import bookworm_image, trixie_image  # noqa: F401  # pylint: disable=unused-import
from hostlab.lab import UPLINK_NET, HostLab
from hostlab.remote import HOST, RemoteLab

pytestmark = pytest.mark.hostlab

PLAY = """
- hosts: all
  gather_facts: true
  roles:
    - role: hypervisor.network.bridge_host
      vars:
        bridge_host_bridges:
          - name: br0
            ports: [{name: vnet0}]
            addresses: [10.20.0.1/24]
            persist: networkd
        bridge_host_masquerade:
          - {source: 10.20.0.0/24, out_interface: eth0}
        bridge_host_port_forwards:
          - {host_port: 8080, destination: 10.20.0.11, destination_port: 7301, in_interface: eth0}
"""


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_bridge_host_role_converges_a_fresh_vm(request, suite):
    hostlab = HostLab(request.getfixturevalue("%s_image" % suite))
    try:
        vm = hostlab.start(hostlab.add_vm())
        hostlab.ssh(vm, "systemctl enable --now systemd-networkd.service")
        hostlab.serve_tcp(7302)
        remote = RemoteLab(hostlab, vm)
        g0 = remote.ns("g0")
        remote.veth(HOST, "vnet0", g0, "eth0")
        remote.addr(g0, "eth0", "10.20.0.11/24")
        remote.route(g0, "default", "via", "10.20.0.1")
        remote.serve_tcp(g0, 7301)

        _proc, first = hostlab.playbook(PLAY)
        assert first[vm.name]["failed"] == 0 and first[vm.name]["changed"] > 0
        _proc, second = hostlab.playbook(PLAY)
        assert second[vm.name]["changed"] == 0, _proc.stdout[-6000:]
        assert hostlab.connect(vm.address, 8080) == "peer=%s.1" % UPLINK_NET
        assert remote.connect(g0, UPLINK_NET + ".1", 7302, timeout=5) == "peer=%s" % vm.address
    finally:
        hostlab.close()
