# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VLAN filtering on a real bridge: guests on one VLAN reach each other, not across VLANs, and an
untagged port lands on its PVID.

Each test runs twice: in a namespace of this machine ("netns": skipped, with the reason, on kernels
without VLAN filtering, as this machine's) and inside a Debian 12 VM of the host lab ("vm": the
module run by ansible-playbook over SSH, the same checks on a Debian kernel that has VLANs)."""

from __future__ import annotations

import json

import pytest
from bridge_lab import VLAN_FILTERING, guests, require
from hostlab.fixtures import bookworm_image, bookworm_vm, vm_lab  # noqa: F401  # pylint: disable=unused-import


@pytest.fixture(params=["netns", pytest.param("vm", marks=pytest.mark.hostlab)])
def vlab(request):
    """The lab a test runs in: a namespace here, or a real Debian host over SSH."""
    return request.getfixturevalue("lab" if request.param == "netns" else "vm_lab")


def vlan_table(lab, ns, dev):
    for entry in json.loads(lab.run(ns, ["bridge", "-compressvlans", "-j", "vlan", "show", "dev", dev]).stdout or "[]"):
        if entry["ifname"] == dev:  # iproute2 6.1 adds "flags": [] to ranges; older ones leave it out
            return [dict((k, v) for k, v in vlan.items() if v != []) for vlan in entry["vlans"]]
    return []


def test_guests_on_one_vlan_reach_each_other_and_not_across(vlab):
    hv = vlab.ns("hv")
    require(vlab, hv, VLAN_FILTERING)
    g0, g1, g2 = guests(vlab, hv, 3)
    args = dict(name="br0", vlan_filtering=True, persist="none", ports=[
        {"name": "vnet0", "pvid": 10}, {"name": "vnet1", "pvid": 10}, {"name": "vnet2", "pvid": 20}])
    applied = vlab.module(hv, "bridge", args)
    assert "bridge vlan add dev vnet0 vid 10 pvid untagged" in applied["commands"]
    vlab.serve_tcp(g1, 7101)
    vlab.serve_tcp(g2, 7102)
    assert vlab.connect(g0, "10.20.0.12", 7101) == "peer=10.20.0.11"
    assert vlab.connect(g0, "10.20.0.13", 7102, timeout=2) is None
    assert vlab.module(hv, "bridge", args)["changed"] is False


def test_untagged_port_lands_on_its_pvid(vlab):
    hv = vlab.ns("hv")
    require(vlab, hv, VLAN_FILTERING)
    g0, g1 = guests(vlab, hv, 2)
    args = dict(name="br0", vlan_filtering=True, default_pvid=0, vlans=["30"], pvid=10, addresses=["10.20.0.1/24"],
                persist="none", ports=[{"name": "vnet0", "pvid": 10, "vlans": ["30-31"]}, {"name": "vnet1", "pvid": 20}])
    applied = vlab.module(hv, "bridge", args)
    assert vlan_table(vlab, hv, "vnet0") == [
        {"vlan": 10, "flags": ["PVID", "Egress Untagged"]}, {"vlan": 30, "vlanEnd": 31}]
    assert applied["after"]["ports"][0] == {"name": "vnet0", "vlans": ["10", "30-31"], "pvid": 10, "untagged": ["10"]}
    vlab.serve_tcp(hv, 7103, address="10.20.0.1")
    assert vlab.connect(g0, "10.20.0.1", 7103) == "peer=10.20.0.11"  # PVID 10 is the bridge's own
    assert vlab.connect(g1, "10.20.0.1", 7103, timeout=2) is None  # PVID 20 is not
    assert vlab.module(hv, "bridge", args)["changed"] is False


def test_vlan_plan_in_check_mode_and_a_clean_failure_where_the_kernel_cannot(lab):
    """Runs on every kernel: check mode plans the VLAN commands; without VLAN filtering in the
    kernel the real run fails on its first command with the kernel's words and leaves nothing."""
    hv = lab.ns("hv")
    guests(lab, hv, 2)
    args = dict(name="br0", vlan_filtering=True, persist="none",
                ports=[{"name": "vnet0", "pvid": 10}, {"name": "vnet1", "vlans": ["20-22"]}])
    planned = lab.module(hv, "bridge", args, check_mode=True)
    assert planned["commands"][0] == "ip link add name br0 type bridge vlan_filtering 1"
    assert planned["commands"][-3:] == [
        "bridge vlan add dev vnet0 vid 10 pvid untagged",
        "bridge vlan del dev vnet1 vid 1",
        "bridge vlan add dev vnet1 vid 20-22",
    ]
    assert planned["after"]["ports"] == [
        {"name": "vnet0", "vlans": ["10"], "pvid": 10, "untagged": ["10"]},
        {"name": "vnet1", "vlans": ["20-22"], "pvid": None, "untagged": []},
    ]
    if lab.run(hv, ["ip", "link", "add", "hnprobe", "type", "bridge", "vlan_filtering", "1"], check=False).returncode == 0:
        return  # this kernel can: the other tests here cover the real run
    failed = lab.module(hv, "bridge", args, expect_fail=True)
    assert failed["cmd"][-4:] == ["type", "bridge", "vlan_filtering", "1"] and failed["stderr"]
    assert json.loads(lab.run(hv, ["ip", "-j", "link", "show", "type", "bridge"]).stdout) == []


@pytest.mark.hostlab
def test_802_1q_sub_interface_port_carries_tagged_frames(vm_lab):
    """In a Debian VM (this machine's kernel has no 802.1Q): the module makes trunk0.20 on trunk0
    and puts it in br20; a peer that tags VLAN 20 reaches the bridge's address, both ways tagged."""
    lab = vm_lab
    hv, peer = lab.ns("hv"), lab.ns("peer")
    lab.veth(hv, "trunk0", peer, "eth0")
    lab.run(peer, ["ip", "link", "add", "link", "eth0", "name", "eth0.20", "type", "vlan", "id", "20"])
    lab.run(peer, ["ip", "link", "set", "eth0.20", "up"])
    lab.addr(peer, "eth0.20", "10.40.0.2/24")
    args = dict(name="br20", ports=[{"name": "trunk0.20", "vlan_parent": "trunk0"}], addresses=["10.40.0.1/24"], persist="none")
    created = lab.module(hv, "bridge", args)
    assert created["commands"][0] == "ip link add link trunk0 name trunk0.20 type vlan id 20"
    lab.serve_tcp(hv, 7104, address="10.40.0.1")
    assert lab.connect(peer, "10.40.0.1", 7104) == "peer=10.40.0.2"
    # the peer's eth0.20 gets only frames tagged 20: the answers came back tagged
    stats = json.loads(lab.run(peer, ["ip", "-s", "-j", "link", "show", "dev", "eth0.20"]).stdout)[0]["stats64"]["rx"]
    assert stats["packets"] > 0
    again, gone = lab.modules(hv, [("bridge", args), ("bridge", dict(args, state="absent"))])
    assert again["changed"] is False and gone["changed"] is True
    assert lab.run(hv, ["ip", "link", "show", "dev", "trunk0.20"], check=False).returncode != 0
