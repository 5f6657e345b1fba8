# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A VLAN bridge persisted by the bridge module comes back after a real reboot of a Debian 12 VM,
with systemd-networkd and with ifupdown: the same VLAN table (exactly), the 802.1Q
sub-interface on a parent that is also a trunk port, the addresses; guest ports absent at boot do
not break it; and the first converge after the boot has nothing to do.

The scenario is the one the reboot findings of issue 12 came from: a trunk NIC (eth1) with tagged
VLANs 10 and 20 on a VLAN-filtering bridge (brv, its own PVID 10 and an address), guests on PVIDs
10 and 20 (veths into namespaces, which are gone after a reboot as a stopped guest's tap is), and
a second bridge (br30) on the sub-interface eth1.30."""

from __future__ import annotations

import json

import pytest

from hostlab.fixtures import bookworm_image, trixie_image  # noqa: F401  # pylint: disable=unused-import
from hostlab.lab import HostLab
from hostlab.remote import HOST, RemoteLab

pytestmark = pytest.mark.hostlab

BOOTED = ("eth1", "brv", "eth1.30", "br30")  # what exists at boot; guests' ports do not


def guests(remote, count):
    """Guest namespaces in the VM, each cabled to ``vnetN``, addressed 10.20.0.(11+N)/24."""
    made = []
    for index in range(count):
        guest = remote.ns("g%d" % index)
        remote.veth(HOST, "vnet%d" % index, guest, "eth0")
        remote.addr(guest, "eth0", "10.20.0.%d/24" % (11 + index))
        made.append(guest)
    return made


def trunk(backend):
    return dict(name="brv", vlan_filtering=True, persist=backend, pvid=10, addresses=["10.20.0.1/24"],
                ports=[{"name": "eth1", "vlans": ["10", "20"]}, {"name": "vnet0", "pvid": 10}, {"name": "vnet1", "pvid": 20}])


def sub(backend):
    return dict(name="br30", persist=backend, addresses=["10.30.0.1/24"], ports=[{"name": "eth1.30", "vlan_parent": "eth1", "vlan_id": 30}])


def vlan_tables(remote):
    """{dev: [entries]} of ``bridge -c -j vlan show`` for the links that exist at boot."""
    shown = json.loads(remote.run(HOST, ["bridge", "-compressvlans", "-j", "vlan", "show"]).stdout or "[]")
    return dict((entry["ifname"], entry["vlans"]) for entry in shown if entry["ifname"] in BOOTED)


def links(remote):
    shown = json.loads(remote.run(HOST, ["ip", "-j", "-d", "addr", "show"]).stdout)
    found = {}
    for item in shown:
        if item["ifname"] in BOOTED:
            cidrs = sorted("%s/%s" % (a["local"], a["prefixlen"]) for a in item["addr_info"] if a.get("scope") == "global")
            found[item["ifname"]] = (item.get("master"), cidrs)
    return found


def guest_checks(remote, g0, g1):
    """VLAN 10 (the bridge's own PVID) reaches the bridge's address; VLAN 20 does not."""
    remote.serve_tcp(HOST, 7201, address="10.20.0.1")
    assert remote.connect(g0, "10.20.0.1", 7201, timeout=5) == "peer=10.20.0.11"
    assert remote.connect(g1, "10.20.0.1", 7201, timeout=3) is None


@pytest.mark.parametrize("suite,backend", [("bookworm", "networkd"), ("bookworm", "ifupdown"),
                                           ("trixie", "networkd"), ("trixie", "ifupdown")])
def test_vlan_bridge_survives_a_reboot(request, suite, backend):
    hostlab = HostLab(request.getfixturevalue("%s_image" % suite))
    try:
        vm = hostlab.start(hostlab.add_vm())
        if backend == "networkd":
            hostlab.ssh(vm, "systemctl enable --now systemd-networkd.service")
        remote = RemoteLab(hostlab, vm)
        g0, g1 = guests(remote, 2)
        applied = remote.modules(HOST, [("bridge", trunk(backend)), ("bridge", sub(backend))])
        assert all(result["persist"] == backend and result["changed"] for result in applied)
        guest_checks(remote, g0, g1)
        tables, addressed = vlan_tables(remote), links(remote)
        assert tables["eth1"] == [{"vlan": 10}, {"vlan": 20}] and tables["brv"] == [{"vlan": 10, "flags": ["PVID", "Egress Untagged"]}]

        hostlab.reboot(vm)
        remote = RemoteLab(hostlab, vm)
        assert links(remote) == addressed  # eth1.30 is back, on br30; both bridges have their address
        assert vlan_tables(remote) == tables  # no default VID 1 anywhere it was not: untagged frames reach no guest
        again = remote.module(HOST, "bridge", sub(backend))
        assert again["changed"] is False, again["commands"]  # the first converge after the boot

        # The guests start again. networkd matches their ports by name and enslaves them with
        # their VLANs itself; with ifupdown only their ports have anything to do.
        g0, g1 = guests(remote, 2)
        if backend == "networkd":
            remote.sh("for i in $(seq 60); do ip -j link show master brv | grep -q vnet1 && ip -j link show master brv | grep -q vnet0 "
                      "&& networkctl status vnet0 vnet1 | grep -c 'State: .*(configured)' | grep -q 2 && exit 0; sleep 1; done; exit 1")
        rejoined = remote.module(HOST, "bridge", trunk(backend))
        if backend == "networkd":
            assert rejoined["commands"] == []
        else:
            assert rejoined["commands"] and all(" vnet0" in cmd or " vnet1" in cmd for cmd in rejoined["commands"]), rejoined["commands"]
        guest_checks(remote, g0, g1)
        assert [r["changed"] for r in remote.modules(HOST, [("bridge", trunk(backend)), ("bridge", sub(backend))])] == [False, False]
    finally:
        hostlab.close()
