# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hypervisor.network.bridge on real bridges in namespaces the tests create, with veth guests."""

from __future__ import annotations

import json
import warnings

import pytest
import yaml
from bridge_lab import VLAN_FILTERING, addresses, dot1q, guests, kernel_lacks, link, persist_dirs, require

from ansible_collections.hypervisor.network.plugins.modules import bridge as bridge_module


def test_guests_reach_each_other_check_diff_and_idempotence(lab):
    hv = lab.ns("hv")
    g0, g1 = guests(lab, hv, 2)
    args = dict(name="br0", ports=[{"name": "vnet0"}, {"name": "vnet1"}], addresses=["10.20.0.1/24"], persist="none")

    checked = lab.module(hv, "bridge", args, check_mode=True, diff=True)
    assert checked["changed"] and "ip link add name br0 type bridge" in checked["commands"]
    assert link(lab, hv, "br0") is None, "check mode must not create the bridge"
    assert checked["after"]["ports"] == [{"name": "vnet0"}, {"name": "vnet1"}]

    applied = lab.module(hv, "bridge", args, diff=True)
    assert applied["changed"]
    assert applied["commands"] == checked["commands"], "check mode runs the same plan"
    assert applied["before"] == {"name": "br0", "present": False}
    assert [p["name"] for p in applied["after"]["ports"]] == ["vnet0", "vnet1"]
    assert applied["diff"][0]["after"]["addresses"] == ["10.20.0.1/24"]

    lab.serve_tcp(g1, 7001)
    assert lab.connect(g0, "10.20.0.12", 7001) == "peer=10.20.0.11"
    assert lab.connect(hv, "10.20.0.12", 7001) == "peer=10.20.0.1"

    again = lab.module(hv, "bridge", args, diff=True)
    assert again["changed"] is False and again["commands"] == []
    assert again["before"] == applied["after"] and "after" not in again  # `after` only with a change


def test_mtu_and_stp_are_applied_as_read_back(lab):
    hv = lab.ns("hv")
    guests(lab, hv, 2)
    args = dict(name="br0", ports=[{"name": "vnet0"}, {"name": "vnet1"}], mtu=1400, stp=True, forward_delay=4,
                mac="02:00:00:00:20:01", persist="none")
    lab.module(hv, "bridge", args)
    bridge = link(lab, hv, "br0")
    data = bridge["linkinfo"]["info_data"]
    assert (bridge["mtu"], data["stp_state"], data["forward_delay"]) == (1400, 1, 400)
    assert bridge["address"] == "02:00:00:00:20:01"
    for port in ("vnet0", "vnet1"):
        assert (link(lab, hv, port)["mtu"], link(lab, hv, port)["master"]) == (1400, "br0")

    changed = lab.module(hv, "bridge", dict(args, stp=False, forward_delay=2, mtu=1500))
    assert "ip link set dev br0 type bridge stp_state 0 forward_delay 200" in changed["commands"]
    data = link(lab, hv, "br0")["linkinfo"]["info_data"]
    assert (link(lab, hv, "br0")["mtu"], data["stp_state"], data["forward_delay"]) == (1500, 0, 200)
    assert changed["after"]["stp"] is False and changed["after"]["forward_delay"] == 2
    assert lab.module(hv, "bridge", dict(args, stp=False, forward_delay=2, mtu=1500))["changed"] is False


def test_dropped_ports_are_released_and_foreign_ports_left_alone(lab):
    hv = lab.ns("hv")
    guests(lab, hv, 3)
    lab.module(hv, "bridge", dict(name="br0", ports=[{"name": "vnet0"}, {"name": "vnet1"}], persist="none"))
    lab.run(hv, ["ip", "link", "set", "dev", "vnet2", "master", "br0"])  # by hand: not ours

    dropped = lab.module(hv, "bridge", dict(name="br0", ports=[{"name": "vnet0"}], persist="none"))
    assert "ip link set dev vnet1 nomaster" in dropped["commands"]
    assert link(lab, hv, "vnet1").get("master") is None
    assert link(lab, hv, "vnet2")["master"] == "br0"
    assert not link(lab, hv, "vnet1").get("ifalias")

    exclusive = lab.module(hv, "bridge", dict(name="br0", ports=[{"name": "vnet0"}], exclusive_ports=True, persist="none"))
    assert exclusive["commands"] == ["ip link set dev vnet2 nomaster"]
    assert [p["name"] for p in exclusive["after"]["ports"]] == ["vnet0"]


def test_absent_removes_the_bridge_and_is_idempotent(lab):
    hv = lab.ns("hv")
    guests(lab, hv, 1)
    lab.module(hv, "bridge", dict(name="br0", ports=[{"name": "vnet0"}], persist="none"))
    gone = lab.module(hv, "bridge", dict(name="br0", state="absent", persist="none"), diff=True)
    assert gone["changed"] and gone["after"] == {"name": "br0", "present": False}
    assert link(lab, hv, "br0") is None and not link(lab, hv, "vnet0").get("ifalias")
    assert lab.module(hv, "bridge", dict(name="br0", state="absent", persist="none"))["changed"] is False


@pytest.mark.parametrize("args, field", [
    (dict(name="br-name-too-long0"), "name"),
    (dict(name="br/0"), "name"),
    (dict(name="br0", ports=[{"name": "vnet0", "vlans": ["4095"]}], vlan_filtering=True), "ports[0].vlans[0]"),
    (dict(name="br0", ports=[{"name": "vnet0", "pvid": 0}], vlan_filtering=True), "ports[0].pvid"),
    (dict(name="br0", ports=[{"name": "vnet0"}, {"name": "eth9"}]), "ports[1].name"),
    (dict(name="br0", ports=[{"name": "vnet1"}]), "ports[0].name"),  # a port of brother
    (dict(name="br0", ports=[{"name": "vnet0"}], mtu=70000), "mtu"),
])
def test_bad_input_is_refused_before_anything_changes(lab, args, field):
    hv = lab.ns("hv")
    guests(lab, hv, 2)
    lab.run(hv, ["ip", "link", "add", "name", "brother", "type", "bridge"])
    lab.run(hv, ["ip", "link", "set", "dev", "vnet1", "master", "brother"])
    failed = lab.module(hv, "bridge", dict(args, persist="none"), expect_fail=True)
    assert failed["field"] == field, failed["msg"]
    assert link(lab, hv, "br0") is None and link(lab, hv, "vnet1")["master"] == "brother"


def test_steal_and_two_bridges_claiming_one_port(lab):
    hv = lab.ns("hv")
    guests(lab, hv, 1)
    lab.module(hv, "bridge", dict(name="bra", ports=[{"name": "vnet0"}], persist="none"))
    claimed = lab.module(hv, "bridge", dict(name="brb", ports=[{"name": "vnet0"}], steal=True, persist="none"), expect_fail=True)
    assert claimed["field"] == "ports[0].name" and "claimed by bridge bra" in claimed["msg"]
    assert link(lab, hv, "brb") is None

    lab.module(hv, "bridge", dict(name="bra", ports=[], persist="none"))  # bra lets it go
    lab.run(hv, ["ip", "link", "set", "dev", "vnet0", "master", "bra"])  # and someone puts it back by hand
    refused = lab.module(hv, "bridge", dict(name="brb", ports=[{"name": "vnet0"}], persist="none"), expect_fail=True)
    assert "already a port of bra" in refused["msg"]
    stolen = lab.module(hv, "bridge", dict(name="brb", ports=[{"name": "vnet0"}], steal=True, persist="none"))
    assert stolen["changed"] and link(lab, hv, "vnet0")["master"] == "brb"


def test_vlan_sub_interface_port_is_created(lab):
    hv = lab.ns("hv")
    up = lab.ns("up")
    lab.veth(hv, "eno1", up, "eth0")
    require(lab, hv, dot1q("eno1"))
    args = dict(name="br20", ports=[{"name": "eno1.20", "vlan_parent": "eno1"}], persist="none")
    created = lab.module(hv, "bridge", args)
    assert created["commands"][0] == "ip link add link eno1 name eno1.20 type vlan id 20"
    assert link(lab, hv, "eno1.20")["master"] == "br20"
    assert lab.module(hv, "bridge", args)["changed"] is False
    lab.module(hv, "bridge", dict(args, state="absent"))
    assert link(lab, hv, "eno1.20") is None


def test_documented_examples_run(lab):
    """Every task in EXAMPLES runs as written, only with config directories under the test's
    temp dir and interfaces made up for the ports it names."""
    hv = lab.ns("hv")
    other = lab.ns("peer")
    for name in ("eno1", "eno2", "vnet0", "vnet1", "vnet2", "vnet3"):
        lab.veth(hv, name, other, "p" + name)
    skipped = []
    for task in yaml.safe_load(bridge_module.EXAMPLES):
        args = dict(task["hypervisor.network.bridge"], **persist_dirs(lab))
        args.setdefault("persist", "none")
        needs = [VLAN_FILTERING] if args.get("vlan_filtering") else []
        needs += [dot1q(p["vlan_parent"]) for p in args.get("ports") or [] if p.get("vlan_parent")]
        lacking = [what for what, argv in needs if kernel_lacks(lab, hv, argv)]
        if lacking:
            skipped.append("%s (kernel lacks %s)" % (task["name"], ", ".join(lacking)))
            continue
        result = lab.module(hv, "bridge", args)
        assert lab.module(hv, "bridge", args)["changed"] is False, task["name"]
        assert result.get("after", result["before"])["present"] is (args.get("state") != "absent"), task["name"]
    assert addresses(lab, hv, "br0") == []
    if skipped:
        warnings.warn("examples not run on this kernel: %s" % "; ".join(skipped))


def test_playbook_through_the_netns_connection(lab):
    """The module as ansible-playbook runs it: a namespace as the host, --diff, then --check."""
    from playbook_runner import run_playbook

    hv = lab.ns("hv")
    guests(lab, hv, 2)
    play = """
- hosts: %s
  connection: hypervisor.network.netns
  gather_facts: false
  tasks:
    - name: A guest bridge
      hypervisor.network.bridge:
        name: br0
        ports: [{name: vnet0}, {name: vnet1}]
        addresses: [10.20.0.1/24]
        persist: none
      register: first
    - name: Nothing left to do the second time
      hypervisor.network.bridge:
        name: br0
        ports: [{name: vnet0}, {name: vnet1}]
        addresses: [10.20.0.1/24]
        persist: none
      register: second
    - ansible.builtin.assert:
        that:
          - not second.changed
          - second.commands | length == 0
          - (first.after | default(first.before)).ports | length == 2
""" % hv
    first = run_playbook(lab.tmp, play, "-i", "%s," % hv, "--diff")
    assert "changed=1" in first.stdout and "failed=0" in first.stdout
    assert "+" in first.stdout, "--diff shows the runtime before/after"
    checked = run_playbook(lab.tmp, play, "-i", "%s," % hv, "--check")
    assert "changed=0" in checked.stdout and "failed=0" in checked.stdout
    assert [p["ifname"] for p in json.loads(lab.run(hv, ["ip", "-j", "link", "show", "master", "br0"]).stdout)] == ["vnet0", "vnet1"]


def test_mtu_a_stacked_port_cannot_take_is_refused(lab):
    """A macvlan's max_mtu says 65535, but it cannot exceed the MTU of the link below it."""
    hv, peer = lab.ns("hv"), lab.ns("peer")
    lab.veth(hv, "eno1", peer, "eth0")
    lab.run(hv, ["ip", "link", "add", "mv0", "link", "eno1", "type", "macvlan", "mode", "bridge"])
    failed = lab.module(hv, "bridge", dict(name="br0", ports=[{"name": "mv0"}], mtu=9000, persist="none"), expect_fail=True)
    assert failed["field"] == "mtu" and "port mv0 is a macvlan on eno1 and takes an MTU of 1500 at most" in failed["msg"]
    assert link(lab, hv, "br0") is None and link(lab, hv, "mv0").get("master") is None
    assert lab.module(hv, "bridge", dict(name="br0", ports=[{"name": "mv0"}], mtu=1500, persist="none"))["changed"]


def test_ageing_time_in_seconds_applied_read_back_persisted_and_booted(lab):
    hv = lab.ns("hv")
    guests(lab, hv, 1)
    args = dict(name="br0", ports=[{"name": "vnet0"}], ageing_time=600, persist="ifupdown", **persist_dirs(lab))

    checked = lab.module(hv, "bridge", args, check_mode=True, diff=True)
    assert "ip link add name br0 type bridge ageing_time 60000" in checked["commands"]
    assert checked["after"]["ageing_time"] == 600
    assert link(lab, hv, "br0") is None, "check mode must not create the bridge"

    applied = lab.module(hv, "bridge", args)
    assert applied["commands"] == checked["commands"], "check mode runs the same plan"
    assert link(lab, hv, "br0")["linkinfo"]["info_data"]["ageing_time"] == 60000  # the kernel counts 1/100 s
    assert applied["after"]["ageing_time"] == 600
    assert lab.module(hv, "bridge", args)["changed"] is False

    changed = lab.module(hv, "bridge", dict(args, ageing_time=30), diff=True)
    assert "ip link set dev br0 type bridge ageing_time 3000" in changed["commands"]
    assert (changed["before"]["ageing_time"], changed["after"]["ageing_time"]) == (600, 30)
    (stanza,) = changed["files"]
    assert [d for d in changed["diff"] if d["after_header"] == stanza][0]["after"].count("ageing_time 3000") == 1

    # the persisted stanza brings it back on a freshly booted host
    booted = lab.ns("boot")
    guests(lab, booted, 1, prefix="b")
    state = ["--state-dir", str(lab.tmp / "ifstate"), "--no-scripts", "-i", stanza]
    lab.run(booted, ["ifup"] + state + ["br0"])
    try:
        assert link(lab, booted, "br0")["linkinfo"]["info_data"]["ageing_time"] == 3000
    finally:
        lab.run(booted, ["ifdown"] + state + ["br0"])

    # left out, the runtime value is not touched and the persisted file no longer carries it
    left_out = lab.module(hv, "bridge", {k: v for k, v in args.items() if k != "ageing_time"})
    assert left_out["commands"] == ["write %s" % stanza]
    assert link(lab, hv, "br0")["linkinfo"]["info_data"]["ageing_time"] == 3000
    with open(stanza) as handle:
        assert "ageing_time" not in handle.read()


def test_ageing_time_out_of_range_is_refused_host_unchanged(lab):
    hv = lab.ns("hv")
    result = lab.module(hv, "bridge", dict(name="br0", ageing_time=1000001, persist="none"), expect_fail=True)
    assert "ageing_time" in result["msg"] and "1000001" in result["msg"]
    assert link(lab, hv, "br0") is None
