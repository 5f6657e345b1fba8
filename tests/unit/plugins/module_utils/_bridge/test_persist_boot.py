# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a boot makes of the persisted bridge must be what the module left at runtime (issue 12's
reboot findings, seen on a real Debian 12 VM; tests/hostlab/test_host_bridge_reboot.py reboots
one). These are the renderer and planner halves of those fixes."""

from __future__ import annotations

import re

from bridge_fixtures import argvs, host, want

from ansible_collections.hypervisor.network.plugins.module_utils._bridge import persist
from ansible_collections.hypervisor.network.plugins.module_utils._bridge.plan import plan


def _config(**kw):
    ports = kw.pop("ports", [])
    config = persist.BridgeConfig(**kw)
    config.ports = [persist.PortConfig(**p) for p in ports]
    return config


def test_networkd_writes_no_implicit_default_pvid_and_every_table_in_full():
    """networkd only adds VLANs: left to the kernel, VID 1 stays on every port and on the bridge
    after a boot. The bridge gets DefaultPVID=none and each table is written whole, the default
    entry included where the runtime keeps it (an unmanaged table)."""
    config = _config(name="brv", vlan_filtering=True, vlans={10: (True, True)},
                     ports=[dict(name="eth1", vlans={10: (False, False), 20: (False, False)}), dict(name="vnet9")])
    files = persist.render_networkd(config)
    assert "DefaultPVID=none" in files["10-hnet-brv.netdev"]
    assert files["10-hnet-brv.network"].endswith("[BridgeVLAN]\nPVID=10\nEgressUntagged=10\n")
    assert files["10-hnet-link-eth1.network.d/hnet-brv.conf"].endswith("[BridgeVLAN]\nVLAN=10\nVLAN=20\n")
    # vnet9's table is not managed: at runtime it holds the kernel's default, and so after a boot
    assert files["10-hnet-link-vnet9.network.d/hnet-brv.conf"].endswith("[BridgeVLAN]\nPVID=1\nEgressUntagged=1\n")


def test_networkmanager_writes_no_implicit_default_pvid_and_every_table_in_full():
    """NetworkManager's default vlan-default-pvid is 1: left so, VID 1 (PVID, untagged) is back on
    the trunk, on every port and on the bridge after a boot (seen on a Debian 12 VM with
    NetworkManager 1.42). The same tables as networkd's: default PVID 0, each table whole."""
    config = _config(name="brv", vlan_filtering=True, vlans={10: (True, True)},
                     ports=[dict(name="eth1", vlans={10: (False, False), 20: (False, False)}), dict(name="vnet9")])
    files = persist.render_networkmanager(config)
    bridge = files["hnet-brv.nmconnection"]
    assert "vlan-default-pvid=0\n" in bridge and "vlans=10 pvid untagged\n" in bridge
    assert files["hnet-brv-port-eth1.nmconnection"].endswith("[bridge-port]\nvlans=10,20\n")
    # vnet9's table is not managed: at runtime it holds the kernel's default, and so after a boot
    assert files["hnet-brv-port-vnet9.nmconnection"].endswith("[bridge-port]\nvlans=1 pvid untagged\n")


def test_networkd_without_vlan_filtering_writes_no_vlan_sections():
    files = persist.render_networkd(_config(name="br0", ports=[dict(name="eth1")]))
    assert not any("BridgeVLAN" in text or "DefaultPVID" in text for text in files.values())


def test_networkd_has_one_network_file_per_link_when_a_trunk_port_is_also_a_vlan_parent():
    """networkd applies only the first .network that matches a link: eth1, a port of brv and the
    parent of eth1.30 (a port of br30), must match exactly one file, with both bridges' parts in
    drop-ins, or eth1.30 is never created at boot."""
    trunk = persist.render_networkd(_config(name="brv", ports=[dict(name="eth1")]))
    vlan = persist.render_networkd(_config(name="br30", ports=[dict(name="eth1.30", vlan_parent="eth1", vlan_id=30)]))
    merged = dict(trunk)
    for path, text in vlan.items():
        assert merged.setdefault(path, text) == text, path  # a file both write is the same file
    matching = [path for path, text in merged.items()
                if path.endswith(".network") and re.search(r"^Name=eth1$", text, re.M)]
    assert matching == ["10-hnet-link-eth1.network"]
    dropins = sorted(path for path in merged if path.startswith("10-hnet-link-eth1.network.d/"))
    assert [merged[p].split("[Network]\n")[1].splitlines()[0] for p in dropins] == ["VLAN=eth1.30", "Bridge=brv"]


def test_ifupdown_guest_ports_absent_at_boot_do_not_abort_the_stanza():
    text = persist.render_ifupdown(_config(name="brv", vlan_filtering=True, ports=[dict(name="vnet0", vlans={10: (True, True)})]))["hnet-brv"]
    port_lines = [line.strip() for line in text.splitlines() if "vnet0" in line and not line.startswith("#")]
    assert port_lines and all(re.match(r"^(pre-up|up) \[ ! -e /sys/class/net/vnet0 \] \|\| ", line) for line in port_lines), port_lines


def test_ifupdown_brings_the_vlan_parent_up_before_making_the_sub_interface():
    text = persist.render_ifupdown(_config(name="br30", ports=[dict(name="eth1.30", vlan_parent="eth1", vlan_id=30)]))["hnet-br30"]
    lines = [line.strip() for line in text.splitlines()]
    parent_up = next(i for i, line in enumerate(lines) if line.endswith("ip link set dev eth1 up"))
    created = next(i for i, line in enumerate(lines) if "type vlan id 30" in line)
    assert parent_up < created


def test_ports_the_boot_configuration_enslaved_need_no_mark():
    """After a reboot the ports are members again but carry no ifalias (no manager writes one):
    the ports this bridge's own files list count as marked, so nothing is re-marked."""
    state = host("uplink")
    first = plan(want(ports=["vnet0"]), state)
    assert "ip link set dev vnet0 alias hypervisor.network:bridge=br0" in argvs(first)
    bridge = {"stp": False, "forward_delay": 15, "vlan_filtering": False, "default_pvid": 1}
    state.links["br0"] = type(state.links["vnet0"])(name="br0", kind="bridge", up=True, bridge=bridge)
    state.links["vnet0"].master, state.links["vnet0"].up = "br0", True
    booted = plan(want(ports=["vnet0"], stp=False, forward_delay=15), state, persisted_ports=frozenset(["vnet0"]))
    assert argvs(booted) == []
    # and a booted port that leaves the list is released, as a marked one is
    state.links["eno1"].master = "br0"
    released = plan(want(ports=["vnet0"], stp=False, forward_delay=15), state, persisted_ports=frozenset(["vnet0", "eno1"]))
    assert "ip link set dev eno1 nomaster" in argvs(released)
