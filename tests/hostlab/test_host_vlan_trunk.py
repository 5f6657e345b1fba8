# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tagged frames between two Debian 12 VMs: each VM's VLAN-filtering bridge has its eth1 as a
trunk (VLANs 10 and 20) on a plain wire between them; a guest on VLAN 10 in one VM reaches the
guest on VLAN 10 in the other, not the one on VLAN 20."""

from __future__ import annotations

import pytest

from hostlab.fixtures import bookworm_image  # noqa: F401  # pylint: disable=unused-import
from hostlab.lab import HostLab
from hostlab.remote import HOST, RemoteLab

pytestmark = pytest.mark.hostlab


def bridge(ports):
    return dict(name="brv", vlan_filtering=True, persist="none", ports=[{"name": "eth1", "vlans": ["10", "20"]}] + ports)


def test_vlan_10_crosses_the_trunk_and_vlan_20_stays_apart(bookworm_image):  # noqa: F811
    hostlab = HostLab(bookworm_image)
    try:
        vm_a, vm_b = hostlab.add_vm(), hostlab.add_vm()
        for vm in (vm_a, vm_b):
            hostlab.start(vm, wait=False)
        for vm in (vm_a, vm_b):
            hostlab.wait_ssh(vm)
        a, b = RemoteLab(hostlab, vm_a), RemoteLab(hostlab, vm_b)
        guests = {}
        for remote, names in ((a, [("a10", "vnet0", 11)]), (b, [("b10", "vnet0", 12), ("b20", "vnet1", 13)])):
            for short, port, host in names:
                guests[short] = remote.ns(short)
                remote.veth(HOST, port, guests[short], "eth0")
                remote.addr(guests[short], "eth0", "10.20.0.%d/24" % host)
        a.module(HOST, "bridge", bridge([{"name": "vnet0", "pvid": 10}]))
        b.module(HOST, "bridge", bridge([{"name": "vnet0", "pvid": 10}, {"name": "vnet1", "pvid": 20}]))
        b.serve_tcp(guests["b10"], 7105)
        b.serve_tcp(guests["b20"], 7106)
        assert a.connect(guests["a10"], "10.20.0.12", 7105, timeout=5) == "peer=10.20.0.11"
        assert a.connect(guests["a10"], "10.20.0.13", 7106, timeout=3) is None
    finally:
        hostlab.close()
