# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bridge model and planner from captured ``ip -j`` / ``bridge -j`` fixtures: no root."""

from __future__ import annotations

import dataclasses

import pytest
from bridge_fixtures import argvs, host, want
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hypervisor.network.plugins.module_utils._bridge.apply import persist_config
from ansible_collections.hypervisor.network.plugins.module_utils._bridge.model import parse_host, summary, vlan_list, vlan_ranges
from ansible_collections.hypervisor.network.plugins.module_utils._bridge.plan import MoveUplink, Release, SetLink, plan, validate_against_host, vlan_table_steps
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError


def test_parse_reads_bridge_ports_marks_and_addresses():
    state = host("bridged")
    assert state.ports_of("br0") == ["vnet0", "vnet1"]
    assert state.links["br0"].bridge == {"stp": True, "forward_delay": 4, "ageing_time": 300, "vlan_filtering": False, "default_pvid": None}
    assert state.links["br0"].addresses == ["10.20.0.1/24"]
    assert state.links["vnet0"].alias == "hypervisor.network:bridge=br0"
    assert state.links["eno1"].master == "br9"
    assert summary(state, "br0")["ports"] == [{"name": "vnet0"}, {"name": "vnet1"}]
    assert summary(state, "nope") == {"name": "nope", "present": False}


def test_new_bridge_with_stp_mtu_and_addresses():
    result = plan(want(ports=["vnet0"], stp=True, forward_delay=4, mtu=9000, addresses=["10.5.0.1/24"]), host("uplink"))
    assert argvs(result) == [
        "ip link add name br0 type bridge stp_state 1 forward_delay 400",
        "ip link set dev vnet0 mtu 9000",
        "ip link set dev br0 up",
        "ip link set dev vnet0 master br0",
        "ip link set dev vnet0 alias hypervisor.network:bridge=br0",
        "ip link set dev br0 mtu 9000",
        "ip addr add 10.5.0.1/24 dev br0",
    ]
    assert result.created and not result.moves


def test_uplink_moves_addresses_and_default_routes_in_one_batch():
    result = plan(want(ports=["eno1"]), host("uplink"))
    batch = [step for step in result.steps if step.argv == ["ip", "-batch", "-"]]
    assert len(batch) == 1
    assert batch[0].data.splitlines() == [
        "link set dev eno1 master br0",
        "addr del fd00:1::2/64 dev eno1",
        "addr del 10.1.0.2/24 dev eno1",
        "addr add 10.1.0.2/24 dev br0",
        "addr add fd00:1::2/64 dev br0 nodad",
        "route replace default via 10.1.0.254 dev br0",
        "route replace default via fd00:1::fe dev br0 metric 1024",
    ]
    assert result.moves[0].gateway == "10.1.0.254"
    rollback = [step.shown for step in result.rollback]
    assert rollback[0] == "ip link set dev eno1 alias "
    assert rollback[1].startswith("ip -force -batch - <<< link set dev eno1 nomaster; addr del fd00:1::2/64 dev br0")
    assert "route replace default via 10.1.0.254 dev eno1" in rollback[1]
    assert rollback[2:] == ["ip link del dev br0"]


def test_bridge_in_wanted_state_only_adopts_the_unmarked_port():
    wanted = want(ports=["vnet0", "vnet1"], stp=True, forward_delay=4, mtu=1400, addresses=["10.20.0.1/24"])
    assert argvs(plan(wanted, host("bridged"))) == ["ip link set dev vnet1 alias hypervisor.network:bridge=br0"]


def test_dropped_port_is_released_only_when_this_module_enslaved_it():
    state = host("bridged")
    assert argvs(plan(want(ports=["vnet1"]), state)) == [
        "ip link set dev vnet0 nomaster",
        "ip link set dev vnet0 alias ",
        "ip link set dev vnet1 alias hypervisor.network:bridge=br0",  # listed now: adopted
    ]
    assert argvs(plan(want(ports=["vnet0"]), state)) == []  # vnet1 is not ours: left alone
    assert argvs(plan(want(ports=[], exclusive_ports=True), state)) == [
        "ip link set dev vnet0 nomaster",
        "ip link set dev vnet0 alias ",
        "ip link set dev vnet1 nomaster",
    ]


def test_steps_are_typed_and_carry_their_intent():
    """apply and the check-mode ``after`` read what a step means from its type, not from its argv."""
    result = plan(want(ports=[], exclusive_ports=True), host("bridged"))
    assert [type(step) for step in result.steps] == [Release, SetLink, Release]
    assert result.released() == ["vnet0", "vnet1"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.steps[0].port = "eth9"
    moved = plan(want(ports=["eno1"]), host("uplink"))
    batch = [step for step in moved.steps if isinstance(step, MoveUplink)]
    assert len(batch) == 1 and batch[0].move is moved.moves[0]
    assert moved.undos[moved.steps.index(batch[0])] == MoveUplink(moved.moves[0], "br0", back=True)


def test_ageing_time_is_seconds_and_the_kernel_gets_centiseconds():
    created = plan(want(ageing_time=600), host("uplink"))
    assert argvs(created)[0] == "ip link add name br0 type bridge ageing_time 60000"
    assert argvs(plan(want(ageing_time=300), host("uplink")))[0] == "ip link add name br0 type bridge"  # the default
    changed = plan(want(ageing_time=60), host("bridged"))
    assert argvs(changed) == ["ip link set dev br0 type bridge ageing_time 6000"]
    assert [step.shown for step in changed.rollback] == ["ip link set dev br0 type bridge ageing_time 30000"]
    assert argvs(plan(want(ageing_time=300), host("bridged"))) == []


def test_ageing_time_persists_only_when_asked_for():
    state = host("bridged")
    assert persist_config(want(ageing_time=300), state, plan(want(ageing_time=300), state)).ageing_time == 300
    state.links["br0"].bridge["ageing_time"] = 45
    assert persist_config(want(), state, plan(want(), state)).ageing_time is None


def test_ageing_time_reads_as_unknown_during_a_topology_change():
    """With STP on, a topology change makes the kernel report twice the forward delay (measured:
    ageing_time 60000 read 400 with forward_delay 200 while topology_change was 1)."""
    def parsed(**info):
        data = dict(stp_state=1, forward_delay=200, **info)
        item = {"ifname": "br0", "flags": ["UP"], "linkinfo": {"info_kind": "bridge", "info_data": data}}
        return parse_host([item], [], [], []).links["br0"].bridge["ageing_time"]

    assert parsed(ageing_time=60000, topology_change=0) == 600
    assert parsed(ageing_time=400, topology_change=1) is None
    assert parsed() is None
    changing = parse_host([{"ifname": "br0", "linkinfo": {"info_kind": "bridge", "info_data": dict(ageing_time=400, topology_change=1)}}], [], [], [])
    assert argvs(plan(want(ageing_time=600), changing)) == ["ip link set dev br0 type bridge ageing_time 60000", "ip link set dev br0 up"]


def test_settings_change_in_place():
    result = plan(want(stp=False, forward_delay=2, mac="02:00:00:00:00:01", addresses=["10.30.0.1/24"]), host("bridged"))
    assert argvs(result) == [
        "ip link set dev br0 type bridge stp_state 0 forward_delay 200",
        "ip link set dev br0 address 02:00:00:00:00:01",
        "ip addr del 10.20.0.1/24 dev br0",
        "ip addr add 10.30.0.1/24 dev br0",
    ]


def test_rollback_undoes_every_step_but_vlan_tables_newest_first():
    wanted = want(ports=["vnet1", "eno1"], steal=True, stp=False, mtu=1500, mac="02:00:00:00:00:01", addresses=["10.30.0.1/24"])
    result = plan(wanted, host("bridged"))
    assert [step.shown for step in result.rollback] == [
        "ip addr del 10.30.0.1/24 dev br0",
        "ip addr add 10.20.0.1/24 dev br0",
        "ip link set dev br0 mtu 1400",
        "ip link set dev eno1 alias ",
        "ip link set dev eno1 nomaster",
        "ip link set dev vnet1 alias ",
        "ip link set dev vnet1 mtu 1400",
        "ip link set dev vnet0 alias hypervisor.network:bridge=br0",
        "ip link set dev vnet0 master br0",
        "ip link set dev br0 address %s" % host("bridged").links["br0"].mac,
        "ip link set dev br0 type bridge stp_state 1",
    ]


def test_vlan_sub_interface_is_created_then_enslaved():
    result = plan(want(name="br20", ports=[{"name": "eno1.20", "vlan_parent": "eno1"}]), host("uplink"))
    assert argvs(result)[:2] == ["ip link add link eno1 name eno1.20 type vlan id 20", "ip link add name br20 type bridge"]
    assert "ip link set dev eno1.20 master br20" in argvs(result)
    assert "ip link set dev eno1.20 up" in argvs(result)


def test_vlan_tables_of_ports_and_bridge():
    wanted = want(vlan_filtering=True, ports=[
        {"name": "vnet0", "vlans": ["20-22"], "pvid": 1},
        {"name": "vnet1", "vlans": ["30", "31"], "pvid": 10, "untagged": []},
        {"name": "vnet2", "pvid": 40},
    ], vlans=["10", "20"], pvid=10, steal=True)
    state = host("vlan_filtering")
    state.links["vnet2"].alias = None  # not claimed by another bridge for this case
    assert argvs(plan(wanted, state)) == [
        "ip link set dev vnet1 alias hypervisor.network:bridge=br0",
        "ip link set dev vnet2 master br0",
        "ip link set dev vnet2 alias hypervisor.network:bridge=br0",
        "bridge vlan add dev vnet1 vid 30-31",
        "bridge vlan add dev vnet1 vid 10 pvid",
        "bridge vlan del dev vnet2 vid 1",
        "bridge vlan add dev vnet2 vid 40 pvid untagged",
        "bridge vlan del dev br0 vid 1 self",
        "bridge vlan add dev br0 vid 20 self",
        "bridge vlan add dev br0 vid 10 pvid untagged self",
    ]


def test_default_pvid_change_follows_the_kernel():
    wanted = want(vlan_filtering=True, default_pvid=5, ports=[{"name": "vnet0", "vlans": ["20-22"], "pvid": 5}])
    assert argvs(plan(wanted, host("vlan_filtering"))) == ["ip link set dev br0 type bridge vlan_default_pvid 5"]


def test_absent_releases_marks_and_deletes():
    result = plan(want(state="absent"), host("bridged"))
    assert argvs(result) == ["ip link set dev vnet0 alias ", "ip link del dev br0"]
    assert argvs(plan(want(state="absent"), host("uplink"))) == []


@pytest.mark.parametrize("params, field", [
    ({"name": "a-very-long-bridge-name"}, "name"),
    ({"name": "br/0"}, "name"),
    ({"name": "br 0"}, "name"),
    ({"ports": [{"name": "vnet0", "vlans": ["4095"]}], "vlan_filtering": True}, "ports[0].vlans[0]"),
    ({"ports": [{"name": "vnet0", "pvid": 0}], "vlan_filtering": True}, "ports[0].pvid"),
    ({"vlans": ["10-5"], "vlan_filtering": True}, "bridge.vlans[0]"),
    ({"ports": [{"name": "vnet0", "vlans": ["10"]}]}, "vlan_filtering"),
    ({"ports": ["vnet0", "vnet0"]}, "ports[1].name"),
    ({"ports": [{"name": "eno1.x", "vlan_parent": "eno1"}]}, "ports[0].vlan_id"),
    ({"mtu": 67}, "mtu"),
    ({"mac": "01:00:5e:00:00:01"}, "mac"),
    ({"addresses": ["10.0.0.1"]}, "addresses[0]"),
    ({"stp": True, "forward_delay": 1}, "forward_delay"),
    ({"ageing_time": -1}, "ageing_time"),
    ({"ageing_time": 1000001}, "ageing_time"),
])
def test_bad_input_names_the_field(params, field):
    with pytest.raises(ValidationError) as caught:
        want(**params)
    assert caught.value.field == field


@pytest.mark.parametrize("params, state, field, words", [
    ({"ports": ["eth7"]}, "uplink", "ports[0].name", "no such interface"),
    ({"ports": [{"name": "x.20", "vlan_parent": "eth7"}]}, "uplink", "ports[0].vlan_parent", "no such interface"),
    ({"ports": ["eno1"]}, "bridged", "ports[0].name", "already a port of br9"),
    ({"ports": ["vnet2"]}, "bridged", "ports[0].name", "claimed by bridge br7"),
    ({"ports": ["br9"]}, "bridged", "ports[0].name", "is a bridge"),
    ({"name": "eno1"}, "uplink", "name", "not a bridge"),
])
def test_host_checks_name_the_field(params, state, field, words):
    with pytest.raises(ValidationError) as caught:
        validate_against_host(want(**params), host(state))
    assert caught.value.field == field and words in caught.value.msg


def test_steal_takes_a_port_of_another_bridge_and_claims_are_refused():
    state = host("bridged")
    validate_against_host(want(ports=["eno1"], steal=True), state)
    with pytest.raises(ValidationError, match="claimed by bridge br5"):
        validate_against_host(want(ports=["vnet1"]), state, claims={"vnet1": "br5"})


def test_mtu_a_port_cannot_take():
    state = host("bridged")
    state.links["vnet0"].max_mtu = 1500  # as a NIC with a 1500-byte limit reports it
    with pytest.raises(ValidationError, match="port vnet0 takes an MTU of 68-1500") as caught:
        validate_against_host(want(ports=["vnet0"], mtu=9000), state)
    assert caught.value.field == "mtu"


def test_vlan_lists_and_ranges():
    assert vlan_list("v", [10, "20-22", " 4094 "]) == {10, 20, 21, 22, 4094}
    assert vlan_ranges([1, 2, 3, 7, 9, 10]) == ["1-3", "7", "9-10"]


def _apply_bridge_vlan(table, step):
    """What the kernel does with one ``bridge vlan add|del dev X vid A[-B] [pvid] [untagged]``."""
    argv = step.argv
    low, _sep, high = argv[6].partition("-")
    vids = range(int(low), int(high or low) + 1)
    for vid in vids:
        if argv[2] == "del":
            table.pop(vid, None)
            continue
        if "pvid" in argv:  # one PVID per port: the new one takes it from the old
            table.update((v, (False, u)) for v, (_p, u) in list(table.items()))
        table[vid] = ("pvid" in argv, "untagged" in argv)
    return table


_TABLES = st.dictionaries(st.integers(1, 40), st.tuples(st.just(False), st.booleans()), max_size=12).flatmap(
    lambda table: st.sampled_from([None] + sorted(table)).map(
        lambda pvid: dict((vid, (vid == pvid, untagged)) for vid, (_p, untagged) in table.items())))


@settings(max_examples=300, deadline=None)
@given(have=_TABLES, wanted=_TABLES, own=st.booleans())
def test_vlan_table_steps_reach_the_wanted_table(have, wanted, own):
    table = dict(have)
    for step in vlan_table_steps("vnet0", have, wanted, own):
        assert step.argv[-1] == "self" if own else "self" not in step.argv
        _apply_bridge_vlan(table, step)
    assert table == wanted
    assert vlan_table_steps("vnet0", wanted, wanted, own) == []


@given(st.sets(st.integers(1, 4094), max_size=50))
def test_vlan_ranges_round_trip(vids):
    assert vlan_list("v", vlan_ranges(vids)) == vids


def test_undo_covers_only_the_steps_that_ran():
    result = plan(want(ports=["vnet0", "eno1"], mtu=1400), host("uplink"))
    assert [s.shown for s in result.steps[:3]] == [
        "ip link add name br0 type bridge", "ip link set dev vnet0 mtu 1400", "ip link set dev eno1 mtu 1400"]
    assert [s.shown for s in result.undo(1)] == ["ip link del dev br0"]
    assert [s.shown for s in result.undo(2)] == ["ip link set dev vnet0 mtu 1500", "ip link del dev br0"]
