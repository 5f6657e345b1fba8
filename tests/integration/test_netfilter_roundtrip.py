"""Property: any valid set of forwards / masquerades, rendered, loaded into the real kernel
(nft -f, iptables-restore) in a namespace and read back (nft -j, iptables-save), decompiles
to the same model. This is what makes idempotence a comparison and not a guess."""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import iptables as ipt
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as ir
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import nft
from netlab import Lab

TABLE = "hypervisor_network_port_forward"


@pytest.fixture(scope="module")
def netns():
    lab = Lab(tag="rt")
    name = lab.ns("rt")
    yield lab, name
    lab.close()


def _ports(draw_low, width):
    return (draw_low, min(65535, draw_low + width))


@st.composite
def port_forwards(draw):
    count = draw(st.integers(min_value=0, max_value=6))
    items = []
    for index in range(count):
        v6 = draw(st.booleans())
        low = 1000 + index * 100 + draw(st.integers(0, 50))
        width = draw(st.sampled_from([0, 0, 5]))
        raw = {
            "protocol": draw(st.sampled_from(["tcp", "udp", "both"])),
            "host_port": "%d-%d" % _ports(low, width),
            "destination": ("fd00:10::%x" if v6 else "10.0.0.%d") % draw(st.integers(2, 200)),
            "destination_port": draw(st.sampled_from([None, "%d-%d" % _ports(20000 + index, width)])),
            "in_interface": draw(st.sampled_from([None, "eth0", "uplink-1"])),
            "host_address": draw(st.sampled_from([None, "2001:db8::1" if v6 else "203.0.113.1"])),
            "allowed_sources": draw(st.lists(st.sampled_from(["fd00:99::/64", "2001:db8:5::7"] if v6
                                                             else ["198.51.100.0/24", "203.0.113.7", "192.0.2.0/28"]), max_size=3)),
            "hairpin": draw(st.booleans()),
            "hairpin_sources": ["fd00:10::/64"] if v6 else ["10.0.0.0/24"],
            "comment": draw(st.sampled_from([None, "web", "guest 'db' #2"])),
        }
        items.append(model.complete_port_forward("c", model.parse_port_forward(index, raw), None, ()))
    return model.sort_items(model.dedupe(items))


@st.composite
def masquerades(draw):
    sources = draw(st.lists(st.sampled_from(["10.0.0.0/24", "10.1.0.0/16", "fd00:10::/64", "192.0.2.0/28"]), unique=True, max_size=4))
    return model.sort_items([
        model.complete_masquerade(model.parse_masquerade(i, {
            "source": s, "out_interface": draw(st.sampled_from([None, "eth0"])),
            "exclude_own_subnet": draw(st.booleans()), "comment": draw(st.sampled_from([None, "lab nat"])),
        }))
        for i, s in enumerate(sources)
    ])


def _nft_round_trip(lab, ns, table, rules):
    lab.run(ns, ["nft", "-f", "-"], input=nft.render_table(table, rules))
    out = lab.run(ns, ["nft", "-j", "list", "table", "inet", table], check=False).stdout
    return ir.canonical(nft.parse_table(json.loads(out), table)[1]) if out else []


def _iptables_round_trip(lab, ns, rule_set, rules):
    read = []
    for family, (save, restore) in ((4, ("iptables-save", "iptables-restore")), (6, ("ip6tables-save", "ip6tables-restore"))):
        text = "".join(lab.run(ns, [save, "-t", t]).stdout for t in ipt.TABLES)
        _old, jumps = ipt.parse_save(rule_set, family, text)
        lab.run(ns, [restore, "--noflush"], input=ipt.render_restore(rule_set, family, rules, jumps))
        text = "".join(lab.run(ns, [save, "-t", t]).stdout for t in ipt.TABLES)
        family_rules, jumps = ipt.parse_save(rule_set, family, text)
        read.extend(family_rules)
        builtin_jumps = [jump for jump in jumps if jump[1] in ipt.BUILTIN]
        assert len(builtin_jumps) == len(set(builtin_jumps))
    return ir.canonical(read)


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(port_forwards())
def test_port_forwards_round_trip_through_nft(netns, forwards):
    lab, ns = netns
    rules = ir.compile_port_forwards(forwards)
    read = _nft_round_trip(lab, ns, TABLE, rules)
    assert read == rules
    assert ir.decompile_port_forwards(read) == (forwards, [])


@SETTINGS
@given(port_forwards())
def test_port_forwards_round_trip_through_iptables(netns, forwards):
    lab, ns = netns
    rules = ir.compile_port_forwards(forwards)
    read = _iptables_round_trip(lab, ns, "port_forward", rules)
    assert read == rules
    assert ir.decompile_port_forwards(read) == (forwards, [])


@SETTINGS
@given(masquerades())
def test_masquerades_round_trip_through_both_backends(netns, items):
    lab, ns = netns
    rules = ir.compile_masquerades(items)
    assert ir.decompile_masquerades(_nft_round_trip(lab, ns, "hypervisor_network_masquerade", rules)) == (items, [])
    assert ir.decompile_masquerades(_iptables_round_trip(lab, ns, "masquerade", rules)) == (items, [])


def test_jumps_stay_single_after_many_applies(netns):
    lab, ns = netns
    fwd = model.complete_port_forward("c", model.parse_port_forward(0, {"host_port": "80", "destination": "10.0.0.2"}), None, ())
    for dummy in range(3):
        _iptables_round_trip(lab, ns, "port_forward", ir.compile_port_forwards([fwd]))
    saved = subprocess.run(["ip", "netns", "exec", ns, "iptables-save"], capture_output=True, text=True, check=False).stdout
    assert saved.count("-A PREROUTING -j HNET-PF-PREROUTING") == 1
    assert saved.count("-A FORWARD -j HNET-PF-FORWARD") == 1
