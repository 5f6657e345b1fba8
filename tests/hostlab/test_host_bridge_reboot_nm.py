# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VLAN bridge of test_host_bridge_reboot.py, persisted with the NetworkManager backend on a
Debian 12 VM where network-manager is installed from the lab's package repository and running:
after a real reboot the same VLAN table (exactly), the 802.1Q sub-interface on its bridge, the
addresses, and the first converge after the boot has nothing to do.

The lab's management NIC (eth0, set up from the kernel command line by the image) is declared
unmanaged to NetworkManager: it is the test's SSH path, not what is tested."""

from __future__ import annotations

import pytest

from hostlab.fixtures import bookworm_image  # noqa: F401  # pylint: disable=unused-import
from hostlab.lab import HostLab
from hostlab.remote import HOST, RemoteLab
from hostlab.test_host_bridge_reboot import guest_checks, guests, links, sub, trunk, vlan_tables

pytestmark = pytest.mark.hostlab

# No automatic "Wired connection" DHCP profiles for the NICs the test gives to the bridge module
# (NetworkManager would otherwise run its own profile on eth1 and take it back out of the bridge).
UNMANAGED = "[main]\nno-auto-default=*\n[keyfile]\nunmanaged-devices=interface-name:eth0\n"


def test_vlan_bridge_survives_a_reboot_with_networkmanager(bookworm_image):  # noqa: F811
    hostlab = HostLab(bookworm_image)
    try:
        vm = hostlab.start(hostlab.add_vm())
        hostlab.serve_packages()
        hostlab.ssh(vm, "mkdir -p /etc/NetworkManager/conf.d && printf '%s' > /etc/NetworkManager/conf.d/90-hostlab.conf && "
                        "DEBIAN_FRONTEND=noninteractive apt-get -q -y install network-manager && "
                        "systemctl is-active NetworkManager" % UNMANAGED.replace("\n", "\\n"), timeout=1500)
        remote = RemoteLab(hostlab, vm)
        g0, g1 = guests(remote, 2)
        applied = remote.modules(HOST, [("bridge", trunk("networkmanager")), ("bridge", sub("networkmanager"))])
        assert all(result["persist"] == "networkmanager" and result["changed"] for result in applied)
        guest_checks(remote, g0, g1)
        tables, addressed = vlan_tables(remote), links(remote)
        assert tables["eth1"] == [{"vlan": 10}, {"vlan": 20}] and tables["brv"] == [{"vlan": 10, "flags": ["PVID", "Egress Untagged"]}]

        hostlab.reboot(vm)
        remote = RemoteLab(hostlab, vm)
        # NetworkManager activates its profiles after SSH is up: wait for the sub-interface's bridge.
        remote.sh("for i in $(seq 90); do ip -j addr show dev br30 2>/dev/null | grep -q 10.30.0.1 && "
                  "ip -j link show master br30 | grep -q eth1.30 && ip -j addr show dev brv | grep -q 10.20.0.1 && exit 0; sleep 1; done; "
                  "nmcli -f NAME,DEVICE,STATE connection show; exit 1", timeout=150)
        assert links(remote) == addressed, remote.sh("nmcli -f NAME,DEVICE,STATE connection show").stdout
        # Exactly the same VLAN tables, with one difference NetworkManager makes and that has no
        # effect: it creates a bridge without VLAN filtering with no default PVID, so br30 (no
        # filtering; the kernel ignores its table) comes back without the kernel's VID 1 entry.
        after_tables = vlan_tables(remote)
        assert remote.sh("cat /sys/class/net/br30/bridge/vlan_filtering").stdout.strip() == "0"
        assert after_tables.get("br30") in (None, tables.get("br30")), after_tables
        assert {k: v for k, v in after_tables.items() if k != "br30"} == {k: v for k, v in tables.items() if k != "br30"}
        again = remote.module(HOST, "bridge", sub("networkmanager"))
        assert again["changed"] is False, again["commands"]

        g0, g1 = guests(remote, 2)  # the guests start again; their ports join through the module
        remote.module(HOST, "bridge", trunk("networkmanager"))
        guest_checks(remote, g0, g1)
        assert [r["changed"] for r in remote.modules(HOST, [("bridge", trunk("networkmanager")), ("bridge", sub("networkmanager"))])] == [False, False]
    finally:
        hostlab.close()
